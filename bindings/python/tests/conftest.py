"""Shared fixtures: a real sessyncd on a temporary Unix socket, free ports, and servers
(gunicorn, uvicorn) started as process groups and stopped even when a test fails.
Nothing is mocked and nothing is skipped: a missing tool fails the test that needs it."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

HERE = Path(__file__).resolve().parent
PKG = HERE.parent                      # bindings/python
REPO = PKG.parent.parent               # the repository root
APPS = HERE / "apps"
EXAMPLES = PKG / "examples"


def sessyncd_binary() -> Path:
    p = Path(os.environ.get("SESSYNCD") or REPO / "target" / "release" / "sessyncd")
    if not p.is_file():
        pytest.fail(f"sessyncd not found at {p}: build it with `cargo build --release --bin sessyncd`"
                    " (bindings/python/run-tests.sh does)")
    return p


def _poll(what: str, check, proc: Optional[subprocess.Popen], log: Path,
          timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode} before it was ready:\n"
                        + log.read_text(errors="replace")[-4000:])
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not ready after {timeout} s:\n" + log.read_text(errors="replace")[-4000:])
        time.sleep(0.05)  # polling interval only: readiness is decided by the check


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


@pytest.fixture(scope="session")
def sessyncd(tmp_path_factory) -> Iterator[str]:
    """The URL of a sessyncd serving a Unix socket in a temporary directory."""
    import sessync

    d = tmp_path_factory.mktemp("sessyncd")
    sock = d / "sessync.sock"
    log = d / "sessyncd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(sessyncd_binary()), "--unix", str(sock)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"unix://{sock}"
    try:
        def ready() -> bool:
            if not sock.exists():
                return False
            with sessync.Store(url) as st:
                st.stats()
            return True

        _poll("sessyncd", ready, proc, log)
        yield url
    finally:
        _stop(proc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str, cookie: Optional[str] = None,
        timeout: float = 60.0) -> Tuple[int, Dict[str, List[str]], bytes]:
    """One GET on its own connection: (status, headers by lower-case name, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Cookie": cookie} if cookie else {}
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        hs: Dict[str, List[str]] = {}
        for k, v in r.getheaders():
            hs.setdefault(k.lower(), []).append(v)
        return r.status, hs, r.read()
    finally:
        conn.close()


def cookie_pair(headers: Dict[str, List[str]], name: str) -> str:
    for v in headers.get("set-cookie", []):
        pair = v.split(";", 1)[0]
        if pair.split("=", 1)[0] == name:
            return pair
    raise AssertionError(f"no {name} cookie in {headers.get('set-cookie')}")


@contextlib.contextmanager
def serve(argv: List[str], port: int, env: Dict[str, str], log: Path,
          cwd: Path = APPS, health: str = "/health") -> Iterator[subprocess.Popen]:
    """Runs a server until the block ends; ready when GET `health` answers 200."""
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PYTHONPATH"] = os.pathsep.join([str(cwd), full_env.get("PYTHONPATH", "")])
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _poll(argv[2] if len(argv) > 2 else argv[0],
              lambda: get(port, health, timeout=5)[0] == 200, proc, log)
        yield proc
    finally:
        _stop(proc)


def gunicorn(app: str, port: int, workers: int = 4) -> List[str]:
    return [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
            f"127.0.0.1:{port}", "--timeout", "60", app]


def uvicorn(app: str, port: int, workers: int = 4) -> List[str]:
    return [sys.executable, "-m", "uvicorn", "--workers", str(workers), "--host", "127.0.0.1",
            "--port", str(port), app]


def json_body(body: bytes):
    return json.loads(body.decode())
