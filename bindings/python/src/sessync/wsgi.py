"""A plain WSGI middleware: ``environ["sessync.session"]`` is the visitor's session.

    from sessync.wsgi import SessionMiddleware
    app = SessionMiddleware(app, "unix:///run/sessync.sock")

The session is begun (with its lock unless ``lock=False``) before the app runs and
committed when the app calls ``start_response``, whose headers then get the Set-Cookie;
an app that raises, or passes ``exc_info``, has its session aborted. The store is opened
in each process on first use.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

from ._core import Session, Store
from ._lazy import LazyStore

__all__ = ["SessionMiddleware"]


class _Result:
    """The app's iterable; aborts a session the app never got to commit."""

    def __init__(self, it: Iterable[bytes], session: Session) -> None:
        self._it = it
        self._session = session

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._it)

    def close(self) -> None:
        try:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()
        finally:
            if not self._session.ended:
                self._session.abort()


class SessionMiddleware:
    def __init__(self, app: Callable[..., Any], url: Optional[str] = None, *,
                 store: Optional[Store] = None, environ_key: str = "sessync.session",
                 lock: bool = True, wait_ms: Optional[int] = None, **options: Any) -> None:
        self.app = app
        self._stores = LazyStore(url, store, **options)
        self.environ_key = environ_key
        self.lock = lock
        self.wait_ms = wait_ms

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        session = self._stores.get().begin(environ.get("HTTP_COOKIE"), lock=self.lock,
                                           wait_ms=self.wait_ms)
        environ[self.environ_key] = session

        def start(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
            if not session.ended:
                if exc_info is not None:
                    session.abort()
                else:
                    set_cookie = session.commit()
                    if set_cookie:
                        headers = list(headers) + [("Set-Cookie", set_cookie)]
            if exc_info is not None:
                return start_response(status, headers, exc_info)
            return start_response(status, headers)

        try:
            result = self.app(environ, start)
        except BaseException:
            if not session.ended:
                session.abort()
            raise
        return _Result(result, session)
