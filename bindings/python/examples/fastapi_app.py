"""FastAPI on sessync's ASGI middleware: run it under uvicorn (see README.md beside this
file). request.session is the visitor's sessync session; the event loop never blocks on
the store."""
import os

from fastapi import FastAPI, Request

from sessync.asgi import SessionMiddleware

app = FastAPI()
app.add_middleware(SessionMiddleware, url=os.environ.get("SESSYNC_URL", "mem://"))


@app.get("/")
async def index(request: Request):
    return {"process": os.getpid(), "visits": request.session.incr("visits")}


@app.get("/cart/add/{item}")
async def add(item: str, request: Request):
    request.session.setdefault("cart", []).append(item)
    return {"cart": request.session["cart"]}


@app.get("/logout")
async def logout(request: Request):
    request.session.destroy()
    return {"bye": True}
