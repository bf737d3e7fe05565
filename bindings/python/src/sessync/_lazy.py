"""One Store per process, opened on first use (so a store never crosses a fork: gunicorn
and uvicorn import the app before forking or spawning their workers)."""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, Optional

from ._core import Store


class LazyStore:
    def __init__(self, url: Optional[str] = None, store: Optional[Store] = None,
                 **options: Any) -> None:
        if url is not None and store is not None:
            raise TypeError("give a store url or a Store, not both")
        self.url = url if url is not None else (store.url if store is not None else None)
        self.options: Dict[str, Any] = options
        self._store = store
        self._pid = os.getpid() if store is not None else None
        self._mu = threading.Lock()

    def get(self, url: Optional[str] = None, **defaults: Any) -> Store:
        """The process's store; ``url``/``defaults`` apply when none was given at init."""
        pid = os.getpid()
        s = self._store
        if s is not None and self._pid == pid:
            return s
        with self._mu:
            if self._store is None or self._pid != pid:
                opts = dict(defaults)
                opts.update(self.options)
                self._store = Store(self.url or url or "mem://", **opts)
                self._pid = pid
            return self._store
