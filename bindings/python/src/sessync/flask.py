"""A Flask SessionInterface on sessync.

    from flask import Flask, session
    from sessync.flask import SessyncSessionInterface

    app = Flask(__name__)
    app.session_interface = SessyncSessionInterface("unix:///run/sessync.sock")

    @app.get("/")
    def index():
        return f"visits: {session.incr('visits')}"

``flask.session`` is then a ``sessync.Session`` (a MutableMapping with ``incr``,
``rotate``, ``destroy``) that is also a Flask ``SessionMixin``. It is begun on its first
use in a request, with the session's lock (``lock=False`` to skip it), and committed in
``save_session``: only the changed keys, as one atomic patch, increments as increments. A
request that never uses the session (a static file, a health check) makes no store call,
takes no lock, sends no cookie and does not refresh the session's idle TTL. A request to
a ``static`` endpoint (the app's or a blueprint's) that does use it (a ``before_request``
hook) begins it without the lock, so a visitor's static files are never queued behind
their own slow request. A request that ends in an unhandled exception is aborted (nothing
written); a begin that fails (``LockTimeout``) raises at that first use, in the view,
where an error handler can take it. sessync issues the cookie: its name,
path, flags and signing come from the store's options (``cookie_name``,
``cookie_secure``, ``signing_keys``, …), not from Flask's ``SESSION_COOKIE_*``.

The store is opened in each worker process on first use, from the URL given here, or
else ``app.config["SESSYNC_URL"]`` (default ``mem://``) and
``app.config["SESSYNC_OPTIONS"]``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Optional

from flask.sessions import SessionInterface, SessionMixin

from ._core import Session, Store, _init
from ._lazy import LazyStore

__all__ = ["FlaskSession", "SessyncSessionInterface", "init_app"]


class FlaskSession(Session, SessionMixin):
    """A sessync.Session that Flask accepts as its ``session``, begun on first use."""

    # Begins the session on first use; None once begun (or for one built by _adopt).
    _opener: Optional[Callable[[], Session]] = None

    @classmethod
    def _lazy(cls, opener: Callable[[], Session]) -> "FlaskSession":
        _init()  # the library's declarations, before the first store is opened
        new = cls.__new__(cls)
        Session.__init__(new, None, None)  # type: ignore[arg-type]  # no store until begun
        new._opener = opener
        return new

    @property
    def begun(self) -> bool:
        """False until the request first uses the session."""
        return self._opener is None

    @property
    def ended(self) -> bool:
        return self._opener is None and self._h is None

    def _live(self) -> Any:
        # Called with self._guard held, as every use of the handle is.
        if self._h is None and self._opener is not None:
            opener, self._opener = self._opener, None
            try:
                s = opener()
            except BaseException:
                self._ended = "unavailable (its begin failed)"
                raise
            with s._guard:
                self._store, self._h, self._pid = s._store, s._h, s._pid
                s._h = None
                s._ended = "handed over"
        return super()._live()

    def __repr__(self) -> str:
        if self._opener is not None:
            return "<sessync.FlaskSession (not begun yet)>"
        return super().__repr__()


def _is_static(request: Any) -> bool:
    endpoint = getattr(request, "endpoint", None) or ""
    return endpoint == "static" or endpoint.endswith(".static")


class SessyncSessionInterface(SessionInterface):
    def __init__(self, url: Optional[str] = None, *, store: Optional[Store] = None,
                 lock: bool = True, wait_ms: Optional[int] = None, **options: Any) -> None:
        self._stores = LazyStore(url, store, **options)
        self.lock = lock
        self.wait_ms = wait_ms

    def store(self, app: Any) -> Store:
        return self._stores.get(app.config.get("SESSYNC_URL", "mem://"),
                                **app.config.get("SESSYNC_OPTIONS", {}))

    def open_session(self, app: Any, request: Any) -> FlaskSession:
        # Flask opens the session before it matches the URL: the endpoint is known only
        # by the session's first use, where the begin happens.
        cookie = request.headers.get("Cookie")

        def begin() -> Session:
            lock = self.lock and not _is_static(request)
            return self.store(app).begin(cookie, lock=lock, wait_ms=self.wait_ms)

        return FlaskSession._lazy(begin)

    def save_session(self, app: Any, session: Any, response: Any) -> None:
        if not isinstance(session, Session) or not getattr(session, "begun", True) \
                or session.ended:
            return  # never used in this request: nothing to write, no lock to release
        # Flask saves the session of a request that raised, inside its exception handler:
        # sessync aborts it instead.
        if sys.exc_info()[0] is not None:
            session.abort()
            return
        set_cookie = session.commit()
        if set_cookie:
            response.headers.add("Set-Cookie", set_cookie)
            response.vary.add("Cookie")


def init_app(app: Any, url: Optional[str] = None, **kwargs: Any) -> SessyncSessionInterface:
    """Installs the interface on ``app`` and returns it."""
    app.session_interface = SessyncSessionInterface(url, **kwargs)
    return app.session_interface
