"""One of three instances killed (``kill -9``) with calls ringing and connected.

Everything real: three ``hello-tui serve`` processes on one redis-server behind
HAProxy running deploy/haproxy.cfg, real ``Phone``\\ s (aiortc peers, a sine
tone each way, ``null:`` sinks counting what arrives) connected through the
proxy with the reconnecting ``SignalingClient``. Before the kill: two connected
calls with a party on the victim (one each way) and three ringing calls (a
party on the victim each way, and one between survivors). After it:

- the victim's clients are back through the proxy, on the others, signed in;
- the survivors reap the dead instance (server/reaper.py): the connected
  calls' records are deleted and the survivors' parties hear it, yet audio
  keeps arriving both ways on both calls, and both hang up cleanly;
- the ringing calls time out (a party on the victim) or connect (between
  survivors, accepted after the kill), and that one hangs up through the server;
- Redis holds no call key, no route or device entry of a dead session, and
  once every client has gone no session or presence key at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import cast

import aiohttp
import pytest
import redis.asyncio as aioredis

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.signaling.client import ReconnectPolicy, SignalingClient
from hello_tui.signaling.identity import generate_key
from tests.server.instances import Fleet, Instance
from tests.server.proxy import SOURCE, Proxy, free_port, haproxy
from tests.services.redis import redis_server

T = 20.0  # generous bound on any single wait
RATE = 48_000
# Keys allowed to outlive the calls and the clients: accounts (kept for their
# owners), the live instances' beats, and windows of the per-network quotas and
# telemetry (each with a TTL). Anything else found is a leak.
LEGIT = re.compile(r"hello:(account:|alive$|quota:|live:|tel)")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[list[Instance], Proxy, str]]:
    with redis_server() as srv:
        async with aiohttp.ClientSession() as http:
            fleet = Fleet(tmp_path, srv.url, http)
            port = free_port()
            own = ("--trusted-proxy", SOURCE, "--log-level", "info",
                   "--public-url", f"http://127.0.0.1:{port}", "--ring-timeout", "5",
                   "--instance-timeout", "2")  # fmt: skip
            try:
                instances = list(await asyncio.gather(*(fleet.start(*own) for _ in range(3))))
                urls = [i.url for i in instances]
                async with haproxy(tmp_path, urls, port, free_port()) as proxy:
                    yield instances, proxy, srv.url
            finally:
                await fleet.stop()


class People:
    """Signed-in phones through the proxy, and which instance holds each."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.phones: list[Phone] = []

    async def phone(self, name: str) -> Phone:
        client = SignalingClient(reconnect=ReconnectPolicy(base=0.1, cap=0.5))
        await client.connect(self.proxy.url)
        key = generate_key()
        await client.register(name, key)
        await client.login(name, key)
        phone = Phone(client, CallOptions(host_addresses=("127.0.0.1",), audio_out="null:"))
        phone.start()
        self.phones.append(phone)
        return phone

    async def close(self) -> None:
        for phone in self.phones:
            with contextlib.suppress(Exception):
                await phone.close()
            await phone.client.close()


def holder(phone: Phone, instances: list[Instance]) -> int:
    sid = (phone.client.session or "")[:6]
    return next(n for n, i in enumerate(instances) if f"session {sid} open" in i.log.read_text())


async def keys(url: str) -> list[str]:
    r = aioredis.Redis.from_url(url)
    try:
        return sorted([k.decode() async for k in r.scan_iter(match="hello:*")])
    finally:
        await r.aclose()


async def received(call: Call, seconds: float) -> None:
    """Wait until ``call`` has received ``seconds`` more of audio."""
    assert call.sink is not None
    target = call.sink.samples + seconds * RATE
    async with asyncio.timeout(T):
        while call.sink.samples < target:
            await asyncio.sleep(0.05)


async def connect_call(a: Phone, b: Phone) -> tuple[Call, Call]:
    call = a.dial(b.client.name or "", audio_in="sine:440")
    incoming = await b.next_incoming(T)
    await incoming.accept(replace(incoming.options, audio_in="sine:880"))
    for side in (call, incoming):
        await side.wait_for(ev.MediaFlowing, T)
    return call, incoming


async def ring(a: Phone, b: Phone) -> tuple[Call, Call]:
    call = a.dial(b.client.name or "", audio_in="sine:440")
    incoming = await b.next_incoming(T)
    await call.wait_for(ev.Ringing, T)
    return call, incoming


async def test_instance_killed_during_calls(
    stack: tuple[list[Instance], Proxy, str],
) -> None:
    instances, proxy, redis_url = stack
    people = People(proxy)
    try:
        # leastconn spreads them 4/3/3: the victim is the one holding four.
        phones = [await people.phone(f"p{n}@example.org") for n in range(10)]
        on: list[list[Phone]] = [[], [], []]
        for phone in phones:
            on[holder(phone, instances)].append(phone)
        order = sorted(range(3), key=lambda n: -len(on[n]))
        victim, on = instances[order[0]], [on[n] for n in order]
        assert [len(group) for group in on] == [4, 3, 3], [len(g) for g in on]
        (v0, v1, v2, v3), s1, s2 = on
        # Connected, a party on the victim each way; ringing, likewise; and one
        # ringing between survivors (it is accepted after the kill).
        c1 = await connect_call(v0, s1[0])
        c2 = await connect_call(s2[0], v1)
        r1 = await ring(v2, s1[1])
        r2 = await ring(s2[1], v3)
        r3 = await ring(s1[2], s2[2])
        dead_sessions = {p.client.session for p in on[0]}

        killed = time.monotonic()
        await victim.kill()
        # Ringing between survivors: still connects after the kill.
        await r3[1].accept(replace(r3[1].options, audio_in="sine:880"))
        for phone in on[0]:  # back through the proxy, signed in again elsewhere
            async with asyncio.timeout(T):  # a new session: the old one may not look dead yet
                while not (
                    phone.client.is_connected
                    and phone.client.name
                    and phone.client.session not in dead_sessions
                ):
                    await asyncio.sleep(0.05)
            assert instances[holder(phone, instances)] is not victim
        back = time.monotonic() - killed
        # A survivor reaps the dead instance's four sessions. Its connected calls
        # either were taken back by their party, signed in again with the same
        # device key (calls._claim), or end on the server, and the survivor's
        # party hears the call goes on peer to peer: both keep the media.
        async with asyncio.timeout(T):
            while "forgot its 4 sessions" not in "".join(i.log.read_text() for i in instances):
                await asyncio.sleep(0.05)
        reaped = time.monotonic() - killed

        # Audio keeps arriving both ways on both calls, after the reaping.
        await asyncio.gather(*(received(side, 1.0) for side in (*c1, *c2)))
        for side in (*c1, *c2):
            assert side.ended is None and side.stage == "connected"
        for side in r3:
            await side.wait_for(ev.MediaFlowing, T)
        await asyncio.gather(*(received(side, 0.5) for side in r3))

        # Ringing with a party on the victim: the survivor's side times out.
        assert (await r1[1].wait_ended(T)).reason == "timeout"
        assert (await r2[0].wait_ended(T)).reason == "timeout"
        for side in (r1[0], r2[1]):  # the victim's side ended when it lost the server
            assert (await side.wait_ended(T)).reason == "unreachable"
        # Everyone hangs up cleanly: from the victim's side on one call, the
        # survivor's on the other (peer to peer: the server forgot them), and
        # the survivors' call through the server.
        for caller, callee in (c1, (c2[1], c2[0]), r3):
            ended = await caller.hangup()
            assert (ended.reason, ended.stage) == ("hangup", "connected")
            assert (await callee.wait_ended(T)).reason == "hangup"
        print(
            f"\nkill -9: its 4 clients signed in again in {back:.2f} s, the dead "
            f"instance reaped by {reaped:.2f} s; audio both ways throughout"
        )

        # No call, and nothing of a dead session, is left in Redis.
        left = await keys(redis_url)
        assert not [k for k in left if k.startswith("hello:call:")], left
        assert not [k for k in left for s in dead_sessions if s and s in k], left
        r = aioredis.Redis.from_url(redis_url)
        try:
            for key in (k for k in left if k.startswith("hello:presence:")):
                members = {m.decode() for m in cast("list[bytes]", await r.zrange(key, 0, -1))}
                assert not members & dead_sessions, key
        finally:
            await r.aclose()
    finally:
        await people.close()
    # Every client gone: no session route, no device entry, no timer, no call.
    async with asyncio.timeout(T):
        while [k for k in await keys(redis_url) if not LEGIT.match(k)]:
            await asyncio.sleep(0.1)
    print(
        "left in Redis:",
        sorted({re.sub(r"^(hello:[a-z]+).*", r"\1…", k) for k in await keys(redis_url)}),
    )
