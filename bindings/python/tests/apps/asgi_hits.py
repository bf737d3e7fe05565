"""Starlette on sessync's ASGI middleware, for tests/test_servers.py (uvicorn with 4
workers): request.session is the sessync session."""
import asyncio
import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from sessync.asgi import SessionMiddleware


async def health(request):
    return PlainTextResponse("ok")


async def start(request):
    request.session["started"] = True
    return JSONResponse({"pid": os.getpid()})


async def hit(request):
    i = request.path_params["i"]
    await asyncio.sleep(0.05)  # as in flask_hits: the result must not depend on it
    n = request.session.incr("count")
    request.session[f"a{i}"] = i
    request.session[f"b{i}"] = f"v{i}"
    return JSONResponse({"pid": os.getpid(), "count": n})


async def state(request):
    return JSONResponse(request.session.to_dict())


app = Starlette(
    routes=[
        Route("/health", health),
        Route("/start", start),
        Route("/hit/{i:int}", hit),
        Route("/state", state),
    ],
    middleware=[Middleware(SessionMiddleware, url=os.environ["SESSYNC_URL"])],
)
