"""Fetch and one-key update per second through the Python binding against the same
operations through the C ABI in C, in the same run, on the same store and session.

    python bench.py [--iterations N] [--daemon]

fetch:  Store.fetch(id)                      vs sessync_store_fetch (+ sessync_buf_free)
update: begin_id(id), s["counter"] = i,      vs sessync_session_begin_id (lock),
        s.commit()                              sessync_session_set, sessync_session_commit
The Python figures include what a Python caller gets: the JSON decoded to a dict, the
value encoded. The C program (bench_c.c) is built against the static library with cc.
--daemon also runs both against a sessyncd on a temporary Unix socket. Each side runs
three times, the best run counts; the session holds 10 small keys.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sessync

DATA = {f"key{i}": f"value {i}" for i in range(10)}
HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def build_c(out: Path) -> Path:
    exe = out / "bench_c"
    subprocess.run(["cc", "-O2", "-I", str(REPO / "include"), str(HERE / "bench_c.c"),
                    str(REPO / "target" / "release" / "libsessync.a"), "-lpthread", "-ldl",
                    "-lm", "-lrt", "-o", str(exe)], check=True)
    return exe


def py_side(store: sessync.Store, sid: str, n: int):
    t0 = time.perf_counter()
    for _ in range(n):
        store.fetch(sid)
    t1 = time.perf_counter()
    for i in range(n):
        s = store.begin_id(sid)
        s["counter"] = i
        s.commit()
    t2 = time.perf_counter()
    return n / (t1 - t0), n / (t2 - t1)


def c_side(exe: Path, url: str, sid: str, n: int):
    out = subprocess.run([str(exe), url, sid, str(n), json.dumps(DATA)], capture_output=True,
                         text=True, check=True)
    f = dict(kv.split("=") for kv in out.stdout.split())
    return float(f["fetch_per_s"]), float(f["update_per_s"])


def compare(label: str, url: str, exe: Path, n: int) -> None:
    store = sessync.Store(url)
    sid = sessync.generate_id()
    store.write(sid, DATA)
    py = [py_side(store, sid, n) for _ in range(3)]
    c = [c_side(exe, url, sid, n) for _ in range(3)]
    pf, pu = max(p[0] for p in py), max(p[1] for p in py)
    cf, cu = max(x[0] for x in c), max(x[1] for x in c)
    print(f"| {label} | fetch | {cf:,.0f} | {pf:,.0f} | {pf / cf:.2f} |")
    print(f"| {label} | update (begin_id, set, commit) | {cu:,.0f} | {pu:,.0f} | {pu / cu:.2f} |")
    store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iterations", type=int, default=100_000)
    ap.add_argument("--daemon", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_c(Path(tmp))
        print(f"python {sys.version.split()[0]}, library {sessync.version()} "
              f"({sessync._ffi.library_path}), {a.iterations} iterations, best of 3")
        print("| store | operation | C ABI ops/s | Python ops/s | Python / C |")
        print("|---|---|---|---|---|")
        compare("mem://", "mem://", exe, a.iterations)
        if a.daemon:
            sock = Path(tmp) / "sessync.sock"
            d = subprocess.Popen([str(REPO / "target" / "release" / "sessyncd"), "--unix", str(sock)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.monotonic() + 30
                while not sock.exists():
                    if d.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("sessyncd did not start")
                    time.sleep(0.01)
                compare("sessyncd (unix)", f"unix://{sock}", exe, max(a.iterations // 10, 1000))
            finally:
                d.terminate()
                d.wait()


if __name__ == "__main__":
    main()
