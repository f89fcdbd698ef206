"""Call timers belong to no instance: real ``hello-tui serve`` processes on one
real Redis, one of them killed with SIGKILL while calls ring, and every
ringing call still ends exactly once, with the right reason, and leaves no key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import pytest
import redis.asyncio as aioredis

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, sdp
from tests.server.instances import Fleet

RING = 2.0  # ring timeout of these instances, seconds


async def call_keys(url: str) -> list[str]:
    """Call records and timer entries still in Redis."""
    r = aioredis.Redis.from_url(url)
    try:
        keys = [k.decode() async for k in r.scan_iter(match="hello:call:*")]
        keys += [f"timer {m!r}" for m in await r.zrange("hello:timers", 0, -1)]
        return keys
    finally:
        await r.aclose()


@pytest.mark.parametrize("killed", ["callee's", "caller's"])
async def test_ringing_ends_at_the_ring_timeout_when_an_instance_dies(
    fleet: Fleet, killed: str
) -> None:
    flags = ("--ring-timeout", str(RING), "--supervisory-timeout", "10")
    a, b = await fleet.start(*flags), await fleet.start(*flags)
    alice = await fleet.client(a.url, "alice@example.org")
    bob = await fleet.client(b.url, "bob@example.org")

    await alice.send(p.Call(to="bob@example.org", offer=sdp(), ref=1))
    created = await alice.expect(p.CallCreated, ref=1)
    await bob.expect(p.Incoming, call_id=created.call_id)
    rang = time.monotonic()
    await bob.send(p.Ringing(call_id=created.call_id, ref=1))
    await bob.expect(p.Ok, ref=1)
    await alice.expect(p.Ringing, call_id=created.call_id)

    # The instance that handled "ringing" (and would have armed the timer) or the other.
    survivor = alice if killed == "callee's" else bob
    await (b if killed == "callee's" else a).kill()
    ended = await survivor.expect(p.CallEnded, timeout=RING + 20, call_id=created.call_id)
    assert ended.reason == "timeout"
    assert time.monotonic() - rang >= RING - 0.1  # not before its time
    assert await call_keys(fleet.redis_url) == []


async def _reader(client: Client, into: list[p.Message]) -> None:
    with contextlib.suppress(Exception):
        while True:
            into.append(await client.recv(timeout=3600))


async def test_many_ringing_calls_each_end_exactly_once(fleet: Fleet) -> None:
    """60 calls over three instances, callers and callees on all of them; one in
    three never rings (setup-timeout), the rest ring (timeout). Instance B is
    killed while they ring: every surviving party hears each call end once."""
    flags = ("--ring-timeout", "4", "--supervisory-timeout", "4")
    instances = [await fleet.start(*flags) for _ in range(3)]
    n = 20
    callers = [await fleet.client(instances[i % 3].url, f"caller{i}@x.example") for i in range(n)]
    callees = [
        await fleet.client(instances[(i + 1) % 3].url, f"callee{i}@x.example") for i in range(n)
    ]
    expected: dict[str, str] = {}  # call id -> the reason it must end with
    parties: dict[str, tuple[int, int]] = {}  # call id -> (caller index, callee index)
    for i, caller in enumerate(callers):
        for k in range(3):
            j = (i + k) % n
            await caller.send(p.Call(to=f"callee{j}@x.example", offer=sdp(), ref=10 + k))
            call_id = (await caller.expect(p.CallCreated, ref=10 + k)).call_id
            incoming = await callees[j].expect(p.Incoming, call_id=call_id)
            parties[call_id] = (i, j)
            if k == 2:
                expected[call_id] = "setup-timeout"
                continue
            ref = callees[j].next_ref()
            await callees[j].send(p.Ringing(call_id=incoming.call_id, ref=ref))
            await callees[j].expect(p.Ok, ref=ref)
            await caller.expect(p.Ringing, call_id=call_id)
            expected[call_id] = "timeout"

    got: dict[int, list[p.Message]] = {id(c): [] for c in callers + callees}
    readers = [asyncio.create_task(_reader(c, got[id(c)])) for c in callers + callees]
    await instances[1].kill()
    alive = [c for i, c in enumerate(callers) if i % 3 != 1]
    alive += [c for j, c in enumerate(callees) if (j + 1) % 3 != 1]

    def endings(client: Client) -> Counter[tuple[str, str]]:
        return Counter((m.call_id, m.reason) for m in got[id(client)] if isinstance(m, p.CallEnded))

    def want(client: Client) -> Counter[tuple[str, str]]:
        out: Counter[tuple[str, str]] = Counter()
        for call_id, (i, j) in parties.items():
            if client is callers[i] or client is callees[j]:
                out[(call_id, expected[call_id])] += 1
        return out

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(endings(c) != want(c) for c in alive):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)  # a second ending would arrive in this time
    for task in readers:
        task.cancel()
    for client in alive:
        assert endings(client) == want(client), client.name
        others = [m for m in got[id(client)] if not isinstance(m, p.CallEnded)]
        assert others == [], others[:3]
    assert await call_keys(fleet.redis_url) == []
