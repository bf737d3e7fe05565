"""One Store per process, opened on first use (so a store never crosses a fork: gunicorn
and uvicorn import the app before forking or spawning their workers).

In a process forked after a store was opened, the first ``get`` opens a fresh store for
that process. The parent's Store object is kept (in ``_core._orphans``), never closed or
freed in the child: its handle is the parent's, and the engine's teardown cannot run in a
process its threads did not survive."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Dict, Optional

from . import _core
from ._core import Store


class LazyStore:
    def __init__(self, url: Optional[str] = None, store: Optional[Store] = None,
                 **options: Any) -> None:
        if url is not None and store is not None:
            raise TypeError("give a store url or a Store, not both")
        self.url = url if url is not None else (store.url if store is not None else None)
        self.options: Dict[str, Any] = options
        self._template = store  # a given store: reopened as it was, in a forked child
        self._store = store
        self._pid = os.getpid() if store is not None else None
        self._mu = threading.Lock()

    def current(self) -> Optional[Store]:
        """This process's store if it is open already, else None (never opens one)."""
        s = self._store
        if s is not None and self._pid == os.getpid():
            return s
        return None

    def get(self, url: Optional[str] = None, **defaults: Any) -> Store:
        """The process's store; ``url``/``defaults`` apply when none was given at init."""
        pid = os.getpid()
        s = self._store
        if s is not None and self._pid == pid:
            return s
        with self._mu:
            if self._store is None or self._pid != pid:
                if self._store is not None:
                    # Opened before a fork: the parent's. Dropping the last reference
                    # would free it here (Store.__del__ refuses to as well).
                    _core._orphans.append(self._store)
                if self._template is not None:
                    self._store = self._template.reopen()
                else:
                    opts = dict(defaults)
                    opts.update(self.options)
                    self._store = Store(self.url or url or "mem://", **opts)
                self._pid = pid
            return self._store

    async def get_async(self, url: Optional[str] = None, **defaults: Any) -> Store:
        """``get`` for an event loop: the first call in a process opens the store in the
        loop's default executor (opening one on a daemon or Redis connects)."""
        s = self.current()
        if s is not None:
            return s
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, lambda: self.get(url, **defaults))
