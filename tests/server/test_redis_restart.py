"""Redis restarting under two instances (issue 14: "Redis restarting: instances
keep serving with a clear log line, and recover").

A real redis-server with its append-only file on, as production runs it, is
stopped and started again on the same port while alice (instance A) and bob
(instance B) stay connected. While it is down a request gets an error message
that says so, not a traceback, and a new connection is told the same and
closed. Once it is back, a call from A rings on B and the reverse (each
instance's delivery channel subscribed again), and an unanswered call still
times out (the shared timers poll again). The log holds one line for the
outage and one for the recovery per instance, and no traceback.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from hello_tui.server.app import create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.server.conftest import FAST, Client, sdp
from tests.services.redis import RedisUnavailable, RestartableRedis, restartable_redis

T = 15.0  # a bound on a hang, not a speed check


@pytest.fixture
def redis_srv() -> Iterator[RestartableRedis]:
    try:
        with restartable_redis() as srv:
            yield srv
    except RedisUnavailable as exc:
        pytest.skip(str(exc))


class Two:
    def __init__(self, servers: list[TestServer], stores: list[RedisStore]) -> None:
        self.servers, self.stores = servers, stores
        self.http = aiohttp.ClientSession()

    async def client(self, instance: int, name: str) -> Client:
        ws = await self.http.ws_connect(str(self.servers[instance].make_url("/ws")))
        client = Client(ws)
        await client.hello(2)
        await client.account(name)
        return client


@pytest.fixture
async def two(redis_srv: RestartableRedis) -> AsyncIterator[Two]:
    secret, prefix = secrets.token_bytes(32), f"r{time.monotonic_ns()}:"
    servers, stores = [], []
    for _ in range(2):
        store = RedisStore(redis_srv.url, prefix=prefix)
        # Slow timers here: the calls must ring long enough to be seen.
        settings = ServerSettings(
            **{**FAST, "ring_timeout": 2.0, "supervisory_timeout": 2.0},
            secret=secret, redis_url=redis_srv.url,
            # Shorter than the outage: no beat gets through it, yet nobody is
            # reaped (server/reaper.py waits a period of beats after an outage).
            instance_timeout=0.5,
        )  # fmt: skip
        server = TestServer(create_app(settings, store), host="127.0.0.1")
        await server.start_server()
        await store.wait_subscribed()
        servers.append(server)
        stores.append(store)
    running = Two(servers, stores)
    yield running
    await running.http.close()
    for server in servers:
        await server.close()


async def _rings(caller: Client, callee: Client, ref: int) -> str:
    await caller.send(p.Call(to=callee.name, offer=sdp(), ref=ref))
    call_id = (await caller.expect(p.CallCreated, ref=ref, timeout=T)).call_id
    await callee.expect(p.Incoming, call_id=call_id, timeout=T)
    return call_id


async def test_both_instances_outlive_a_redis_restart(
    two: Two, redis_srv: RestartableRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hello_tui.server")
    alice, bob = await two.client(0, "alice"), await two.client(1, "bob")
    call_id = await _rings(alice, bob, ref=1)
    await alice.send(p.Hangup(call_id=call_id, ref=2))
    await alice.expect(p.CallEnded, call_id=call_id, ref=2, timeout=T)
    await bob.expect(p.CallEnded, call_id=call_id, reason="cancel", timeout=T)

    await asyncio.to_thread(redis_srv.stop)
    await alice.send(p.Call(to="bob", offer=sdp(), ref=3))
    # The call id comes first (before any lookup), then the call ends at once.
    created = await alice.expect(p.CallCreated, ref=3, timeout=T)
    await alice.expect(p.CallEnded, call_id=created.call_id, reason="unavailable", timeout=T)
    refused = await alice.expect(p.Error, ref=3, timeout=T)
    assert refused.code == "internal" and "cannot reach its database" in refused.message
    # A newcomer is told so too, and let go (its client's backoff comes back later).
    ws = await two.http.ws_connect(str(two.servers[1].make_url("/ws")))
    newcomer = Client(ws)
    await newcomer.send(p.Hello(version=2, ref=1))
    told = await newcomer.expect(p.Error, ref=1, timeout=T)
    assert "cannot reach its database" in told.message
    assert (await ws.receive(timeout=T)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    # Down for longer than the instance timeout (0.5 s): every beat is old when
    # it comes back, and still no instance may take the other for dead.
    await asyncio.sleep(1.0)

    await asyncio.to_thread(redis_srv.start)
    # Each instance subscribes its delivery channel again by itself (a delivery
    # before that is missed: the window is the listener's backoff, ≤ 0.5 s).
    for store in two.stores:
        await store.wait_subscribed()
    # Back: the first request may still meet the old, broken connection; retry
    # until one goes through (the client's own retry does the same).
    ref = 10
    async with asyncio.timeout(T):
        while True:
            ref += 1
            await alice.send(p.Call(to="bob", offer=sdp(), ref=ref))
            reply = await alice.recv(timeout=T)
            if isinstance(reply, p.CallCreated):
                break
            assert isinstance(reply, p.Error) and "database" in reply.message, reply
            await asyncio.sleep(0.1)
    await bob.expect(p.Incoming, call_id=reply.call_id, timeout=T)  # A → B delivers again
    # Nobody answers: the shared timers end it (they poll again).
    ended = await alice.expect(p.CallEnded, call_id=reply.call_id, timeout=T)
    assert ended.reason == "setup-timeout", ended  # the supervisory timer
    await bob.expect(p.CallEnded, call_id=reply.call_id, reason="setup-timeout", timeout=T)
    await _rings(bob, alice, ref=20)  # B → A delivers again

    text = caplog.text
    assert text.count("unreachable (") == 2, text  # one line per instance (store)
    assert text.count("reachable again after") == 2, text
    assert "Traceback" not in text and not any(r.exc_info for r in caplog.records)
    assert "is dead" not in text and "declared dead" not in text
