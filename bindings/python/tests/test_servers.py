"""One visitor, 8 concurrent requests on 4 worker processes sharing sessions through
sessyncd: each request increments "count" and sets two keys of its own. Nothing may be
lost: count is 8 and all 16 keys are there, as the server and the store itself say."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Set

import sessync

from conftest import cookie_pair, free_port, get, gunicorn, json_body, serve, uvicorn

N = 8


def expected() -> dict:
    want = {"started": True, "count": N}
    for i in range(1, N + 1):
        want[f"a{i}"] = i
        want[f"b{i}"] = f"v{i}"
    return want


def eight_hits(port: int, cookie: str) -> Set[int]:
    barrier = threading.Barrier(N)

    def one(i: int):
        barrier.wait()
        return get(port, f"/hit/{i}", cookie)

    with ThreadPoolExecutor(N) as ex:
        results = list(ex.map(one, range(1, N + 1)))
    for status, _, body in results:
        assert status == 200, body[-2000:]
    counts = sorted(json_body(b)["count"] for _, _, b in results)
    assert counts[-1] <= N
    return {json_body(b)["pid"] for _, _, b in results}


def check(port: int, url: str, cookie_name: str) -> Set[int]:
    """Bursts of one new visitor each (no loss every time) until one burst was served by
    two worker processes or more (at most 5 bursts); returns that burst's processes."""
    pids: Set[int] = set()
    for _ in range(5):
        pids = burst(port, url, cookie_name)
        if len(pids) >= 2:
            break
    return pids


def burst(port: int, url: str, cookie_name: str) -> Set[int]:
    status, headers, body = get(port, "/start")
    assert status == 200, body[-2000:]
    cookie = cookie_pair(headers, cookie_name)
    pids = eight_hits(port, cookie)
    status, _, body = get(port, "/state", cookie)
    assert status == 200, body[-2000:]
    assert json_body(body) == expected()
    # The store itself, read by this process through the binding:
    with sessync.Store(url) as store:
        assert store.fetch(cookie.split("=", 1)[1]) == expected()
    return pids


def test_flask_gunicorn_4_workers_8_concurrent_requests_lose_nothing(sessyncd, tmp_path):
    port = free_port()
    with serve(gunicorn("flask_hits:app", port), port, {"SESSYNC_URL": sessyncd},
               tmp_path / "gunicorn.log"):
        pids = check(port, sessyncd, "sync_sess")
    assert len(pids) >= 2, pids  # the session was shared between processes


def test_django_engine_gunicorn_4_workers_8_concurrent_requests_lose_nothing(sessyncd, tmp_path):
    port = free_port()
    with serve(gunicorn("django_hits:application", port), port, {"SESSYNC_URL": sessyncd},
               tmp_path / "gunicorn.log"):
        pids = check(port, sessyncd, "sessionid")
    assert len(pids) >= 2, pids


def test_asgi_middleware_uvicorn_4_workers_8_concurrent_requests_lose_nothing(sessyncd, tmp_path):
    port = free_port()
    with serve(uvicorn("asgi_hits:app", port), port, {"SESSYNC_URL": sessyncd},
               tmp_path / "uvicorn.log"):
        pids = check(port, sessyncd, "sync_sess")
    assert len(pids) >= 2, pids
