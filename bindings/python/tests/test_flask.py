"""The Flask SessionInterface: the session is begun on first use, so a request that
never touches it (a static file) takes no lock; a static endpoint that does touch it
begins without the lock."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask, session

import sessync
from sessync.flask import FlaskSession, SessyncSessionInterface


@pytest.fixture
def store():
    with sessync.Store("mem://", cookie_name="sid") as st:
        yield st


def make_app(store, tmp_path, touch_in_hook: bool = False) -> Flask:
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.css").write_text("body{}")
    app = Flask(__name__, static_folder=str(static))
    app.testing = True
    app.session_interface = SessyncSessionInterface(store=store, wait_ms=300)

    if touch_in_hook:
        @app.before_request
        def read_session():
            session.get("user")  # e.g. an auth extension, on every request

    @app.get("/count")
    def count():
        return str(session.incr("n"))

    @app.get("/health")
    def health():
        return "ok"

    @app.get("/kind")
    def kind():
        s = session._get_current_object()  # type: ignore[attr-defined]
        return f"{type(s).__name__} {isinstance(s, sessync.Session)}"

    return app


def visitor(store) -> str:
    s = store.begin(None)
    s["n"] = 0
    return s.commit().split(";", 1)[0]


def test_static_files_are_not_queued_behind_the_visitors_held_lock(store, tmp_path):
    app = make_app(store, tmp_path)
    cookie = visitor(store)
    held = store.begin(cookie)  # the visitor's slow request holds the session's lock
    try:
        client = app.test_client(use_cookies=False)

        def get_css(_):
            r = client.get("/static/app.css", headers={"Cookie": cookie})
            return r.status_code, r.get_data(), r.headers.get("Set-Cookie")

        # The lock stays held throughout: a request that waited for it would end in
        # LockTimeout (the app's wait is 300 ms), not in a 200.
        with ThreadPoolExecutor(8) as ex:
            results = list(ex.map(get_css, range(8)))
        for status, body, set_cookie in results:
            assert status == 200 and body == b"body{}" and set_cookie is None
        r = client.get("/health", headers={"Cookie": cookie})  # nor does a route that
        assert r.status_code == 200 and r.headers.get("Set-Cookie") is None  # skips it
        with pytest.raises(sessync.LockTimeout):  # a route that uses it still waits
            client.get("/count", headers={"Cookie": cookie})
    finally:
        held.abort()
    r = app.test_client(use_cookies=False).get("/count", headers={"Cookie": cookie})
    assert r.get_data() == b"1"


def test_a_static_request_that_reads_the_session_begins_it_without_the_lock(store, tmp_path):
    app = make_app(store, tmp_path, touch_in_hook=True)
    cookie = visitor(store)
    held = store.begin(cookie)
    try:
        r = app.test_client(use_cookies=False).get("/static/app.css", headers={"Cookie": cookie})
        assert r.status_code == 200 and r.get_data() == b"body{}"
    finally:
        held.abort()
    r = app.test_client(use_cookies=False).get("/count", headers={"Cookie": cookie})
    assert r.get_data() == b"1"


def test_the_session_is_still_a_sessync_session_and_commits(store, tmp_path):
    app = make_app(store, tmp_path)
    client = app.test_client(use_cookies=False)
    r = client.get("/count")
    assert r.get_data() == b"1" and r.headers["Set-Cookie"].startswith("sid=")
    cookie = r.headers["Set-Cookie"].split(";", 1)[0]
    assert client.get("/count", headers={"Cookie": cookie}).get_data() == b"2"
    assert client.get("/kind").get_data() == b"FlaskSession True"
    assert issubclass(FlaskSession, sessync.Session)
