"""The Store and Session API on the in-process store and on sessyncd."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import sessync
from conftest import REPO


@pytest.fixture(params=["mem", "sessyncd"])
def store(request):
    url = "mem://" if request.param == "mem" else request.getfixturevalue("sessyncd")
    with sessync.Store(url, cookie_name="sid") as st:
        yield st


def cookie_of(set_cookie: str) -> str:
    return set_cookie.split(";", 1)[0]


def test_session_is_a_mutable_mapping_and_commits_per_key(store):
    with store.begin(None) as s:
        assert s.is_new and len(s) == 0
        s["user"] = {"name": "ada", "roles": ["admin"]}
        s["theme"] = "dark"
        s["none"] = None
        assert s.incr("visits") == 1
        assert set(s) == {"user", "theme", "none", "visits"}
        assert s.get("missing", 7) == 7 and "theme" in s and "missing" not in s
        del s["theme"]
        with pytest.raises(KeyError):
            del s["theme"]
        sid = s.id
    data = store.fetch(sid)
    assert data == {"user": {"name": "ada", "roles": ["admin"]}, "none": None, "visits": 1}


def test_commit_returns_the_cookie_and_the_next_request_finds_the_session(store):
    s = store.begin(None)
    s["n"] = 1
    set_cookie = s.commit()
    assert set_cookie.startswith("sid=") and "HttpOnly" in set_cookie
    with store.begin(cookie_of(set_cookie)) as s2:
        assert not s2.is_new and s2["n"] == 1 and s2.version == 1


def test_in_place_mutation_of_nested_values_is_sent_at_commit(store):
    with store.begin(None) as s:
        s["cart"] = []
        sid = s.id
    with store.begin_id(sid) as s:
        s["cart"].append("apple")
        s["cart"].append("pear")
        assert s.changed
    assert store.fetch(sid) == {"cart": ["apple", "pear"]}
    # A value set and then changed in place is sent as it is at commit.
    with store.begin_id(sid) as s:
        d = {"a": 1}
        s["d"] = d
        d["b"] = 2
    assert store.fetch(sid)["d"] == {"a": 1, "b": 2}


def test_exception_aborts_and_releases_the_lock(store):
    with store.begin(None) as s:
        s["n"] = 1
        sid = s.id
    with pytest.raises(RuntimeError):
        with store.begin_id(sid) as s:
            s["n"] = 2
            raise RuntimeError("boom")
    assert store.fetch(sid) == {"n": 1}
    with store.begin_id(sid, wait_ms=0) as s:  # not locked any more
        assert s["n"] == 1


def test_concurrent_sessions_without_lock_lose_nothing(store):
    with store.begin(None) as s:
        s["start"] = True
        sid = s.id
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        s = store.begin_id(sid, lock=False)
        barrier.wait()  # all eight have read the same version
        s.incr("count")
        s[f"k{i}"] = i
        s.commit()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = store.fetch(sid)
    assert data["count"] == 8
    assert all(data[f"k{i}"] == i for i in range(8))


def test_rotate_destroy_bytes_owner(store):
    with store.begin(None) as s:
        s.set_bytes("blob", b"\x00\xff raw")
        s.set_bytes("text", b"plain")
        old = s.id
    with store.begin_id(old) as s:
        assert s.get_bytes("blob") == b"\x00\xff raw" and s.get_bytes("text") == b"plain"
        s.rotate()
        new = s.id
        s.set_owner("user-1")
    assert new != old
    assert store.sessions_of("user-1") == [new]
    s = store.begin_id(new)
    s.destroy()
    set_cookie = s.commit()
    assert set_cookie is None or "sid=" in set_cookie
    with pytest.raises(sessync.NotFound):
        store.fetch(new)


def test_store_operations(store):
    sid = sessync.generate_id()
    sessync.check_id(sid)
    assert store.patch(sid, {"a": 1, "b": {"c": 1}}) == 1
    store.patch(sid, {"b": {"d": 2}, "a": None})
    assert store.fetch(sid) == {"b": {"c": 1, "d": 2}}
    assert store.incr(sid, "n", 5) == 5
    data, ver = store.fetch_version(sid)
    assert ver == 3
    with pytest.raises(sessync.Conflict):
        store.write(sid, {"x": 1}, expected_version=1)
    store.write(sid, {"x": 1}, expected_version=3)
    assert store.record(sid)["data"] == {"x": 1}
    token = store.lock(sid, lease_ms=5000, wait_ms=0)
    with pytest.raises(sessync.LockTimeout):
        store.lock(sid, wait_ms=0)
    store.unlock(sid, token)
    new = store.rotate(sid)
    assert store.fetch(new) == {"x": 1}
    assert store.exists(new) and store.destroy(new) and not store.exists(new)
    assert store.stats()["operations"] > 0
    assert sessync.version() == "0.2.0"


def _ttl_of(store, id):
    """The session's own TTL in ms from the C ABI's record (sessync_store_get +
    sessync_record_ttl: 0 when it follows the store's ttl), checked against the record
    JSON's "ttl" (sessync_store_fetch_record: null then)."""
    lib = sessync._core._lib
    ffi = sessync._ffi.ffi
    out = ffi.new("sessync_record **")
    err = ffi.new("sessync_error *")
    rc = lib.sessync_store_get(store._ptr, id.encode(), out, err)
    assert rc == 0, ffi.string(err.message)
    try:
        ms = int(lib.sessync_record_ttl(out[0]))
    finally:
        lib.sessync_record_free(out[0])
    assert store.record(id)["ttl"] == (ms or None)
    return ms


def test_set_ttl_gives_the_session_its_own_ttl_at_commit(store):
    with store.begin(None) as s:
        s["x"] = 1
        s.set_ttl(90)
        sid = s.id
    assert _ttl_of(store, sid) == 90_000
    rec = store.record(sid)
    # Expires 90 s after its last access, not after the store's default ttl.
    assert 0 < rec["expires_at"] - rec["last_access"] <= 90_000
    # A timedelta, and a float of seconds; with nothing else changed it is a touch.
    with store.begin_id(sid) as s:
        s.set_ttl(datetime.timedelta(minutes=5))
    assert _ttl_of(store, sid) == 300_000
    with store.begin_id(sid) as s:
        s.set_ttl(1.5)
        s["y"] = 2
    assert _ttl_of(store, sid) == 1_500 and store.fetch(sid) == {"x": 1, "y": 2}
    # Later writes keep it; a session that never had one follows the store's.
    store.patch(sid, {"z": 3})
    assert _ttl_of(store, sid) == 1_500
    other = sessync.generate_id()
    store.write(other, {"a": 1})
    assert _ttl_of(store, other) == 0 and store.record(other)["ttl"] is None
    # A new session with only a TTL is still not stored.
    s = store.begin(None)
    s.set_ttl(60)
    new_id = s.id
    assert s.commit() is None and not store.exists(new_id)


def test_a_session_expires_after_its_own_ttl(store):
    with store.begin(None) as s:
        s["x"] = 1
        s.set_ttl(datetime.timedelta(milliseconds=300))
        sid = s.id
    assert store.exists(sid)
    deadline = time.monotonic() + 10
    while store.exists(sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not store.exists(sid)


def test_bad_ttls_raise_invalid_argument_with_the_engines_message(store):
    s = store.begin(None)
    try:
        for bad in (0, -5, datetime.timedelta(0), datetime.timedelta(days=400), float("inf")):
            with pytest.raises(sessync.InvalidArgument) as e:
                s.set_ttl(bad)
            assert e.value.status_name == "INVALID_ARGUMENT"
            assert "ttl" in e.value.message.lower(), e.value.message
        with pytest.raises(TypeError):
            s.set_ttl("30m")
        with pytest.raises(TypeError):
            s.set_ttl(True)
    finally:
        s.abort()
    sid = sessync.generate_id()
    store.write(sid, {"a": 1})
    with pytest.raises(sessync.InvalidArgument) as e:
        store.touch(sid, ttl=0)
    assert "ttl" in e.value.message.lower(), e.value.message
    assert _ttl_of(store, sid) == 0  # nothing changed


def test_touch_with_a_ttl(store):
    sid = sessync.generate_id()
    store.write(sid, {"a": 1})
    assert store.touch(sid, ttl=datetime.timedelta(hours=2)) is True
    assert _ttl_of(store, sid) == 7_200_000
    assert store.touch(sid, 30) is True and _ttl_of(store, sid) == 30_000
    store.touch(sid)  # a plain touch keeps it
    assert _ttl_of(store, sid) == 30_000
    with pytest.raises(sessync.NotFound):
        store.touch(sessync.generate_id(), ttl=30)


def test_list_and_clear():
    with sessync.Store("mem://", shards=8) as st:
        assert list(st.list()) == [] and st.list_page() == ([], 0)
        ids = set()
        for _ in range(300):
            sid = sessync.generate_id()
            st.patch(sid, {"n": 1})
            ids.add(sid)
        # Page by page: cursor 0, then each returned cursor until it is 0.
        seen, cursor, pages = set(), 0, 0
        while True:
            page, cursor = st.list_page(cursor, 20)
            seen.update(page)
            pages += 1
            if cursor == 0:
                break
        assert seen == ids and pages > 1
        listed = list(st.list(count=7))
        assert len(listed) == 300 and set(listed) == ids
        with pytest.raises(sessync.InvalidArgument):
            st.list_page(0, 0)
        gone = next(iter(ids))
        st.destroy(gone)
        assert len(list(st.list())) == 299
        assert st.clear() == 299
        assert list(st.list()) == [] and st.clear() == 0
        # Tombstoned: a request in flight cannot bring a cleared session back.
        with pytest.raises(sessync.Destroyed):
            st.patch(next(iter(ids - {gone})), {"n": 2}, create=False)


def test_list_and_clear_on_sessyncd(sessyncd):
    with sessync.Store(sessyncd) as st:
        mine = set()
        for _ in range(50):
            sid = sessync.generate_id()
            st.patch(sid, {"n": 1})
            mine.add(sid)
        assert mine <= set(st.list(count=16))  # the daemon may hold other tests' sessions
        assert st.clear() >= 50
        assert not any(st.exists(sid) for sid in mine)


def test_gil_is_released_while_a_call_waits_for_a_lock(store):
    holder = store.begin(None)
    holder["x"] = 1
    cookie = cookie_of(holder.commit())
    holder = store.begin(cookie)  # holds the visitor's lock
    got = {}

    def waiter() -> None:
        try:
            with store.begin(cookie, wait_ms=20000) as s:
                got["x"] = s["x"]
        except Exception as e:  # pragma: no cover - reported below
            got["error"] = e

    t = threading.Thread(target=waiter)
    t.start()
    # If the waiting thread held the GIL, this thread could not run until its call
    # timed out (20 s) with LockTimeout.
    n = 0
    while n < 1000:
        n += 1
    holder.commit()
    t.join()
    # Had the waiter kept the GIL, the commit above would have come only after its wait
    # ran out, and it would hold LockTimeout instead of the value.
    assert got == {"x": 1}


def test_async_begin_and_commit_do_not_block_the_loop(store):
    s = store.begin(None)
    s["x"] = 1
    cookie = cookie_of(s.commit())

    async def main():
        holder = store.begin(cookie)  # holds the lock
        task = asyncio.ensure_future(store.begin_async(cookie, wait_ms=20000))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.001)
            ticks += 1
            if ticks == 20:
                holder.commit()  # the waiter can only win after this
        assert ticks >= 20
        s2 = await task
        s2.incr("x")
        assert await s2.commit_async() is None
        async with await store.begin_async(cookie) as s3:
            s3["y"] = 2

    asyncio.run(main())
    with store.begin(cookie) as s:
        assert s.to_dict() == {"x": 2, "y": 2}


def test_cancelling_an_async_begin_gives_the_lock_back(store):
    s = store.begin(None)
    s["x"] = 1
    cookie = cookie_of(s.commit())

    async def main():
        holder = store.begin(cookie)
        task = asyncio.ensure_future(store.begin_async(cookie, wait_ms=20000))
        for _ in range(5):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        holder.commit()
        # The cancelled waiter gives the lock back if it won it meanwhile (its callback
        # comes with CANCELLED when the lock is released), so the next request gets it.
        s2 = await store.begin_async(cookie, wait_ms=10000)
        s2.abort()
        with pytest.raises(sessync.LockTimeout):
            held = store.begin(cookie)
            try:
                await store.begin_async(cookie, wait_ms=0)
            finally:
                held.abort()

    asyncio.run(main())


def test_interpreter_exits_cleanly_right_after_async_calls():
    # Callbacks run Python on the library's threads; the process must never abort when
    # it exits while one is finishing or pending (a waiter cancelled, a lock never freed).
    code = r'''
import asyncio, sessync
st = sessync.Store("mem://")
s = st.begin(None); s["x"] = 1; c = s.commit().split(";")[0]
async def main():
    h = st.begin(c)
    t = asyncio.ensure_future(st.begin_async(c, wait_ms=20000))
    await asyncio.sleep(0)
    t.cancel()
    try:
        await t
    except asyncio.CancelledError:
        pass
    h.commit()
    s2 = await st.begin_async(c, wait_ms=10000)
    s2["y"] = 2
    await s2.commit_async()
    held = st.begin(c)
    asyncio.ensure_future(st.begin_async(c, wait_ms=20000))  # still waiting at exit
    await asyncio.sleep(0)
asyncio.run(main())
print("ok")
'''
    run_many(code, 30)


def test_exit_with_calls_nobody_cancelled_is_clean():
    # A loop on a daemon thread is never shut down, so nothing cancels its pending lock
    # waits, and a commit is still running when the main thread exits: the atexit
    # handler's sessync_async_drain cancels the waits and waits for every callback.
    code = r'''
import asyncio, threading, sessync
st = sessync.Store("mem://")
s = st.begin(None); s["x"] = 1; c = s.commit().split(";")[0]
held = st.begin(c)
loop = asyncio.new_event_loop()
threading.Thread(target=loop.run_forever, daemon=True).start()
waits = [asyncio.run_coroutine_threadsafe(st.begin_async(c, wait_ms=60000), loop) for _ in range(4)]
async def commit_one():
    s2 = await st.begin_async(None)
    s2["y"] = 1
    asyncio.ensure_future(s2.commit_async())
    await asyncio.sleep(0)  # the commit has been handed to the library
asyncio.run_coroutine_threadsafe(commit_one(), loop).result(10)
# Tasks start in order: once this one is done, every wait above has been made.
asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)
print("ok")
'''
    run_many(code, 30)


def run_many(code: str, runs: int, parallel: int = 4) -> None:
    """Runs `code` in `runs` fresh interpreters, `parallel` at a time: each must print ok
    and exit 0 (an abort at exit is -6, a hang the timeout)."""
    done = 0
    while done < runs:
        batch = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(min(parallel, runs - done))]
        for p in batch:
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                raise AssertionError(f"run {done} hung at exit: {err[-2000:]}")
            assert p.returncode == 0 and out.strip() == "ok", (done, p.returncode, err[-2000:])
            assert "sessync:" not in err, err[-2000:]  # the drain left nothing running
            done += 1


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e,
                          timeout=120)


def test_sessync_lib_names_the_library_and_a_wrong_one_is_refused():
    lib = sessync._ffi.library_path
    assert lib is not None
    ok = run_python("import sessync; sessync.Store(); print(sessync._ffi.library_path)",
                    SESSYNC_LIB=str(REPO / "target" / "release" / "libsessync.so"))
    assert ok.returncode == 0, ok.stderr
    bad = run_python("import sessync; sessync.Store()", SESSYNC_LIB="/nonexistent/libsessync.so")
    assert bad.returncode != 0 and "LibraryNotFound" in bad.stderr and "SESSYNC_LIB" in bad.stderr


def test_a_header_of_another_version_is_refused(tmp_path: Path):
    text = (REPO / "include" / "sessync_ffi.h").read_text()
    (tmp_path / "sessync_ffi.h").write_text(
        text.replace("SESSYNC_VERSION_NUMBER = ", "SESSYNC_VERSION_NUMBER = 9"))
    r = run_python("import sessync; sessync.Store()", SESSYNC_INCLUDE=str(tmp_path))
    assert r.returncode != 0 and "refusing a mismatch" in r.stderr, r.stderr


def test_the_installed_package_bundles_the_library_and_is_typed():
    pkg = Path(sessync.__file__).parent
    assert (pkg / "py.typed").is_file()
    assert (pkg / "libsessync.so").is_file() and (pkg / "sessync_ffi.h").is_file()
    assert sessync._ffi.library_path == str(pkg / "libsessync.so")
