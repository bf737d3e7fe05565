"""The plain WSGI middleware, driven by werkzeug's test client (a real WSGI caller)."""

from __future__ import annotations

from werkzeug.test import Client

import sessync
from sessync.wsgi import SessionMiddleware


def app(environ, start_response):
    s = environ["sessync.session"]
    if environ["PATH_INFO"] == "/boom":
        s.incr("n")
        raise RuntimeError("boom")
    n = s.incr("n")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"n={n}".encode()]


def test_wsgi_middleware_commits_sets_the_cookie_and_aborts_on_error():
    store = sessync.Store("mem://")
    c = Client(SessionMiddleware(app, store=store))
    r = c.get("/")
    assert r.data == b"n=1" and "sync_sess=" in r.headers["Set-Cookie"]
    assert c.get("/").data == b"n=2"
    try:
        c.get("/boom")
    except RuntimeError:
        pass
    assert c.get("/").data == b"n=3"  # the failed request wrote nothing, left no lock
