"""A new call's record and its ``incoming`` leave in one batch on the hot
connection (one round trip on the call's critical path), and Redis runs them
in that order: whoever hears of the call finds its record. Two RedisStores on
one redis-server play two instances."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

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


@pytest.mark.parametrize("scripts", ["loaded", "flushed"])
async def test_record_then_incoming_in_one_batch(redis_srv: RedisServer, scripts: str) -> None:
    prefix = f"c{time.monotonic_ns()}:"
    a, b = RedisStore(redis_srv.url, prefix=prefix), RedisStore(redis_srv.url, prefix=prefix)
    seen: list[CallRecord | None] = []
    heard = asyncio.Event()

    def on_b(sid: str, msg: p.Message) -> None:
        assert isinstance(msg, p.Incoming)
        heard.set()

    try:
        b.subscribe("inst-b", on_b)
        await b.wait_subscribed()
        await b.register_session("sess-bbbb", "inst-b", time.time() + 30)
        assert await a._cmd("PING") == b"PONG"  # connected, its scripts loaded
        if scripts == "flushed":  # an operator's SCRIPT FLUSH: both miss, both recover
            assert await b._cmd("SCRIPT", "FLUSH") == b"OK"
        assert a._resp is not None
        batches: list[list[Any]] = []
        submit = a._resp.submit

        def counting(batch: Any) -> None:
            batches.append([c[0] for c, _ in batch])
            submit(batch)

        a._resp.submit = counting  # type: ignore[method-assign]
        incoming = p.Incoming(call_id="call-0001", caller="alice")
        to = [("sess-bbbb", incoming), ("sess-gone", incoming)]
        reached = await a.put_call_then_deliver(_call("call-0001"), to)
        assert reached == [True, False]
        if scripts == "loaded":
            assert batches[0] == ["EVALSHA", "EVALSHA", "EVALSHA"]  # write + two deliveries
        await asyncio.wait_for(heard.wait(), 10)
        seen.append(await b.get_call("call-0001"))
        assert seen[0] is not None and seen[0].devices == ["sess-bbbb"]
    finally:
        await a.close()
        await b.close()
