"""MemoryStore semantics the services rely on: expiry, atomic updates, the index."""

from __future__ import annotations

import pytest

from hello_tui.server.records import CallRecord, RoomRecord
from hello_tui.server.store import MemoryStore
from hello_tui.signaling import protocol as p
from tests.server.conftest import FakeClock


def room(clock: FakeClock, token: str, owner: str = "a:k", ttl: int = 100) -> RoomRecord:
    now = int(clock())
    return RoomRecord(
        token=token, name="", owner=owner, created=now, expires=now + ttl, ttl=ttl, until=now + ttl
    )


async def test_every_record_expires() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    await store.put_call(CallRecord(call_id="c" * 22, state="init", caller="s", until=clock() + 5))
    await store.put_room(room(clock, "r" * 22))
    await store.add_presence("k", "s", clock() + 5)
    await store.register_session("s", "i", clock() + 5)
    assert await store.list_presence("k") == ["s"]
    clock.advance(6)
    assert await store.get_call("c" * 22) is None
    assert await store.list_presence("k") == []
    assert not await store.deliver("s", p.Ok())
    clock.advance(100)
    assert await store.dump() == {"records": {}, "presence": {}, "sessions": {}, "owners": {}}


async def test_update_is_all_or_nothing() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    record = CallRecord(call_id="c" * 22, state="init", caller="s", until=clock() + 5)
    await store.put_call(record)

    def boom(rec: CallRecord | None) -> CallRecord:
        assert rec is not None
        rec.state = "connected"  # mutating the copy it was given changes nothing stored
        raise ValueError

    with pytest.raises(ValueError):
        await store.update_call(record.call_id, boom)
    stored = await store.get_call(record.call_id)
    assert stored is not None and stored.state == "init"
    old, new = await store.update_call(record.call_id, lambda r: None)
    assert old == record and new is None
    assert await store.get_call(record.call_id) is None


async def test_owner_index_follows_rooms() -> None:
    clock = FakeClock()
    store = MemoryStore(clock)
    await store.put_room(room(clock, "a" * 22))
    await store.put_room(room(clock, "b" * 22, ttl=10))
    assert [r.token for r in await store.rooms_of("a:k")] == ["a" * 22, "b" * 22]
    await store.update_room("a" * 22, lambda r: None)
    clock.advance(11)
    assert await store.rooms_of("a:k") == []
    assert (await store.dump())["owners"] == {}


async def test_delivery_reaches_the_subscribed_instance() -> None:
    store = MemoryStore()
    got: list[tuple[str, p.Message]] = []
    store.subscribe("i1", lambda sid, msg: got.append((sid, msg)))
    await store.register_session("s1", "i1", store.clock() + 10)
    await store.register_session("s2", "i2", store.clock() + 10)  # nobody subscribed
    assert await store.deliver("s1", p.Ok(ref=1))
    assert not await store.deliver("s2", p.Ok(ref=2))
    assert not await store.deliver("nobody", p.Ok(ref=3))
    assert got == [("s1", p.Ok(ref=1))]
    assert await store.ping()


def test_ids_never_start_with_a_dash() -> None:
    from hello_tui.server.ids import new_id

    ids = [new_id() for _ in range(5000)]
    assert not any(i.startswith("-") for i in ids)
    assert len(set(ids)) == 5000 and all(len(i) == 22 for i in ids)
