"""Store and Session: thin wrappers over the C ABI (include/sessync.h is the manual)."""

from __future__ import annotations

import asyncio
import atexit
import datetime
import json
import math
import os
import sys
import threading
from typing import (
    Any,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    MutableMapping,
    Optional,
    Set,
    Tuple,
    Union,
)

from . import _ffi
from . import errors as _errors
from ._ffi import ffi
from .errors import InvalidArgument, SessionClosed, SessyncError, StoreClosed

__all__ = ["Store", "Session", "generate_id", "check_id", "version"]

Cookie = Union[str, bytes, None]
Duration = Union[int, float, datetime.timedelta]

# The C ABI's largest uint64_t: a TTL past it is clamped there (the engine refuses
# anything over a year with its own message).
_U64_MAX = 2**64 - 1

# Filled by _init() once the library is loaded.
_lib: Any = None
_STATUS: Dict[str, int] = {}
_BY_NUMBER: Dict[int, type] = {}
_NAME_BY_NUMBER: Dict[int, str] = {}
_init_lock = threading.Lock()

# Handles a forked child inherited from its parent: never freed there. Freeing one would
# run the engine's teardown in a process its background threads did not survive (with
# mem:// the child then waits forever for a thread that does not exist), and the
# parent's lock and connection are the parent's to end. They stay here, unfreed, until
# the child exits.
_orphans: List[Any] = []


def _init() -> Any:
    global _lib
    if _lib is not None:
        return _lib
    with _init_lock:
        if _lib is not None:
            return _lib
        lib = _ffi.load()
        for number, cname in ffi.typeof("enum sessync_status").elements.items():
            name = cname[len("SESSYNC_STATUS_"):]
            _STATUS[name] = number
            _NAME_BY_NUMBER[number] = name
            cls = _errors.BY_NAME.get(name)
            if cls is not None:
                _BY_NUMBER[number] = cls
        _make_callbacks()
        atexit.register(_at_exit)
        _lib = lib
        return lib


def _error(status: int, err: Any) -> SessyncError:
    """The exception for a failed call, from the sessync_error it filled."""
    if err is not None and err.status == status:
        message = ffi.string(err.message).decode("utf-8", "replace")
    else:  # defensive: the library always fills it on failure
        message = ffi.string(_lib.sessync_status_str(status)).decode("utf-8", "replace")
    return _error_from(status, message)


def _error_from(status: int, message: str) -> SessyncError:
    cls = _BY_NUMBER.get(status, SessyncError)
    e = cls(message, status)
    name = _NAME_BY_NUMBER.get(status)
    if name is not None and type(e).status_name != name:
        e.status_name = name  # e.g. NULL_ARGUMENT and INVALID_UTF8 under InvalidArgument
    return e


def _cstr(value: Any, what: str) -> bytes:
    """A str argument as NUL-free UTF-8 for a `const char *` parameter."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, not {type(value).__name__}")
    try:
        b = value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidArgument(f"{what} is not valid UTF-8: {e}") from None
    if b"\0" in b:
        raise InvalidArgument(f"{what} contains a NUL character")
    return b


def _text(buf: Any) -> bytes:
    """The bytes of a library-filled sessync_buf, then frees it."""
    try:
        if buf.data == ffi.NULL:
            return b""
        return ffi.buffer(buf.data, buf.len)[:]
    finally:
        _lib.sessync_buf_free(buf)


def _dumps(value: Any) -> str:
    """JSON for a session value: strict (no NaN/Infinity), compact, UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _snapshot(value: Any) -> Optional[str]:
    """The JSON of a value that can change in place (list, dict), to compare at commit."""
    if isinstance(value, (list, dict)):
        return _dumps(value)
    return None


def _opt_text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.timedelta):
        return f"{int(value.total_seconds() * 1000)}ms"
    if isinstance(value, (int, float)):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise TypeError(f"store option {key!r} must be str, int, float, bool or timedelta, "
                    f"not {type(value).__name__}")


def _ttl_ms(ttl: Any) -> int:
    """A TTL given in seconds (int or float) or as a timedelta, in milliseconds for the C
    ABI. A positive TTL under 1 ms counts as 1 ms; zero and negative ones become 0 and
    out-of-range ones are clamped, so the engine refuses them with its own message
    (1 ms to one year)."""
    if isinstance(ttl, datetime.timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        raise TypeError(f"a TTL must be seconds (int or float) or a timedelta, "
                        f"not {type(ttl).__name__}")
    if math.isnan(seconds) or seconds <= 0:
        return 0
    if math.isinf(seconds):
        return _U64_MAX
    return min(int(math.ceil(seconds * 1000)), _U64_MAX)


def _wait(wait_ms: Optional[int]) -> int:
    if wait_ms is None:
        return -1
    if not isinstance(wait_ms, int) or isinstance(wait_ms, bool):
        raise TypeError(f"wait_ms must be int or None, not {type(wait_ms).__name__}")
    return wait_ms


def _cookie_bytes(cookie: Cookie) -> bytes:
    if cookie is None:
        return b""
    if isinstance(cookie, bytes):
        return cookie
    if isinstance(cookie, str):
        # WSGI and most frameworks decode headers as latin-1; anything else as UTF-8.
        try:
            return cookie.encode("latin-1")
        except UnicodeEncodeError:
            return cookie.encode("utf-8", "replace")
    raise TypeError(f"cookie must be str, bytes or None, not {type(cookie).__name__}")


def generate_id() -> str:
    """A fresh session id (192 random bits, base64url): `sessync_id_generate`."""
    lib = _init()
    out = ffi.new("char[]", lib.SESSYNC_ID_MAX_LEN + 1)
    n = ffi.new("size_t *")
    err = ffi.new("sessync_error *")
    rc = lib.sessync_id_generate(out, len(out), n, err)
    if rc:
        raise _error(rc, err)
    return ffi.string(out, n[0]).decode("ascii")


def check_id(id: str) -> None:
    """Raises InvalidArgument (with the engine's reason) unless `id` is a well-formed id."""
    lib = _init()
    err = ffi.new("sessync_error *")
    rc = lib.sessync_id_check(_cstr(id, "session id"), err)
    if rc:
        raise _error(rc, err)


def version() -> str:
    """The loaded library's version, e.g. "0.2.0"."""
    return ffi.string(_init().sessync_version()).decode()


class Store:
    """A session store, shared by every thread of the process (one per process: after a
    fork, open a new one in the child).

    ``url``: ``mem://`` (in the process), ``unix:///path/to/sessyncd.sock``,
    ``tcp://:token@host:7700``, ``redis://host:6379`` … (see the top-level README).
    ``options``: `sessync_options_set` keys, such as ``cookie_name="sid"``,
    ``cookie_secure=True``, ``lock_wait="2s"``, ``ttl=datetime.timedelta(minutes=30)``
    (str as is; bool as true/false; int and float as numbers, i.e. seconds for
    durations; a timedelta in milliseconds). ``signing_keys``: HMAC keys for the cookie
    (the first signs, all verify).
    """

    def __init__(
        self,
        url: str = "mem://",
        *,
        signing_keys: Iterable[Union[bytes, str]] = (),
        **options: Any,
    ) -> None:
        lib = _init()
        self._ptr: Any = None
        self._pid = os.getpid()  # the process the handle belongs to (see _release)
        self._mu = threading.Lock()
        self._busy = 0
        self._closing = False
        curl = _cstr(url, "store url")
        err = ffi.new("sessync_error *")
        keys = list(signing_keys)
        opts = ffi.NULL
        if options or keys:
            op = ffi.new("sessync_options **")
            rc = lib.sessync_options_new(op, err)
            if rc:
                raise _error(rc, err)
            opts = op[0]
        try:
            for k, v in options.items():
                rc = lib.sessync_options_set(opts, _cstr(k, "option name"),
                                             _cstr(_opt_text(k, v), f"option {k}"), err)
                if rc:
                    raise _error(rc, err)
            for key in keys:
                if isinstance(key, str):
                    key = key.encode("utf-8")
                if not isinstance(key, bytes):
                    raise TypeError(f"signing keys must be bytes or str, not {type(key).__name__}")
                rc = lib.sessync_options_add_signing_key(
                    opts, ffi.from_buffer("uint8_t[]", key), len(key), err)
                if rc:
                    raise _error(rc, err)
            sp = ffi.new("sessync_store **")
            rc = lib.sessync_store_open(curl, opts, sp, err)
            if rc:
                raise _error(rc, err)
            self._ptr = sp[0]
        finally:
            if opts != ffi.NULL:
                lib.sessync_options_free(opts)
        self.url = url
        # What it was opened with, for a forked child's own store (LazyStore.reopen).
        self._opened_with: Tuple[Tuple[Union[bytes, str], ...], Dict[str, Any]] = (
            tuple(keys), dict(options))

    def reopen(self) -> "Store":
        """A new store opened as this one was (URL, options, signing keys): for a
        process forked after this one was opened."""
        keys, options = self._opened_with
        return Store(self.url, signing_keys=keys, **options)

    # --- life cycle: close() waits for no one; the handle is freed by the last call out.
    def _enter(self) -> Any:
        with self._mu:
            if self._closing or self._ptr is None:
                raise StoreClosed("the store is closed")
            self._busy += 1
            return self._ptr

    def _leave(self) -> None:
        with self._mu:
            self._busy -= 1
            if self._closing and self._busy == 0:
                self._release()

    def _release(self) -> None:
        """Frees the handle, in the process that opened it only (with self._mu held)."""
        ptr, self._ptr = self._ptr, None
        if ptr is None:
            return
        if os.getpid() != self._pid:
            _orphans.append(ptr)  # inherited through fork: the parent's, never freed here
        else:
            _lib.sessync_store_free(ptr)

    def close(self) -> None:
        """Releases the store. Calls in flight finish first; later calls raise
        StoreClosed. Sessions already begun keep working until they end.

        In a process forked after the store was opened, the handle is the parent's: it
        is left unfreed (closing it there only marks this object closed)."""
        with self._mu:
            if self._closing:
                return
            self._closing = True
            if self._busy == 0:
                self._release()

    @property
    def closed(self) -> bool:
        return self._closing

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _call(self, fn: Any, *args: Any) -> None:
        """Calls `fn(store, *args, err)` and raises on failure."""
        err = ffi.new("sessync_error *")
        ptr = self._enter()
        try:
            rc = fn(ptr, *args, err)
        finally:
            self._leave()
        if rc:
            raise _error(rc, err)

    # --- the request flow
    def begin(self, cookie: Cookie = None, *, lock: bool = True,
              wait_ms: Optional[int] = None) -> "Session":
        """Starts a request from the raw Cookie header (`sessync_session_begin`). With
        ``lock``, takes the session's lock, waiting up to ``wait_ms`` (None: the store's
        ``lock_wait``) with the GIL released. Commit returns the Set-Cookie value."""
        c = _cookie_bytes(cookie)
        out = ffi.new("sessync_session **")
        self._call(_lib.sessync_session_begin, ffi.from_buffer("uint8_t[]", c), len(c),
                   _lib.SESSYNC_BEGIN_LOCK if lock else 0, _wait(wait_ms), out)
        return Session(self, out[0])

    def begin_id(self, id: str, *, lock: bool = True,
                 wait_ms: Optional[int] = None) -> "Session":
        """Starts a request on a session the caller names (`sessync_session_begin_id`):
        for frameworks that issue their own ids. An id naming no live session begins a
        new one under that id (``session.is_new``): never pass an id a client invented
        without checking it exists."""
        cid = _cstr(id, "session id")
        out = ffi.new("sessync_session **")
        self._call(_lib.sessync_session_begin_id, cid,
                   _lib.SESSYNC_BEGIN_LOCK if lock else 0, _wait(wait_ms), out)
        return Session(self, out[0])

    async def begin_async(self, cookie: Cookie = None, *, lock: bool = True,
                          wait_ms: Optional[int] = None) -> "Session":
        """`begin` without blocking the event loop (`sessync_session_begin_async`); a
        cancelled await cancels the pending call (`sessync_ticket_cancel`)."""
        c = _cookie_bytes(cookie)
        return await self._begin_async(
            _lib.sessync_session_begin_async,
            (ffi.from_buffer("uint8_t[]", c), len(c)), lock, wait_ms)

    async def begin_id_async(self, id: str, *, lock: bool = True,
                             wait_ms: Optional[int] = None) -> "Session":
        """`begin_id` without blocking the event loop (`sessync_session_begin_id_async`)."""
        return await self._begin_async(
            _lib.sessync_session_begin_id_async, (_cstr(id, "session id"),), lock, wait_ms)

    async def _begin_async(self, fn: Any, args: Tuple[Any, ...], lock: bool,
                           wait_ms: Optional[int]) -> "Session":
        loop = asyncio.get_running_loop()
        p = _Pending(loop, self)
        ticket = ffi.new("uint64_t *")
        flags = _lib.SESSYNC_BEGIN_LOCK if lock else 0
        w = _wait(wait_ms)
        ptr = self._enter()
        try:
            p.start(ticket)
            rc = fn(ptr, *args, flags, w, _callbacks["session"], p.handle, ticket, p.err)
        finally:
            self._leave()
        if rc:
            p.failed_to_start()
            raise _error(rc, p.err)
        try:
            return await p.future
        except asyncio.CancelledError:
            cancelled = ffi.new("bool *")
            err = ffi.new("sessync_error *")
            # Never blocks; the callback then comes with CANCELLED (or the session, which
            # _Pending frees since nobody awaits it any more).
            _lib.sessync_ticket_cancel(ticket[0], cancelled, err)
            raise

    # --- store operations
    def fetch(self, id: str) -> Dict[str, Any]:
        """The session's data; NotFound if absent or expired."""
        return self.fetch_version(id)[0]

    def fetch_version(self, id: str) -> Tuple[Dict[str, Any], int]:
        buf = ffi.new("sessync_buf *")
        ver = ffi.new("uint64_t *")
        self._call(_lib.sessync_store_fetch, _cstr(id, "session id"), buf, ver)
        return json.loads(_text(buf)), int(ver[0])

    def record(self, id: str) -> Dict[str, Any]:
        """The whole record: id, data, version, created, last_access, expires_at, owner,
        ttl (the session's own idle TTL in ms, None when it follows the store's ``ttl``)."""
        buf = ffi.new("sessync_buf *")
        self._call(_lib.sessync_store_fetch_record, _cstr(id, "session id"), buf)
        return json.loads(_text(buf))

    def exists(self, id: str) -> bool:
        try:
            self.fetch_version(id)
        except _errors.NotFound:
            return False
        return True

    def write(self, id: str, data: Dict[str, Any], *, expected_version: Optional[int] = None,
              token: int = 0, release: bool = False) -> int:
        """Replaces the whole session (creating it). Prefer `patch`, `incr` or a Session:
        a whole-session write loses concurrent requests' changes unless it is a
        compare-and-swap (``expected_version``)."""
        if not isinstance(data, dict):
            raise TypeError(f"session data must be a dict, not {type(data).__name__}")
        b = _dumps(data).encode("utf-8")
        ev = ffi.NULL if expected_version is None else ffi.new("uint64_t *", expected_version)
        ver = ffi.new("uint64_t *")
        self._call(_lib.sessync_store_write, _cstr(id, "session id"),
                   ffi.from_buffer("uint8_t[]", b), len(b), ev, token,
                   _lib.SESSYNC_WRITE_RELEASE if release else 0, ver)
        return int(ver[0])

    def patch(self, id: str, patch: Dict[str, Any], *, create: bool = True, token: int = 0,
              release: bool = False) -> int:
        """Applies an RFC 7396 merge patch atomically (None deletes a key, dicts merge)."""
        if not isinstance(patch, dict):
            raise TypeError(f"a merge patch must be a dict, not {type(patch).__name__}")
        b = _dumps(patch).encode("utf-8")
        flags = (_lib.SESSYNC_WRITE_CREATE if create else 0) | (
            _lib.SESSYNC_WRITE_RELEASE if release else 0)
        ver = ffi.new("uint64_t *")
        self._call(_lib.sessync_store_patch, _cstr(id, "session id"),
                   ffi.from_buffer("uint8_t[]", b), len(b), token, flags, ver)
        return int(ver[0])

    def incr(self, id: str, key: str, by: int = 1, *, create: bool = True,
             token: int = 0) -> int:
        """Adds ``by`` to the integer at ``key`` atomically; returns the sum."""
        _int(by, "by")
        out = ffi.new("int64_t *")
        self._call(_lib.sessync_store_incr, _cstr(id, "session id"), _cstr(key, "key"), by,
                   token, _lib.SESSYNC_WRITE_CREATE if create else 0, out)
        return int(out[0])

    def touch(self, id: str, ttl: Optional[Duration] = None) -> bool:
        """Records an access (`sessync_store_touch`: writes only when the last recorded
        access is older than the store's touch interval); True when it wrote.

        With ``ttl`` (seconds or a timedelta, 1 ms to one year), also gives the session
        its own idle TTL in the same step (`sessync_store_touch_ttl`): it then expires
        ``ttl`` after its last access, and later writes and touches keep that TTL.
        Always written. NotFound if the session is absent; InvalidArgument if the TTL is
        out of range."""
        out = ffi.new("bool *")
        if ttl is None:
            self._call(_lib.sessync_store_touch, _cstr(id, "session id"), out)
        else:
            self._call(_lib.sessync_store_touch_ttl, _cstr(id, "session id"), _ttl_ms(ttl),
                       out)
        return bool(out[0])

    def list_page(self, cursor: int = 0, count: int = 100) -> Tuple[List[str], int]:
        """One page of the live sessions' ids (`sessync_store_list`, like Redis's
        SCAN): start with cursor 0 and pass back the returned cursor (an opaque 64-bit
        number) until it is 0.
        ``count`` (at least 1) is a hint of the page size. Every session alive for the
        whole scan is listed at least once (Redis may list one twice)."""
        for v, what in ((cursor, "cursor"), (count, "count")):
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{what} must be int, not {type(v).__name__}")
            if not 0 <= v <= _U64_MAX:  # cursors use all 64 bits
                raise InvalidArgument(f"{what} must be 0 to 2**64-1, got {v}")
        buf = ffi.new("sessync_buf *")
        nxt = ffi.new("uint64_t *")
        self._call(_lib.sessync_store_list, cursor, count, buf, nxt)
        return list(json.loads(_text(buf))), int(nxt[0])

    def list(self, count: int = 100) -> Generator[str, None, None]:
        """The ids of the live sessions, page after page of ``count`` (a hint); each id
        once. Sessions created or destroyed during the scan may or may not appear; every
        session alive for the whole scan does."""
        seen: Set[str] = set()
        cursor = 0
        while True:
            ids, cursor = self.list_page(cursor, count)
            for id in ids:
                if id not in seen:
                    seen.add(id)
                    yield id
            if cursor == 0:
                return

    def clear(self) -> int:
        """Destroys every session of the store (`sessync_store_clear`; tombstoned as
        `destroy` does, so requests in flight cannot bring one back). Returns how many
        live sessions there were. On Redis, atomic per session, not across them."""
        out = ffi.new("size_t *")
        self._call(_lib.sessync_store_clear, out)
        return int(out[0])

    def destroy(self, id: str) -> bool:
        """Destroys the session (tombstoned); True if a live one was there."""
        out = ffi.new("bool *")
        self._call(_lib.sessync_store_destroy, _cstr(id, "session id"), out)
        return bool(out[0])

    def rotate(self, id: str, *, token: int = 0) -> str:
        """Moves the session to a fresh id and returns it."""
        out = ffi.new("char[]", _lib.SESSYNC_ID_MAX_LEN + 1)
        n = ffi.new("size_t *")
        self._call(_lib.sessync_store_rotate, _cstr(id, "session id"), token, out, len(out), n)
        return ffi.string(out, n[0]).decode("ascii")

    def lock(self, id: str, *, lease_ms: int = 30000, wait_ms: int = 10000) -> int:
        """Takes the session's lock (GIL released while waiting); returns its token."""
        out = ffi.new("uint64_t *")
        self._call(_lib.sessync_store_lock, _cstr(id, "session id"), lease_ms, wait_ms, out)
        return int(out[0])

    def unlock(self, id: str, token: int) -> None:
        self._call(_lib.sessync_store_unlock, _cstr(id, "session id"), token)

    def set_owner(self, id: str, owner: Optional[str], *, token: int = 0) -> int:
        ver = ffi.new("uint64_t *")
        o = ffi.NULL if owner is None else _cstr(owner, "owner")
        self._call(_lib.sessync_store_set_owner, _cstr(id, "session id"), o, token, ver)
        return int(ver[0])

    def sessions_of(self, owner: str) -> List[str]:
        buf = ffi.new("sessync_buf *")
        self._call(_lib.sessync_store_sessions_of, _cstr(owner, "owner"), buf)
        return list(json.loads(_text(buf)))

    def destroy_all(self, owner: str) -> int:
        out = ffi.new("size_t *")
        self._call(_lib.sessync_store_destroy_all, _cstr(owner, "owner"), out)
        return int(out[0])

    def stats(self) -> Dict[str, int]:
        st = ffi.new("sessync_stats *")
        self._call(_lib.sessync_store_stats, st, ffi.sizeof("sessync_stats"))
        return {name: int(getattr(st, name)) for name, _ in ffi.typeof("sessync_stats").fields}


def _int(v: Any, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise TypeError(f"{what} must be int, not {type(v).__name__}")
    if not -(2**63) <= v < 2**63:
        raise OverflowError(f"{what} does not fit in 64 bits")
    return v


class Session(MutableMapping[str, Any]):
    """One request's view of a visitor's session: a MutableMapping of JSON values and a
    context manager (commit on success, abort on exception).

    Every change is recorded per key in the engine (`sessync_session_set` / `_remove` /
    `_incr`), and commit writes only the changed keys as one atomic patch, increments as
    increments: two concurrent requests that change different keys, or increment one
    counter, lose nothing. A list or dict read from the session and changed in place
    (``session["cart"].append(x)``) is noticed at commit, by comparing its JSON with the
    JSON it had when read, and sent as a set of that key.

    Use it from one thread at a time (calls from two threads are serialized).
    """

    def __init__(self, store: Store, ptr: Any) -> None:
        self._store = store
        self._h: Any = ptr
        self._pid = os.getpid()
        self._ended = ""
        # key -> (value handed out, its JSON then if it is a list or dict, else None)
        self._cache: Dict[str, Tuple[Any, Optional[str]]] = {}
        self._guard = threading.RLock()
        self._err = ffi.new("sessync_error *")

    @classmethod
    def _adopt(cls, other: "Session") -> Any:
        """Moves `other`'s handle into a new instance of `cls` (a framework's subclass)."""
        new = cls.__new__(cls)
        with other._guard:
            new.__dict__.update(other.__dict__)
            other._h = None
            other._ended = "handed over"
        return new

    def _live(self) -> Any:
        if self._h is None:
            raise SessionClosed(f"the session was already {self._ended}")
        return self._h

    def _check(self, rc: int) -> None:
        if rc:
            raise _error(rc, self._err)

    # --- state
    @property
    def id(self) -> str:
        with self._guard:
            return ffi.string(_lib.sessync_session_id(self._live())).decode("ascii")

    @property
    def is_new(self) -> bool:
        """True when begin found no stored session (a fresh id)."""
        with self._guard:
            return bool(_lib.sessync_session_is_new(self._live()))

    @property
    def version(self) -> int:
        with self._guard:
            return int(_lib.sessync_session_version(self._live()))

    @property
    def expires_at(self) -> int:
        with self._guard:
            return int(_lib.sessync_session_expires_at(self._live()))

    @property
    def token(self) -> int:
        with self._guard:
            return int(_lib.sessync_session_token(self._live()))

    @property
    def changed(self) -> bool:
        """True when commit would write something (including in-place changes)."""
        with self._guard:
            h = self._live()
            return bool(_lib.sessync_session_changed(h)) or bool(self._mutated())

    @property
    def ended(self) -> bool:
        return self._h is None

    # --- MutableMapping
    def _get_json(self, h: Any, k: bytes) -> Optional[bytes]:
        buf = ffi.new("sessync_buf *")
        rc = _lib.sessync_session_get(h, k, buf, self._err)
        if rc == _STATUS["NOT_FOUND"]:
            return None
        self._check(rc)
        return _text(buf)

    def __getitem__(self, key: str) -> Any:
        k = _cstr(key, "session key")
        with self._guard:
            h = self._live()
            hit = self._cache.get(key)
            if hit is not None:
                return hit[0]
            raw = self._get_json(h, k)
            if raw is None:
                raise KeyError(key)
            v = json.loads(raw)
            self._cache[key] = (v, _snapshot(v))
            return v

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __setitem__(self, key: str, value: Any) -> None:
        k = _cstr(key, "session key")
        js = _dumps(value)  # TypeError / ValueError before anything changes
        b = js.encode("utf-8")
        with self._guard:
            h = self._live()
            self._check(_lib.sessync_session_set(h, k, ffi.from_buffer("uint8_t[]", b), len(b),
                                                 self._err))
            self._cache[key] = (value, js if isinstance(value, (list, dict)) else None)

    def __delitem__(self, key: str) -> None:
        k = _cstr(key, "session key")
        with self._guard:
            h = self._live()
            if key not in self._cache and self._get_json(h, k) is None:
                raise KeyError(key)
            self._check(_lib.sessync_session_remove(h, k, self._err))
            self._cache.pop(key, None)

    def _data(self) -> Dict[str, Any]:
        h = self._live()
        buf = ffi.new("sessync_buf *")
        self._check(_lib.sessync_session_data(h, buf, self._err))
        data = json.loads(_text(buf))
        for k, v in data.items():
            if k in self._cache:
                data[k] = self._cache[k][0]
            else:
                self._cache[k] = (v, _snapshot(v))
        return data

    def __iter__(self) -> Iterator[str]:
        with self._guard:
            return iter(list(self._data()))

    def __len__(self) -> int:
        with self._guard:
            return len(self._data())

    def to_dict(self) -> Dict[str, Any]:
        """A copy of all the data, with this request's changes applied."""
        with self._guard:
            return dict(self._data())

    def __repr__(self) -> str:
        if self._h is None:
            return f"<sessync.Session {self._ended}>"
        return f"<sessync.Session {self.id[:6]}… {self.to_dict()!r}>"

    # --- engine operations
    def incr(self, key: str, by: int = 1) -> int:
        """Adds ``by`` to the integer at ``key`` (absent counts as 0); commit applies it
        as an atomic increment. Returns the value as this request sees it."""
        k = _cstr(key, "session key")
        _int(by, "by")
        out = ffi.new("int64_t *")
        with self._guard:
            h = self._live()
            self._check(_lib.sessync_session_incr(h, k, by, out, self._err))
            self._cache.pop(key, None)
            return int(out[0])

    def set_bytes(self, key: str, value: bytes) -> None:
        """Stores opaque bytes (a JSON string when UTF-8, else base64)."""
        k = _cstr(key, "session key")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"value must be bytes, not {type(value).__name__}")
        b = bytes(value)
        with self._guard:
            h = self._live()
            self._check(_lib.sessync_session_set_bytes(h, k, ffi.from_buffer("uint8_t[]", b),
                                                       len(b), self._err))
            self._cache.pop(key, None)

    def get_bytes(self, key: str) -> bytes:
        k = _cstr(key, "session key")
        buf = ffi.new("sessync_buf *")
        with self._guard:
            h = self._live()
            rc = _lib.sessync_session_get_bytes(h, k, buf, self._err)
            if rc == _STATUS["NOT_FOUND"]:
                raise KeyError(key)
            self._check(rc)
            return _text(buf)

    def set_owner(self, owner: Optional[str]) -> None:
        """Sets (or, with None, clears) the session's owner, e.g. the user id at login."""
        o = ffi.NULL if owner is None else _cstr(owner, "owner")
        with self._guard:
            self._check(_lib.sessync_session_set_owner(self._live(), o, self._err))

    def rotate(self) -> None:
        """Gives the session a fresh id now (at login, against session fixation)."""
        with self._guard:
            self._check(_lib.sessync_session_rotate(self._live(), self._err))

    def destroy(self) -> None:
        """Marks the session for destruction at commit (logout)."""
        with self._guard:
            self._check(_lib.sessync_session_destroy(self._live(), self._err))
            self._cache.clear()

    def set_ttl(self, ttl: Duration) -> None:
        """Gives the session its own idle TTL from commit on (`sessync_session_set_ttl`):
        ``ttl`` in seconds (int or float) or a timedelta, 1 ms to one year, e.g. the
        cookie's max-age. Commit applies it in the same atomic step as the request's
        changes (or, with none, as a touch); later writes and touches keep it until
        another TTL is set. A new session with nothing set is still not stored.
        InvalidArgument (the engine's message) when out of range."""
        ms = _ttl_ms(ttl)
        with self._guard:
            self._check(_lib.sessync_session_set_ttl(self._live(), ms, self._err))

    # --- ending
    def _mutated(self) -> List[Tuple[str, str]]:
        out = []
        for key, (value, js) in self._cache.items():
            if js is not None:
                now = _dumps(value)
                if now != js:
                    out.append((key, now))
        return out

    def _flush(self, h: Any) -> None:
        """Sends values changed in place as sets."""
        for key, js in self._mutated():
            b = js.encode("utf-8")
            self._check(_lib.sessync_session_set(h, _cstr(key, "session key"),
                                                 ffi.from_buffer("uint8_t[]", b), len(b),
                                                 self._err))
            self._cache[key] = (self._cache[key][0], js)

    def _take(self, how: str) -> Any:
        """Flushes in-place changes and gives up the handle (the caller consumes it)."""
        h = self._live()
        if how == "committed":
            try:
                self._flush(h)
            except BaseException:
                self._h = None
                self._ended = "aborted"
                _lib.sessync_session_free(h)
                raise
        self._h = None
        self._ended = how
        self._cache.clear()
        return h

    def commit(self) -> Optional[str]:
        """Writes what changed as one atomic patch and releases the lock. Returns the
        Set-Cookie header value to send, or None. The session ends, even on failure."""
        with self._guard:
            h = self._take("committed")
            buf = ffi.new("sessync_buf *")
            self._check(_lib.sessync_session_commit(h, buf, self._err))
            sc = _text(buf)
            return sc.decode("latin-1") if sc else None

    async def commit_async(self) -> Optional[str]:
        """`commit` without blocking the event loop (`sessync_session_commit_async`)."""
        loop = asyncio.get_running_loop()
        p = _Pending(loop, self._store)
        with self._guard:
            h = self._take("committed")
            p.start(None)
            rc = _lib.sessync_session_commit_async(h, _callbacks["commit"], p.handle, p.err)
        if rc:
            p.failed_to_start()
            raise _error(rc, p.err)
        return await p.future

    def abort(self) -> None:
        """Ends the request without writing and releases the lock."""
        with self._guard:
            h = self._take("aborted")
            self._check(_lib.sessync_session_abort(h, self._err))

    async def abort_async(self) -> None:
        """`abort` without blocking the event loop (`sessync_session_abort_async`: with
        a daemon or Redis, releasing the lock is a round trip). The session is handed to
        the library at once, so it is aborted even if this await is cancelled."""
        loop = asyncio.get_running_loop()
        p = _Pending(loop, self._store)
        with self._guard:
            h = self._take("aborted")
            p.start(None)
            rc = _lib.sessync_session_abort_async(h, _callbacks["commit"], p.handle, p.err)
        if rc:
            p.failed_to_start()
            raise _error(rc, p.err)
        await p.future

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._h is None:
            return
        if exc_type is None:
            self.commit()
        else:
            try:
                self.abort()
            except SessyncError:
                pass  # the original exception matters more

    async def __aenter__(self) -> "Session":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._h is None:
            return
        if exc_type is None:
            await self.commit_async()
        else:
            try:
                await self.abort_async()
            except SessyncError:
                pass

    def __del__(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None and _lib is not None:
            self._h = None
            if getattr(self, "_pid", None) != os.getpid():
                _orphans.append(h)  # a parent's session, inherited through fork
                return
            try:
                _lib.sessync_session_free(h)
            except Exception:
                pass


# --- async completion: one cffi callback per kind, userdata names a _Pending.
#
# The callbacks run Python on the library's threads. A thread that enters Python (or
# takes the GIL back, e.g. after call_soon_threadsafe wrote to the loop's socket) once the
# interpreter is finalizing is ended by Python with pthread_exit, whose unwinding through
# the library's frames aborts the process. So at exit, before finalization, an atexit
# handler calls sessync_async_drain: it cancels every pending call (a lock wait that
# would otherwise end after exit) and waits until no callback is pending or running.
# cffi releases the GIL for the length of that call, so the callbacks it waits for can
# still enter Python meanwhile (their loops are closed by then: _Pending.deliver frees
# what nobody will take).
_pending: Set["_Pending"] = set()
_callbacks: Dict[str, Any] = {}
# How long the exit handler waits for callbacks to return, in ms.
_DRAIN_WAIT_MS = 10_000


def _at_exit() -> None:
    pending = ffi.new("size_t *")
    err = ffi.new("sessync_error *")
    rc = _lib.sessync_async_drain(True, _DRAIN_WAIT_MS, pending, err)
    if rc:
        print(f"sessync: at exit, sessync_async_drain failed: {_error(rc, err)}", file=sys.stderr)
    elif pending[0]:
        print(f"sessync: at exit, {pending[0]} async call(s) still running after "
              f"{_DRAIN_WAIT_MS} ms", file=sys.stderr)


class _Pending:
    """An async call in flight: kept alive (with its cffi handle) until its callback."""

    def __init__(self, loop: asyncio.AbstractEventLoop, store: Store) -> None:
        self.loop = loop
        self.store = store
        self.future: "asyncio.Future[Any]" = loop.create_future()
        self.handle = ffi.new_handle(self)
        self.err = ffi.new("sessync_error *")
        self.ticket: Any = None
        # Who takes a session the callback brings: the loop (resolve) or, when the loop
        # is not running, the callback's thread (which aborts it). The first one wins.
        self._claim_mu = threading.Lock()
        self._claimed = False

    def start(self, ticket: Any) -> None:
        self.ticket = ticket
        _pending.add(self)

    def failed_to_start(self) -> None:
        """The call returned an error: its callback will never come."""
        _pending.discard(self)

    def _claim(self) -> bool:
        with self._claim_mu:
            if self._claimed:
                return False
            self._claimed = True
            return True

    def deliver(self, status: int, message: str, value: Any, session: Any) -> None:
        """On the library's thread: hand the result to the loop.

        A session is handed over only to a running loop. A loop that is stopped but not
        closed accepts call_soon_threadsafe and never runs the callback (unless it is run
        again): the session, and its lock, would stay taken until the lock's lease ran
        out. So when the loop is not running, or stops before the handover is taken, the
        session is aborted here, on the library's thread, and the awaiting coroutine
        (should the loop run again) gets CANCELLED. (A loop that stops after this check
        and before its next iteration still holds the session until it runs again or its
        lease ends: asyncio gives no way to tell.)"""
        loop = self.loop
        if session is not None and not loop.is_running():
            self._end_here(session)
            return
        try:
            loop.call_soon_threadsafe(self.resolve, status, message, value, session)
        except RuntimeError:  # the loop is closed: nobody will take the session
            if session is not None:
                self._end_here(session)
            return
        if session is not None and not loop.is_running():
            self._end_here(session)  # stopped meanwhile: resolve may never run

    def _end_here(self, session: Any) -> None:
        """Aborts a session nobody will take, on the library's thread (unless the loop
        took it first)."""
        if not self._claim():
            return
        err = ffi.new("sessync_error *")
        _lib.sessync_session_abort(session, err)  # consumes it; a failure changes nothing
        try:
            self.loop.call_soon_threadsafe(
                self.resolve, _STATUS["CANCELLED"],
                "the session came while its event loop was not running: it was aborted",
                None, None)
        except RuntimeError:
            pass

    def resolve(self, status: int, message: str, value: Any, session: Any) -> None:
        """On the loop's thread."""
        if session is not None and not self._claim():
            return  # aborted on the library's thread; its CANCELLED follows
        if self.future.done():  # cancelled meanwhile
            if session is not None:
                _abort_in_background(self.loop, self.store, session)
            return
        if status:
            self.future.set_exception(_error_from(status, message))
        elif session is not None:
            self.future.set_result(Session(self.store, session))
        else:
            self.future.set_result(value)


def _abort_in_background(loop: asyncio.AbstractEventLoop, store: Store, session: Any) -> None:
    """Aborts a session nobody awaits any more without blocking the loop (a round trip
    with a daemon or Redis): `sessync_session_abort_async`, result ignored."""
    p = _Pending(loop, store)
    p.future.add_done_callback(_ignore_result)
    p.start(None)
    rc = _lib.sessync_session_abort_async(session, _callbacks["commit"], p.handle, p.err)
    if rc:  # the session was aborted at once (consumed either way)
        p.failed_to_start()


def _ignore_result(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()  # retrieved: no "never retrieved" warning


def _message(error: Any, status: int) -> str:
    if status and error != ffi.NULL:
        return ffi.string(error.message).decode("utf-8", "replace")
    return ""


def _on_session(userdata: Any, status: int, session: Any, error: Any) -> None:
    p = ffi.from_handle(userdata)
    _pending.discard(p)
    s = session if (status == 0 and session != ffi.NULL) else None
    p.deliver(status, _message(error, status), None, s)


def _on_commit(userdata: Any, status: int, set_cookie: Any, error: Any) -> None:
    p = ffi.from_handle(userdata)
    _pending.discard(p)
    value = None
    if status == 0 and set_cookie != ffi.NULL and set_cookie.data != ffi.NULL:
        value = ffi.buffer(set_cookie.data, set_cookie.len)[:].decode("latin-1")
    p.deliver(status, _message(error, status), value, None)


def _make_callbacks() -> None:
    _callbacks["session"] = ffi.callback("sessync_session_callback", _on_session)
    _callbacks["commit"] = ffi.callback("sessync_commit_callback", _on_commit)
