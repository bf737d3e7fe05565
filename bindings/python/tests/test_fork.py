"""A store opened before a fork: the child opens its own (LazyStore) and never frees the
parent's, whose engine threads did not survive the fork (freeing a mem:// store there
waited forever for them). Each case runs in a fresh interpreter, the child within a
timeout."""

from __future__ import annotations

import subprocess
import sys

PRELUDE = r'''
import os, signal, sys, time
import sessync
from sessync._lazy import LazyStore

def wait_child(pid, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)  # polling interval only
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    print("child hung", file=sys.stderr)
    sys.exit(3)

lazy = LazyStore("mem://", cookie_name="sid")
with lazy.get().begin(None) as s:  # the parent uses its store (and its engine threads)
    s["x"] = 1
del s  # (it refers to the store) the LazyStore holds the only reference
parent_store_id = id(lazy.get())
'''


def run(code: str) -> None:
    r = subprocess.run([sys.executable, "-c", PRELUDE + code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout, r.stderr)


def test_lazy_store_in_a_forked_child_reopens_without_freeing_the_parents():
    # The child holds no reference of its own to the parent's Store: replacing it in the
    # LazyStore dropped the last one (Store.__del__ freed it, and the child hung there).
    run(r'''
pid = os.fork()
if pid == 0:
    st = lazy.get()
    assert id(st) != parent_store_id
    with st.begin(None) as s:
        s["y"] = 2
        sid = s.id
    assert st.fetch(sid) == {"y": 2}
    assert lazy.get() is st
    st.close()
    del st, s
    import gc; gc.collect()
    os._exit(0)
assert wait_child(pid) == 0
with lazy.get().begin(None) as s:  # the parent's store is untouched
    s["z"] = 3
print("ok")
''')


def test_a_forked_child_that_exits_normally_never_frees_the_parents_store():
    # The child keeps a reference to the parent's Store and Session handles and exits
    # through the interpreter's normal shutdown (atexit, module teardown, __del__).
    run(r'''
kept = lazy.get()
held = kept.begin(None)
pid = os.fork()
if pid == 0:
    with lazy.get().begin(None) as s:
        s["y"] = 2
    kept.close()  # only marks it closed here
    try:
        kept.fetch("x" * 32)
    except sessync.StoreClosed:
        pass
    sys.exit(0)  # finalization drops `kept` and `held`
assert wait_child(pid) == 0
held.commit()
print("ok")
''')


def test_multiprocessing_fork_context_child_uses_the_lazy_store():
    run(r'''
import multiprocessing

def child(q):
    st = lazy.get()
    with st.begin(None) as s:
        s["n"] = 1
        sid = s.id
    q.put(st.fetch(sid))

ctx = multiprocessing.get_context("fork")
q = ctx.Queue()
ps = [ctx.Process(target=child, args=(q,)) for _ in range(3)]
for p in ps:
    p.start()
got = [q.get(timeout=30) for _ in ps]
for p in ps:
    p.join(30)
    if p.exitcode is None:
        p.kill()
        print("child hung", file=sys.stderr)
        sys.exit(3)
    assert p.exitcode == 0, p.exitcode
assert got == [{"n": 1}] * 3, got
print("ok")
''')


def test_a_given_store_is_reopened_in_the_child_with_its_options():
    # LazyStore(store=...) reopens from the URL and the options the Store was opened with.
    run(r'''
given = sessync.Store("mem://", cookie_name="custom", signing_keys=[b"k" * 32])
lz = LazyStore(store=given)
pid = os.fork()
if pid == 0:
    st = lz.get()
    assert st is not given
    s = st.begin(None); s["a"] = 1
    sc = s.commit()
    assert sc.startswith("custom="), sc
    os._exit(0)
assert wait_child(pid) == 0
print("ok")
''')
