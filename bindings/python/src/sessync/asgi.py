"""An ASGI middleware: ``scope["session"]`` is the visitor's session, so Starlette's and
FastAPI's ``request.session`` work.

    from fastapi import FastAPI, Request
    from sessync.asgi import SessionMiddleware

    app = FastAPI()
    app.add_middleware(SessionMiddleware, url="unix:///run/sessync.sock")

    @app.get("/")
    async def index(request: Request):
        return {"visits": request.session.incr("visits")}

The session is begun with ``sessync_session_begin_async`` (the lock wait holds no thread
of the event loop) and committed with ``sessync_session_commit_async`` when the response
starts, the Set-Cookie added to its headers; an app that raises has its session aborted
with ``sessync_session_abort_async``, and a request cancelled while it waits for the lock
cancels the wait (``sessync_ticket_cancel``). The store is opened in each worker process
on its first request, in the loop's default executor (opening one on a daemon or Redis
connects). The event loop never blocks on the store. Reading and changing the session in
between are calls on the request's own data, which never wait.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, List, MutableMapping, Optional, Tuple

from ._core import Store
from ._lazy import LazyStore
from .errors import SessyncError

__all__ = ["SessionMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class SessionMiddleware:
    def __init__(self, app: Callable[..., Awaitable[None]], url: Optional[str] = None, *,
                 store: Optional[Store] = None, lock: bool = True,
                 wait_ms: Optional[int] = None, **options: Any) -> None:
        self.app = app
        self._stores = LazyStore(url, store, **options)
        self.lock = lock
        self.wait_ms = wait_ms

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        cookie = b"; ".join(v for k, v in scope.get("headers", ()) if k.lower() == b"cookie")
        store = await self._stores.get_async()
        session = await store.begin_async(cookie, lock=self.lock, wait_ms=self.wait_ms)
        scope["session"] = session

        async def send_wrapper(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept") \
                    and not session.ended:
                set_cookie = await session.commit_async()
                if set_cookie:
                    headers: List[Tuple[bytes, bytes]] = list(message.get("headers", []))
                    headers.append((b"set-cookie", set_cookie.encode("latin-1")))
                    message = dict(message)
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not session.ended:
                try:
                    await session.abort_async()
                except SessyncError:
                    pass  # the app's exception matters more
            raise
        if not session.ended:
            await session.commit_async()
