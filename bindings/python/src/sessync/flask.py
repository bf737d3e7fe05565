"""A Flask SessionInterface on sessync.

    from flask import Flask, session
    from sessync.flask import SessyncSessionInterface

    app = Flask(__name__)
    app.session_interface = SessyncSessionInterface("unix:///run/sessync.sock")

    @app.get("/")
    def index():
        return f"visits: {session.incr('visits')}"

``flask.session`` is then a ``sessync.Session`` (a MutableMapping with ``incr``,
``rotate``, ``destroy``) that is also a Flask ``SessionMixin``. Each request begins with
the session's lock (``lock=False`` to skip it) and commits in ``save_session``: only the
changed keys, as one atomic patch, increments as increments. A request that ends in an
unhandled exception is aborted (nothing written). sessync issues the cookie: its name,
path, flags and signing come from the store's options (``cookie_name``,
``cookie_secure``, ``signing_keys``, …), not from Flask's ``SESSION_COOKIE_*``.

The store is opened in each worker process on first use, from the URL given here, or
else ``app.config["SESSYNC_URL"]`` (default ``mem://``) and
``app.config["SESSYNC_OPTIONS"]``.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from flask.sessions import SessionInterface, SessionMixin

from ._core import Session, Store
from ._lazy import LazyStore

__all__ = ["FlaskSession", "SessyncSessionInterface", "init_app"]


class FlaskSession(Session, SessionMixin):
    """A sessync.Session that Flask accepts as its ``session``."""


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
        s = self.store(app).begin(request.headers.get("Cookie"), lock=self.lock,
                                  wait_ms=self.wait_ms)
        return FlaskSession._adopt(s)

    def save_session(self, app: Any, session: Any, response: Any) -> None:
        if not isinstance(session, Session) or session.ended:
            return
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
