"""Bad input raises an ordinary Python exception (with the engine's message when the
engine decides) and never crashes the interpreter."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

import sessync


@pytest.fixture
def store():
    with sessync.Store("mem://", max_session_bytes=1000) as st:
        yield st


def test_status_classes_are_one_family():
    assert issubclass(sessync.InvalidArgument, ValueError)
    for cls in (sessync.NotFound, sessync.Conflict, sessync.LockTimeout, sessync.StaleToken,
                sessync.Locked, sessync.Destroyed, sessync.Rotated, sessync.Full,
                sessync.InvalidArgument, sessync.InvalidJson, sessync.TooLarge,
                sessync.NotANumber, sessync.IoError, sessync.BackendError, sessync.AuthError,
                sessync.ProtocolError, sessync.InternalError, sessync.Cancelled):
        assert issubclass(cls, sessync.SessyncError)


def test_non_json_values_are_refused_and_change_nothing(store):
    s = store.begin(None)
    s["ok"] = 1
    with pytest.raises(TypeError, match="not JSON serializable"):
        s["bad"] = {1, 2}
    with pytest.raises(TypeError):
        s["bad"] = object()
    with pytest.raises(ValueError):
        s["bad"] = math.nan
    assert dict(s) == {"ok": 1}
    s.commit()


def test_none_and_wrong_types(store):
    s = store.begin(None)
    with pytest.raises(TypeError, match="session key must be str, not NoneType"):
        s[None] = 1
    with pytest.raises(TypeError):
        s[1]
    with pytest.raises(TypeError, match="by must be int"):
        s.incr("n", "1")
    with pytest.raises(TypeError):
        s.set_bytes("b", "text")
    with pytest.raises(TypeError):
        store.begin_id(None)
    with pytest.raises(TypeError):
        store.begin(12)
    with pytest.raises(TypeError):
        store.begin(None, wait_ms="1s")
    with pytest.raises(TypeError):
        sessync.Store(None)
    with pytest.raises(TypeError):
        store.write(sessync.generate_id(), ["not", "a", "dict"])
    with pytest.raises(OverflowError):
        s.incr("n", 2**64)
    s["name"] = "ada"
    with pytest.raises(sessync.NotANumber, match="does not hold an integer") as e:
        s.incr("name")
    assert e.value.status_name == "NOT_A_NUMBER"
    with pytest.raises(sessync.InvalidArgument, match="NUL"):
        s["a\0b"] = 1
    s.abort()


def test_the_engine_s_messages(store):
    with pytest.raises(sessync.InvalidArgument, match="16 to 48 characters") as e:
        store.begin_id("short")
    assert e.value.status == 11 and e.value.status_name == "INVALID_ARGUMENT"
    with pytest.raises(sessync.InvalidArgument) as e:
        sessync.Store("bogus://x")
    assert "bogus" in str(e.value)
    with pytest.raises(sessync.InvalidArgument) as e:
        sessync.Store("mem://", no_such_option="1")
    assert "no_such_option" in str(e.value)
    s = store.begin(None)
    with pytest.raises(sessync.TooLarge, match="max_session_bytes"):
        s["big"] = "x" * 2000
    s.abort()
    with pytest.raises(sessync.NotFound):
        store.fetch(sessync.generate_id())
    with pytest.raises(sessync.InvalidArgument):
        sessync.check_id("no spaces allowed in ids!!")


def test_use_after_commit_or_abort(store):
    s = store.begin(None)
    s["a"] = 1
    s.commit()
    for op in (lambda: s["a"], lambda: s.__setitem__("a", 2), lambda: s.incr("a"),
               lambda: s.commit(), lambda: s.abort(), lambda: len(s), lambda: s.id):
        with pytest.raises(sessync.SessionClosed, match="already committed"):
            op()
    s2 = store.begin(None)
    s2.abort()
    with pytest.raises(sessync.SessionClosed, match="already aborted"):
        s2["x"] = 1


def test_closed_store(store):
    st = sessync.Store("mem://")
    s = st.begin(None)
    st.close()
    with pytest.raises(sessync.StoreClosed):
        st.begin(None)
    with pytest.raises(sessync.StoreClosed):
        st.fetch(sessync.generate_id())
    s["still"] = "works"  # a session begun before keeps the store alive
    s.commit()
    st.close()  # twice is fine


def test_abuse_never_crashes_the_interpreter():
    code = r'''
import gc, sessync
st = sessync.Store("mem://")
errors = 0
for bad in (None, 1, b"x", "x\0y", "\ud800", "", "a" * 10000):
    for op in (lambda b: st.begin_id(b), lambda b: st.fetch(b), lambda b: st.destroy(b),
               lambda b: st.incr(b, "k"), lambda b: sessync.check_id(b),
               lambda b: st.begin(None).__setitem__(b, 1), lambda b: st.begin(b)):
        try:
            op(bad)
        except Exception:
            errors += 1
s = st.begin(None)
s.commit()
for _ in range(3):
    try:
        s.commit()
    except sessync.SessionClosed:
        errors += 1
st.close()
for _ in range(3):
    try:
        st.begin(None)
    except sessync.StoreClosed:
        errors += 1
leak = sessync.Store("mem://").begin(None)  # never ended: freed (aborted) by the GC
del leak
gc.collect()
print("survived", errors)
'''
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("survived")
