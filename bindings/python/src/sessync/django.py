"""A Django session engine on sessync: ``SESSION_ENGINE = "sessync.django"``.

Settings: ``SESSYNC_URL`` (default ``"mem://"``; ``"unix:///run/sessync.sock"`` to share
sessions between processes through sessyncd) and ``SESSYNC_OPTIONS`` (a dict of store
options, as for ``sessync.Store``). Django issues and checks its own cookie; the engine
stores each session under its key, as JSON values (``SESSION_SERIALIZER`` is not used:
values must be JSON-serializable, as with Django's default serializer).

Writes are per key, never the whole session: ``save()`` compares the session with what
``load()`` read and sends only the keys that were set, changed in place or deleted, plus
the increments of ``request.session.incr(key)``, as one atomic patch through the engine
(``sessync_session_begin_id`` … ``sessync_session_commit``). Two concurrent requests of
one visitor that change different keys, or increment one counter with ``incr``, lose
nothing. (``session["n"] = session.get("n", 0) + 1`` is a read-modify-write and, as with
every engine, can lose a concurrent request's update: use ``incr``.)

Keys: ``create()`` asks sessync for a fresh id (``sessync_id_generate``); ``load()`` of a
key that names no live session (or is malformed) gives an empty session whose key is
dropped, so the next save creates a new key: a key a client invented is never adopted.

Expiry: the store expires sessions itself, so ``clear_expired()`` is a no-op. A session
lives for the store's idle ``ttl`` (an option of the store, or of sessyncd's ``--store``)
unless ``set_expiry()`` gave it its own: then every save gives it, in the same atomic
step as its changes, the idle TTL ``get_expiry_age()`` (``sessync_session_set_ttl``), so
the store keeps it as long as Django's cookie says. ``set_expiry(seconds)``,
``set_expiry(timedelta)`` and ``set_expiry(datetime)`` work so (an age of zero or less
expires it at once, 1 ms; one over a year raises ``sessync.InvalidArgument`` from
``save()``, with the engine's message). ``set_expiry(0)`` (a browser-session cookie) and
no ``set_expiry()`` keep the store's ``ttl``, with one exception: the C ABI cannot take a
session's own TTL back, so a session that had one and is reset with ``set_expiry(None)``
or ``set_expiry(0)`` gets ``get_expiry_age()``, i.e. ``SESSION_COOKIE_AGE``, instead.

A session deleted (``delete()``, ``flush()`` or logout in a concurrent request, or the
store's ``destroy``) or expired between ``save()``'s begin and its commit raises Django's
``UpdateError``, as the database engine does, which Django's ``SessionMiddleware`` turns
into ``SessionInterrupted`` (a 400), rather than a sessync error (a 500); during
``create()`` the same is a ``CreateError``, and a fresh key is tried.

Async: ``aload``/``aexists``/``adelete`` run the store call in the loop's executor;
``asave``/``acreate`` begin, commit and abort through the library's callbacks
(``sessync_session_begin_id_async``, ``sessync_session_commit_async``,
``sessync_session_abort_async``), and the process's store is opened in the executor: the
event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, Dict, Optional, Tuple

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from ._core import Session, _dumps, check_id, generate_id
from ._lazy import LazyStore
from .errors import Destroyed, InvalidArgument, NotFound

__all__ = ["SessionStore"]

_store = LazyStore()


def get_store() -> Any:
    """The process's store, from settings.SESSYNC_URL and settings.SESSYNC_OPTIONS."""
    return _store.get(getattr(settings, "SESSYNC_URL", "mem://"),
                      **getattr(settings, "SESSYNC_OPTIONS", {}))


async def aget_store() -> Any:
    """``get_store`` for an event loop: the first call in a process opens the store in
    the loop's executor."""
    return await _store.get_async(getattr(settings, "SESSYNC_URL", "mem://"),
                                  **getattr(settings, "SESSYNC_OPTIONS", {}))


def _commit_error(e: Exception, must_create: bool) -> Exception:
    """Django's error for a commit that found the session gone (deleted or expired
    since begin): UpdateError, or CreateError while creating (create() tries anew)."""
    return CreateError() if must_create else UpdateError()


def _valid(key: Optional[str]) -> bool:
    if not key:
        return False
    try:
        check_id(key)
    except (InvalidArgument, TypeError):
        return False
    return True


class SessionStore(SessionBase):
    def __init__(self, session_key: Optional[str] = None) -> None:
        super().__init__(session_key)
        # key -> JSON as loaded (the base of the per-key comparison at save)
        self._loaded_json: Dict[str, str] = {}
        # key -> (total increment, the JSON the value has after it)
        self._increments: Dict[str, Tuple[int, str]] = {}

    # --- keys
    def _get_new_session_key(self) -> str:
        return generate_id()  # 192 random bits: no existence check needed

    async def _aget_new_session_key(self) -> str:
        return generate_id()

    # --- load
    def _loaded(self, data: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        self._increments = {}
        if data is None:
            self._session_key = None  # unknown key: the next save creates a fresh one
            self._loaded_json = {}
            return {}
        self._loaded_json = {k: _dumps(v) for k, v in data.items()}
        return data

    def _fetch(self) -> Optional[Dict[str, Any]]:
        key = self.session_key
        if not _valid(key):
            return None
        try:
            return get_store().fetch(key)
        except NotFound:
            return None

    def load(self) -> Dict[str, Any]:
        return self._loaded(self._fetch())

    async def aload(self) -> Dict[str, Any]:
        loop = asyncio.get_running_loop()
        return self._loaded(await loop.run_in_executor(None, self._fetch))

    # --- exists / delete
    def exists(self, session_key: Optional[str]) -> bool:
        return _valid(session_key) and get_store().exists(session_key)

    async def aexists(self, session_key: Optional[str]) -> bool:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.exists, session_key)

    def delete(self, session_key: Optional[str] = None) -> None:
        if session_key is None:
            session_key = self.session_key
            if session_key is None:
                return
        if _valid(session_key):
            get_store().destroy(session_key)

    async def adelete(self, session_key: Optional[str] = None) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.delete, session_key)

    # --- increments
    def incr(self, key: str, by: int = 1) -> int:
        """Adds ``by`` to the integer at ``key`` (absent counts as 0); save applies it as
        an atomic increment, so concurrent requests' increments all count."""
        data = self._get_session()
        return self._incr(data, key, by)

    async def aincr(self, key: str, by: int = 1) -> int:
        data = await self._aget_session()
        return self._incr(data, key, by)

    def _incr(self, data: Dict[str, Any], key: str, by: int) -> int:
        if not isinstance(by, int) or isinstance(by, bool):
            raise TypeError(f"by must be int, not {type(by).__name__}")
        cur = data.get(key, 0)
        if not isinstance(cur, int) or isinstance(cur, bool):
            raise TypeError(f"session key {key!r} does not hold an integer")
        cur_json = _dumps(data[key]) if key in data else None
        prev = self._increments.get(key)
        if prev is not None and cur_json == prev[1]:
            total: Optional[int] = prev[0] + by
        elif cur_json == self._loaded_json.get(key):
            total = by
        else:
            total = None  # set in this request: the new value is written as a set
        new = cur + by
        data[key] = new
        self.modified = True
        if total is None:
            self._increments.pop(key, None)
        else:
            self._increments[key] = (total, _dumps(new))
        return new

    # --- save
    def _ttl(self, data: Dict[str, Any]) -> Optional[datetime.timedelta]:
        """The session's own TTL from set_expiry(), or None to keep the store's."""
        expiry = data.get("_session_expiry")
        if not expiry and self._loaded_json.get("_session_expiry") in (None, "0", "null"):
            return None  # never had one of its own (or a browser-session cookie only)
        age = self.get_expiry_age(expiry=expiry)  # seconds; SESSION_COOKIE_AGE for None/0
        if age <= 0:
            return datetime.timedelta(milliseconds=1)  # already expired
        return datetime.timedelta(seconds=age)

    def _apply(self, s: Session, data: Dict[str, Any]) -> Dict[str, str]:
        """Records this request's changes in `s`, per key, and the session's own TTL
        (set_expiry); returns the new base."""
        ttl = self._ttl(data)
        if ttl is not None:
            s.set_ttl(ttl)
        now = {k: _dumps(v) for k, v in data.items()}
        for key, js in now.items():
            inc = self._increments.get(key)
            if inc is not None and inc[1] == js:
                s.incr(key, inc[0])
            elif self._loaded_json.get(key) != js:
                s[key] = data[key]
        for key in self._loaded_json:
            if key not in now:
                s.pop(key, None)
        return now

    def _check_new(self, s: Session, must_create: bool) -> None:
        if must_create and not s.is_new:
            raise CreateError
        if not must_create and s.is_new:
            # The session was deleted or expired since it was loaded.
            raise UpdateError

    def _saved(self, now: Dict[str, str]) -> None:
        self._loaded_json = now
        self._increments = {}

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        s = get_store().begin_id(self.session_key, lock=False)
        try:
            self._check_new(s, must_create)
            now = self._apply(s, data)
            if must_create and not now:
                s.abort()  # an empty new session: make it exist all the same
                get_store().patch(self.session_key, {}, create=True)
            else:
                try:
                    s.commit()
                except (NotFound, Destroyed) as e:
                    raise _commit_error(e, must_create) from e
        finally:
            if not s.ended:
                s.abort()
        self._saved(now)

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        data = await self._aget_session(no_load=must_create)
        store = await aget_store()
        s = await store.begin_id_async(self.session_key, lock=False)
        try:
            self._check_new(s, must_create)
            now = self._apply(s, data)
            if must_create and not now:
                await s.abort_async()
                loop = asyncio.get_running_loop()
                key = self.session_key
                await loop.run_in_executor(None, lambda: store.patch(key, {}, create=True))
            else:
                try:
                    await s.commit_async()
                except (NotFound, Destroyed) as e:
                    raise _commit_error(e, must_create) from e
        finally:
            if not s.ended:
                await s.abort_async()
        self._saved(now)

    # --- create
    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()
            self._loaded_json = {}  # everything is new under a new key
            self._increments = {}
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    async def acreate(self) -> None:
        while True:
            self._session_key = await self._aget_new_session_key()
            self._loaded_json = {}
            self._increments = {}
            try:
                await self.asave(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    # --- expiry
    @classmethod
    def clear_expired(cls) -> None:
        """A no-op: the store expires sessions itself (its ``ttl`` option)."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """A no-op, as ``clear_expired``."""
