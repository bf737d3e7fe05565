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
