"""Ending sessions without blocking an event loop: Session.abort_async, the ASGI
middleware (store opened in the executor, sessions aborted through the library's
callback), and a session whose begin completes while its loop is stopped."""

from __future__ import annotations

import asyncio
import threading

import pytest

import sessync
import sessync._lazy
from sessync.asgi import SessionMiddleware


@pytest.fixture(params=["mem", "sessyncd"])
def url(request):
    return "mem://" if request.param == "mem" else request.getfixturevalue("sessyncd")


def cookie_of(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


def new_session(st: sessync.Store) -> str:
    s = st.begin(None)
    s["x"] = 1
    return cookie_of(s.commit())


@pytest.fixture
def no_sync_abort(monkeypatch):
    """Fails the test if anything aborts a session synchronously."""
    def refuse(self):
        raise AssertionError("Session.abort (a blocking round trip) called")
    monkeypatch.setattr(sessync.Session, "abort", refuse)


def test_abort_async_releases_the_lock_without_writing(url, no_sync_abort):
    with sessync.Store(url) as st:
        c = new_session(st)

        async def main():
            s = await st.begin_async(c)
            s["x"] = 99
            await s.abort_async()
            assert s.ended
            with pytest.raises(sessync.SessionClosed):
                await s.abort_async()
            s2 = await st.begin_async(c, wait_ms=0)  # the lock is free
            assert s2["x"] == 1  # nothing was written
            await s2.abort_async()

            # __aexit__ on an exception aborts through the callback too.
            with pytest.raises(RuntimeError):
                async with await st.begin_async(c) as s3:
                    s3["x"] = 5
                    raise RuntimeError("boom")
            (await st.begin_async(c, wait_ms=0)).commit()

        asyncio.run(main())


def test_a_session_that_comes_while_its_loop_is_stopped_is_aborted(url):
    # The loop is stopped (not closed) when the begin completes: the session must not be
    # parked in the loop's queue holding the lock until its lease (30 s) runs out.
    with sessync.Store(url) as st:
        c = new_session(st)
        held = st.begin(c)
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(st.begin_async(c, wait_ms=20000))
            loop.run_until_complete(asyncio.sleep(0))  # the task made its call; loop stops
            assert not loop.is_running() and not task.done()
            held.abort()  # the waiting begin wins the lock now, with the loop stopped
            s = st.begin(c, wait_ms=5000)  # LockTimeout if the session were parked
            s.commit()
            # Run again, the loop gives the awaiting coroutine CANCELLED, not a session.
            with pytest.raises(sessync.Cancelled):
                loop.run_until_complete(asyncio.wait_for(task, 10))
        finally:
            loop.close()


class _App:
    """A tiny ASGI app: /ok increments n, /boom increments n then raises."""

    async def __call__(self, scope, receive, send):
        s = scope["session"]
        n = s.incr("n")
        if scope["path"] == "/boom":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(n).encode()})


async def _request(app, path: str, cookie: str = "") -> list:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    headers = [(b"cookie", cookie.encode())] if cookie else []
    await app({"type": "http", "path": path, "headers": headers}, receive, send)
    return sent


def test_asgi_opens_the_store_off_the_loop_and_aborts_through_the_callback(
        url, monkeypatch, no_sync_abort):
    opened_on = []

    class Recorded(sessync.Store):
        def __init__(self, *a, **kw):
            opened_on.append(threading.get_ident())
            super().__init__(*a, **kw)

    monkeypatch.setattr(sessync._lazy, "Store", Recorded)
    app = SessionMiddleware(_App(), url, wait_ms=2000)

    async def main():
        loop_thread = threading.get_ident()
        sent = await _request(app, "/ok")
        headers = dict(sent[0]["headers"])
        cookie = cookie_of(headers[b"set-cookie"].decode())
        assert sent[1]["body"] == b"1"
        with pytest.raises(RuntimeError):
            await _request(app, "/boom", cookie)
        sent = await _request(app, "/ok", cookie)  # the aborted request left no lock
        assert sent[1]["body"] == b"2"
        return loop_thread

    loop_thread = asyncio.run(main())
    assert len(opened_on) == 1 and opened_on[0] != loop_thread
    app._stores.get().close()
