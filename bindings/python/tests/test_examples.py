"""The examples run as their README says: Flask under gunicorn with 4 workers and FastAPI
under uvicorn with 4 workers, sharing sessions through sessyncd."""

from __future__ import annotations

from conftest import EXAMPLES, cookie_pair, free_port, get, gunicorn, json_body, serve, uvicorn


def visits(port: int, parse) -> None:
    status, headers, body = get(port, "/")
    assert status == 200, body
    cookie = cookie_pair(headers, "sync_sess")
    assert parse(body) == 1
    for n in range(2, 7):
        status, _, body = get(port, "/", cookie)
        assert status == 200 and parse(body) == n, body
    status, _, body = get(port, "/cart/add/apple", cookie)
    assert b"apple" in body
    status, _, body = get(port, "/cart/add/pear", cookie)
    assert b"apple" in body and b"pear" in body
    status, headers, _ = get(port, "/logout", cookie)
    assert status == 200
    assert "Max-Age=0" in headers["set-cookie"][0] or "Expires" in headers["set-cookie"][0]
    status, _, body = get(port, "/", cookie)
    assert parse(body) == 1  # a new session after logout


def test_flask_example_under_gunicorn(sessyncd, tmp_path):
    port = free_port()
    with serve(gunicorn("flask_app:app", port), port, {"SESSYNC_URL": sessyncd},
               tmp_path / "gunicorn.log", cwd=EXAMPLES, health="/"):
        visits(port, lambda b: int(b.decode().rsplit(":", 1)[1]))


def test_fastapi_example_under_uvicorn(sessyncd, tmp_path):
    port = free_port()
    with serve(uvicorn("fastapi_app:app", port), port, {"SESSYNC_URL": sessyncd},
               tmp_path / "uvicorn.log", cwd=EXAMPLES, health="/"):
        visits(port, lambda b: json_body(b)["visits"])
