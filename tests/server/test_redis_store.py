"""RedisStore against a real redis-server: the same seam as MemoryStore,
every key with a TTL, atomic updates, and delivery between two instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import msgspec
import pytest

from hello_tui.server.records import AccountRecord, CallRecord, RoomRecord
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.services.redis import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
async def store(redis_srv: RedisServer) -> AsyncIterator[RedisStore]:
    s = RedisStore(redis_srv.url, prefix=f"t{time.monotonic_ns()}:")
    yield s
    async for key in s._r.scan_iter(match=s.prefix + "*"):
        await s._r.delete(key)
    await s.close()


def _call(call_id: str = "call-0001", until: float | None = None) -> CallRecord:
    return CallRecord(call_id=call_id, state="init", caller="sess-aaaa",
                      until=until or time.time() + 30, offer="v=0 SDP-MARKER")  # fmt: skip


async def test_accounts_create_once_and_delete(store: RedisStore) -> None:
    rec = AccountRecord(public_key="pk", created=1, until=time.time() + 60)
    assert await store.create_account("h1", rec)
    assert not await store.create_account("h1", rec)
    assert (await store.get_account("h1")) == rec
    assert await store.delete_account("h1")
    assert await store.get_account("h1") is None
    assert (await store.dump())["records"] == {}


async def test_every_key_has_a_ttl(store: RedisStore) -> None:
    now = time.time()
    await store.create_account("h1", AccountRecord(public_key="pk", created=1, until=now + 60))
    await store.put_call(_call())
    await store.put_room(RoomRecord(token="tok-12345678", name="ct", owner="a:h1", created=1,
                                    expires=int(now) + 50, ttl=50, until=now + 60))  # fmt: skip
    await store.add_presence("h1", "sess-aaaa", now + 30)
    await store.register_session("sess-aaaa", "inst-1", now + 30)
    keys = [k async for k in store._r.scan_iter(match=store.prefix + "*")]
    assert len(keys) == 6
    for key in keys:
        ttl = await store._r.pttl(key)
        assert 0 < ttl <= 61_000, (key, ttl)


async def test_records_expire_by_themselves(store: RedisStore) -> None:
    await store.put_call(_call(until=time.time() + 0.2))
    assert await store.get_call("call-0001") is not None
    for _ in range(100):
        if await store.get_call("call-0001") is None:
            break
        await asyncio.sleep(0.02)
    assert await store.get_call("call-0001") is None
    assert (await store.dump())["records"] == {}


async def test_update_is_atomic_under_contention(store: RedisStore) -> None:
    await store.put_call(_call())

    def add_device(n: int):  # type: ignore[no-untyped-def]
        def fn(rec: CallRecord | None) -> CallRecord | None:
            assert rec is not None
            rec.devices = [*rec.devices, f"dev-{n:04d}"]
            return rec

        return fn

    await asyncio.gather(*(store.update_call("call-0001", add_device(n)) for n in range(30)))
    rec = await store.get_call("call-0001")
    assert rec is not None and len(rec.devices) == 30
    old, new = await store.update_call("call-0001", lambda r: None)
    assert old is not None and new is None
    dump = await store.dump()
    assert dump["records"] == {}
    assert "SDP-MARKER" not in repr(dump)


async def test_rooms_index_follows_owner(store: RedisStore) -> None:
    now = time.time()
    for i in range(3):
        await store.put_room(RoomRecord(token=f"tok-{i:08d}", name="ct", owner="a:h1",
                                        created=i, expires=int(now) + 50, ttl=50,
                                        until=now + 60))  # fmt: skip
    assert [r.token for r in await store.rooms_of("a:h1")] == [f"tok-{i:08d}" for i in range(3)]
    await store.update_room("tok-00000001", lambda r: None)
    assert [r.token for r in await store.rooms_of("a:h1")] == ["tok-00000000", "tok-00000002"]
    assert await store.rooms_of("a:nobody") == []


async def test_presence_lists_live_devices_only(store: RedisStore) -> None:
    now = time.time()
    await store.add_presence("h1", "s-live", now + 30)
    await store.add_presence("h1", "s-stale", now - 1)
    assert await store.list_presence("h1") == ["s-live"]
    assert await store.touch_presence("h1", "s-live", now + 60)
    assert not await store.touch_presence("h1", "s-gone", now + 60)
    await store.remove_presence("h1", "s-live")
    assert await store.list_presence("h1") == []


async def test_delivery_between_two_instances_keeps_order(redis_srv: RedisServer) -> None:
    prefix = f"d{time.monotonic_ns()}:"
    a, b = RedisStore(redis_srv.url, prefix=prefix), RedisStore(redis_srv.url, prefix=prefix)
    got: list[tuple[str, p.Message]] = []
    done = asyncio.Event()

    def on_b(sid: str, msg: p.Message) -> None:
        got.append((sid, msg))
        if len(got) == 200:
            done.set()

    try:
        b.subscribe("inst-b", on_b)
        await b.wait_subscribed()
        await b.register_session("sess-bbbb", "inst-b", time.time() + 30)
        for i in range(200):
            assert await a.deliver("sess-bbbb", p.Ringing(call_id=f"call-{i:06d}"))
        await asyncio.wait_for(done.wait(), 10)
        assert [m.call_id for _, m in got] == [f"call-{i:06d}" for i in range(200)]  # type: ignore[attr-defined]
        assert {sid for sid, _ in got} == {"sess-bbbb"}
        assert not await a.deliver("sess-none", p.Ringing(call_id="call-000000"))
    finally:
        await a.close()
        await b.close()


async def test_incoming_carries_the_record_and_relays_pass_as_frames(
    redis_srv: RedisServer,
) -> None:
    """An ``incoming`` delivered to another instance brings the call record along:
    that instance's next update is one compare-and-set, with no GET first. A
    relayed ``answer`` is offered as its frame (not decoded) when a frame
    handler takes it; an ``incoming`` never is."""
    prefix = f"h{time.monotonic_ns()}:"
    a, b = RedisStore(redis_srv.url, prefix=prefix), RedisStore(redis_srv.url, prefix=prefix)
    messages: list[p.Message] = []
    frames: list[bytes] = []
    arrived = asyncio.Event()

    def on_message(_: str, msg: p.Message) -> None:
        messages.append(msg)
        arrived.set()

    def on_frame(_: str, frame: bytes) -> bool:
        if not frame.startswith(b'{"type":"answer"'):
            return False
        frames.append(frame)
        arrived.set()
        return True

    async def gets() -> int:  # reads of a record: whole (GET) or its revision (GETRANGE)
        stats = await a._r.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("get", "getrange"))

    try:
        b.subscribe("inst-b", on_message)
        b.take_frames("inst-b", on_frame)
        await b.wait_subscribed()
        await b.register_session("sess-bbbb", "inst-b", time.time() + 30)
        record = _call()
        await a.put_call(record)
        assert await a.deliver("sess-bbbb", p.Incoming(call_id=record.call_id, caller="alice"))
        await asyncio.wait_for(arrived.wait(), 10)
        assert [type(m) for m in messages] == [p.Incoming] and frames == []

        before = await gets()
        old, new = await b.update_call(
            record.call_id, lambda rec: rec and msgspec.structs.replace(rec, state="alerting")
        )
        assert old == record and new is not None and new.state == "alerting"
        # One read: the compare-and-set script's own (the guess came with the delivery)
        assert await gets() == before + 1
        assert (await a.get_call(record.call_id)) == new

        arrived.clear()
        answer = p.Answer(call_id=record.call_id, sdp="v=0 ANSWER")
        assert await a.deliver("sess-bbbb", answer)
        await asyncio.wait_for(arrived.wait(), 10)
        assert frames == [p.encode(answer)] and len(messages) == 1
    finally:
        await a.close()
        await b.close()


async def test_reads_queue_when_called_and_leave_together(store: RedisStore) -> None:
    # A call's lookups (calls.py) are started together: the Redis store queues
    # each read when it is called, so they share one pipelined write.
    rec = AccountRecord(public_key="pk", created=1, until=time.time() + 60)
    assert await store.create_account("h2", rec)
    await store.add_presence("h2", "sess-1", time.time() + 60)
    await store.add_presence("h2", "sess-2", time.time() - 1)  # expired: not listed
    waiting = len(store._waiting)
    account_soon = store.get_account("h2")
    present_soon = store.list_presence("h2")
    assert len(store._waiting) == waiting + 2  # both queued before any await
    assert await present_soon == ["sess-1"]
    assert await account_soon == rec
