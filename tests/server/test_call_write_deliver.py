"""A call update and what it tells other instances leave as one script
(``update_call_then_deliver``): one round trip, the messages published only if
the compare-and-set wrote, computed again from the fresh record when the guess
was stale. Two RedisStores on one redis-server play two instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from msgspec.structs import replace

from hello_tui.server.errors import Refusal
from hello_tui.server.records import CallRecord
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.services.redis import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


def _call(call_id: str) -> CallRecord:
    now = time.time()
    return CallRecord(call_id=call_id, state="init", caller="sess-aaaa", devices=["sess-bbbb"],
                      until=now + 60, deadline=now + 30, offer="v=0 SDP")  # fmt: skip


def _ring(rec: CallRecord | None) -> CallRecord:
    assert rec is not None
    if rec.state == "connected":
        raise Refusal("not-allowed", "answered already")
    return replace(rec, state="alerting", deadline=time.time() + 30)


def _tell(old: CallRecord | None, new: CallRecord | None) -> list[tuple[str, p.Message]]:
    # Says which record it was computed on: a stale guess must not leak out.
    assert old is not None and new is not None
    return [(old.caller, p.Ringing(call_id=f"{old.call_id}-{len(old.devices)}"))]


@pytest.mark.parametrize("scripts", ["loaded", "flushed"])
async def test_update_and_its_deliveries_are_one_script(
    redis_srv: RedisServer, scripts: str
) -> None:
    prefix = f"w{time.monotonic_ns()}:"
    # a: the caller's instance; b: the instance updating the call (stale copy)
    a, b = RedisStore(redis_srv.url, prefix=prefix), RedisStore(redis_srv.url, prefix=prefix)
    heard: asyncio.Queue[p.Message] = asyncio.Queue()
    try:
        a.subscribe("inst-a", lambda sid, msg: heard.put_nowait(msg))
        await a.wait_subscribed()
        await a.register_session("sess-aaaa", "inst-a", time.time() + 30)
        await b.put_call(_call("call-0001"))  # b keeps what it wrote as its guess
        # Another instance changes the record behind b's back: b's guess is stale.
        await a.update_call("call-0001", lambda r: replace(r, devices=["sess-bbbb", "sess-cccc"]))
        assert await b._cmd("PING") == b"PONG"
        if scripts == "flushed":  # an operator's SCRIPT FLUSH: EVAL loads it again
            assert await b._cmd("SCRIPT", "FLUSH") == b"OK"
        assert b._resp is not None
        batches: list[list[Any]] = []
        submit = b._resp.submit

        def counting(batch: Any) -> None:
            batches.append([c[0] for c, _ in batch])
            submit(batch)

        b._resp.submit = counting  # type: ignore[method-assign]
        old, new = await b.update_call_then_deliver("call-0001", _ring, _tell)
        assert old is not None and old.devices == ["sess-bbbb", "sess-cccc"]
        assert new is not None and new.state == "alerting"
        # The stale try wrote nothing and told no one; the retry told once.
        first = await asyncio.wait_for(heard.get(), 10)
        assert first == p.Ringing(call_id="call-0001-2")
        if scripts == "loaded":  # stale guess, then the retry: one command each
            assert batches == [["EVALSHA"], ["EVALSHA"]]

        # Refused on what Redis holds: nothing is written, nobody is told.
        await a.update_call("call-0001", lambda r: replace(r, state="connected"))
        with pytest.raises(Refusal):
            await b.update_call_then_deliver("call-0001", _ring, _tell)
        stored = await a.get_call("call-0001")
        assert stored is not None and stored.state == "connected"
        # A marker on the same channel: had the refused update published, it came first.
        assert await b.deliver("sess-aaaa", p.Ringing(call_id="marker-01"))
        assert await asyncio.wait_for(heard.get(), 10) == p.Ringing(call_id="marker-01")
    finally:
        await a.close()
        await b.close()


async def test_a_session_held_here_hears_it_once_written(redis_srv: RedisServer) -> None:
    prefix = f"l{time.monotonic_ns()}:"
    store = RedisStore(redis_srv.url, prefix=prefix)
    heard: list[tuple[str, p.Message]] = []
    try:
        store.subscribe("inst-a", lambda sid, msg: heard.append((sid, msg)))
        await store.wait_subscribed()
        await store.register_session("sess-aaaa", "inst-a", time.time() + 30)
        await store.put_call(_call("call-0002"))
        old, new = await store.update_call_then_deliver("call-0002", _ring, _tell)
        assert old is not None and new is not None
        assert heard == [("sess-aaaa", p.Ringing(call_id="call-0002-1"))]  # no round trip
        # A delete tells too (the ending's path): None as the new record.
        ended = p.CallEnded(call_id="call-0002", reason="hangup")
        await store.update_call_then_deliver(
            "call-0002", lambda r: None, lambda o, n: [("sess-aaaa", ended)]
        )
        assert heard[-1] == ("sess-aaaa", ended)
        assert await store.get_call("call-0002") is None
        assert not await store._cmd("ZSCORE", prefix + "timers", "call-0002")
    finally:
        await store.close()


async def test_compare_and_set_by_revision_and_whole_for_older_records(
    redis_srv: RedisServer,
) -> None:
    # A stored record starts with its revision (each write its own), and a
    # compare-and-set sends those 12 bytes, not the 3-5 KB record: Redis's Lua
    # hashes every byte of every string it is handed.
    prefix = f"r{time.monotonic_ns()}:"
    a, b = RedisStore(redis_srv.url, prefix=prefix), RedisStore(redis_srv.url, prefix=prefix)
    try:
        record = replace(_call("call-0003"), offer="v=0\r\n" + "a=x\r\n" * 800)
        await a.put_call(record)
        key = prefix + "call:call-0003"
        stored = await a._cmd("GET", key)
        assert stored[:1] == b"\xc1" and len(stored) > 4000
        assert b._resp is not None
        sent: list[list[Any]] = []
        submit = b._resp.submit

        def spying(batch: Any) -> None:
            sent.extend(list(c) for c, _ in batch)
            submit(batch)

        b._resp.submit = spying  # type: ignore[method-assign]
        _, new = await b.update_call("call-0003", lambda r: replace(r, state="alerting"))
        assert new is not None and new.state == "alerting"
        (script,) = [c for c in sent if c[0] == "EVALSHA"][-1:]
        assert script[5] == "rev" and script[6] == stored[:12]
        # The same content written again is a new revision: a guess of the old one fails.
        stale = await a._cmd("GET", key)
        await a.update_call("call-0003", lambda r: r)
        b._seen["call-0003"] = stale
        _, again = await b.update_call("call-0003", lambda r: replace(r, state="connecting"))
        assert again is not None and again.state == "connecting"
        assert [c[5] for c in sent if c[0] == "EVALSHA"][-2:] == ["rev", "rev"]  # stale, retry

        # A record written before revisions (a fleet mid-upgrade) is compared whole:
        # two such versions share their first bytes, so a stale guess must still fail.
        old_bytes = msgspec.msgpack.encode(replace(record, state="init"))
        newer = msgspec.msgpack.encode(replace(record, state="init", video=True))
        assert old_bytes[:12] == newer[:12]
        await a._cmd("SET", key, newer)
        b._seen["call-0003"] = old_bytes
        old, last = await b.update_call("call-0003", lambda r: replace(r, state="alerting"))
        assert old is not None and old.video and last is not None  # decided on Redis's copy
        assert [c[5] for c in sent if c[0] == "EVALSHA"][-2:] == ["cas", "cas"]  # stale, retry
        assert (await a._cmd("GET", key))[:1] == b"\xc1"  # rewritten with a revision
    finally:
        await a.close()
        await b.close()
