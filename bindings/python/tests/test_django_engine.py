"""The Django engine's SessionBase methods, sync and async, on sessyncd."""

from __future__ import annotations

import asyncio

import pytest

import sessync


@pytest.fixture(scope="module")
def SessionStore(sessyncd):
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(SECRET_KEY="test-only", SESSION_ENGINE="sessync.django",
                           SESSYNC_URL=sessyncd, INSTALLED_APPS=[], DATABASES={})
        django.setup()
    from sessync.django import SessionStore

    return SessionStore


def test_create_load_exists_delete(SessionStore):
    s = SessionStore()
    s["user"] = {"id": 7}
    s.save()  # no key yet: create() generates one
    key = s.session_key
    sessync.check_id(key)
    assert s.exists(key)
    s2 = SessionStore(key)
    assert s2["user"] == {"id": 7}
    s2["user"]["name"] = "ada"  # in place
    del s2["user"]["id"]
    s2["x"] = 1
    s2.save()
    assert SessionStore(key).load() == {"user": {"name": "ada"}, "x": 1}
    s3 = SessionStore(key)
    s3.pop("x")
    s3.save()
    assert SessionStore(key).load() == {"user": {"name": "ada"}}
    s3.delete()
    assert not s3.exists(key)
    SessionStore.clear_expired()  # a documented no-op


def test_unknown_or_invented_keys_are_never_adopted(SessionStore):
    for invented in ("attacker-chosen-key-0123456789", "short!!!", "x" * 100):
        s = SessionStore(invented)
        assert s.load() == {}
        s["a"] = 1
        s.save()
        assert s.session_key != invented and s.exists(s.session_key)
        assert not s.exists(invented)


def test_cycle_key_keeps_the_data_under_a_new_key(SessionStore):
    s = SessionStore()
    s["a"] = 1
    s.save()
    old = s.session_key
    s.cycle_key()
    assert s.session_key != old and not s.exists(old)
    assert SessionStore(s.session_key).load() == {"a": 1}


def test_incr_counts_every_concurrent_request(SessionStore):
    s = SessionStore()
    s["start"] = True
    s.save()
    key = s.session_key
    loaded = [SessionStore(key) for _ in range(8)]
    for x in loaded:
        x.load()  # all read the same data first
    for i, x in enumerate(loaded):
        x.incr("count")
        x[f"k{i}"] = i
        x.save()
    data = SessionStore(key).load()
    assert data["count"] == 8 and all(data[f"k{i}"] == i for i in range(8))
    with pytest.raises(TypeError):
        SessionStore(key).incr("start")  # a bool, not a counter


def test_async_forms_lose_nothing_and_behave_as_the_sync_ones(SessionStore):
    async def main():
        s = SessionStore()
        await s.aset("start", True)
        await s.asave()
        key = s.session_key
        assert await s.aexists(key)

        async def request(i: int) -> None:
            x = SessionStore(key)
            await x.aload()
            await asyncio.sleep(0)  # let the others load the same version
            await x.aincr("count")
            await x.aset(f"k{i}", i)
            await x.asave()

        await asyncio.gather(*(request(i) for i in range(8)))
        data = await SessionStore(key).aload()
        assert data["count"] == 8 and all(data[f"k{i}"] == i for i in range(8))
        unknown = SessionStore(sessync.generate_id())
        assert await unknown.aload() == {} and unknown.session_key is None
        await s.adelete()
        assert not await s.aexists(key)
        await SessionStore.aclear_expired()
        c = SessionStore()
        await c.acreate()
        assert await c.aexists(c.session_key)

    asyncio.run(main())


def _ttl(key):
    """The session's own TTL in ms as the store has it (None: the store's ttl)."""
    from sessync.django import get_store

    return get_store().record(key)["ttl"]


def test_set_expiry_gives_the_session_its_own_ttl(SessionStore):
    import datetime

    from django.utils import timezone

    s = SessionStore()
    s["a"] = 1
    s.save()
    key = s.session_key
    assert _ttl(key) is None  # no set_expiry: the store's ttl

    s.set_expiry(600)  # seconds of inactivity
    s.save()
    assert _ttl(key) == 600_000
    rec = SessionStore(key)
    assert rec.get_expiry_age() == 600 and rec["a"] == 1

    s = SessionStore(key)
    s.set_expiry(datetime.timedelta(hours=2))
    s.save()
    assert 7_190_000 <= _ttl(key) <= 7_200_000

    s = SessionStore(key)
    s.set_expiry(timezone.now() + datetime.timedelta(minutes=10))
    s.save()
    assert 590_000 <= _ttl(key) <= 600_000

    # Saves that do not touch the expiry keep applying it.
    s = SessionStore(key)
    s["b"] = 2
    s.save()
    assert 580_000 <= _ttl(key) <= 600_000

    # set_expiry(None): back to the cookie age (the C ABI cannot clear a session's own
    # TTL, so the engine gives it SESSION_COOKIE_AGE, what Django's cookie then says).
    from django.conf import settings

    s = SessionStore(key)
    s.set_expiry(None)
    s.save()
    assert _ttl(key) == settings.SESSION_COOKIE_AGE * 1000
    assert SessionStore(key).load() == {"a": 1, "b": 2}

    # A new session created with an expiry, and a browser-session cookie (0) that never
    # had one of its own: the store's ttl.
    n = SessionStore()
    n.set_expiry(120)
    n.create()
    assert _ttl(n.session_key) == 120_000
    b = SessionStore()
    b["x"] = 1
    b.set_expiry(0)
    b.save()
    assert _ttl(b.session_key) is None and b.get_expire_at_browser_close()


def test_set_expiry_in_the_past_expires_the_session(SessionStore):
    import time

    s = SessionStore()
    s["a"] = 1
    s.save()
    key = s.session_key
    s.set_expiry(-1)
    s.save()
    deadline = time.monotonic() + 10
    while s.exists(key) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not s.exists(key)


def test_set_expiry_over_a_year_raises_the_engines_invalid_argument(SessionStore):
    import datetime

    s = SessionStore()
    s["a"] = 1
    s.save()
    key = s.session_key
    s.set_expiry(datetime.timedelta(days=400))
    with pytest.raises(sessync.InvalidArgument) as e:
        s.save()
    assert "ttl" in e.value.message.lower(), e.value.message
    assert _ttl(key) is None  # nothing written
    assert "_session_expiry" not in SessionStore(key).load()


def test_async_save_applies_set_expiry(SessionStore):
    async def main():
        s = SessionStore()
        await s.aset("a", 1)
        await s.aset_expiry(300)
        await s.asave()
        return s.session_key

    key = asyncio.run(main())
    assert _ttl(key) == 300_000


def _racing(SessionStore):
    """A SessionStore whose session is destroyed by "another request" between save()'s
    begin and its commit."""
    from sessync.django import get_store

    class Racing(SessionStore):
        def _apply(self, s, data):
            get_store().destroy(self.session_key)
            return super()._apply(s, data)

    return Racing


def test_a_session_deleted_during_save_is_djangos_update_error(SessionStore):
    from django.contrib.sessions.backends.base import UpdateError

    s = SessionStore()
    s["a"] = 1
    s.save()
    r = _racing(SessionStore)(s.session_key)
    r.load()
    r["a"] = 2
    with pytest.raises(UpdateError) as info:
        r.save()
    assert isinstance(info.value.__cause__, (sessync.Destroyed, sessync.NotFound))

    async def main():
        a = SessionStore()
        await a.aset("a", 1)
        await a.asave()
        ar = _racing(SessionStore)(a.session_key)
        await ar.aload()
        await ar.aset("a", 2)
        with pytest.raises(UpdateError):
            await ar.asave()

    asyncio.run(main())


def test_django_middleware_turns_a_deleted_session_into_session_interrupted(SessionStore):
    # SessionInterrupted is a SuspiciousOperation: Django answers 400, not 500.
    from django.contrib.sessions.exceptions import SessionInterrupted
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.http import HttpResponse
    from django.test import RequestFactory

    s = SessionStore()
    s["a"] = 1
    s.save()
    request = RequestFactory().get("/")
    request.session = _racing(SessionStore)(s.session_key)
    request.session["a"] = 2
    mw = SessionMiddleware(lambda r: HttpResponse("ok"))
    with pytest.raises(SessionInterrupted):
        mw.process_response(request, HttpResponse("ok"))


def test_async_save_never_aborts_synchronously(SessionStore, monkeypatch):
    # The abort of asave's error path and of an empty acreate goes through the library's
    # callback (sessync_session_abort_async), never a blocking call on the loop.
    def refuse(self):
        raise AssertionError("Session.abort (a blocking round trip) called on the loop")

    monkeypatch.setattr(sessync.Session, "abort", refuse)
    from django.contrib.sessions.backends.base import UpdateError

    async def main():
        c = SessionStore()
        await c.acreate()  # empty: its begun session is aborted, then created by a patch
        assert await c.aexists(c.session_key)
        gone = SessionStore(c.session_key)
        assert await gone.aget("x") is None  # loaded (and cached) before the delete
        await c.adelete()
        await gone.aset("x", 1)
        with pytest.raises(UpdateError):  # _check_new: the session is gone; aborted
            await gone.asave()

    asyncio.run(main())
