"""An instance that stops beating is reaped by another (server/reaper.py), in
process on a real Redis: its connected call ends ``closed`` for the party
elsewhere, a room it sat in drops it, its route and device entry go; and the
stalled instance, beating again, finds it was reaped and sends its clients
to reconnect. (A real ``kill -9`` behind HAProxy: test_instance_loss.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from hello_tui.server.app import HUB, create_app
from hello_tui.server.hub import Hub
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.server.conftest import FAST, Client, sdp
from tests.services.redis import RedisServer, redis_server


@pytest.fixture
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
async def pair(redis_srv: RedisServer) -> AsyncIterator[tuple[list[Hub], RedisStore, list[str]]]:
    prefix = f"r{time.monotonic_ns()}:"
    secret = secrets.token_bytes(32)
    servers, hubs = [], []
    for _ in range(2):
        store = RedisStore(redis_srv.url, prefix=prefix)
        # Call timers long enough not to race the reaping; instances dead after 0.5 s.
        timers = {"supervisory_timeout": 10.0, "ring_timeout": 10.0, "connection_timeout": 10.0}
        settings = ServerSettings(
            **{**FAST, **timers}, secret=secret, redis_url=redis_srv.url, instance_timeout=0.5
        )
        server = TestServer(create_app(settings, store), host="127.0.0.1")
        await server.start_server()
        await store.wait_subscribed()
        servers.append(server)
        hubs.append(server.app[HUB])
    yield hubs, hubs[1].store, [str(s.make_url("/ws")) for s in servers]  # type: ignore[misc]
    for server in servers:
        await server.close()


async def test_a_silent_instance_is_reaped_and_sends_its_clients_away(
    pair: tuple[list[Hub], RedisStore, list[str]],
) -> None:
    (zombie, survivor), store, urls = pair
    async with aiohttp.ClientSession() as http:
        alice = Client(await http.ws_connect(urls[0]))
        bob = Client(await http.ws_connect(urls[1]))
        for client, name in ((alice, "alice@example.org"), (bob, "bob@example.org")):
            await client.hello()
            await client.account(name)
        # A connected call from bob (survivor) to alice (zombie).
        await bob.send(p.Call(to="alice@example.org", offer=sdp(), ref=1))
        call_id = (await bob.expect(p.CallCreated)).call_id
        await alice.expect(p.Incoming, call_id=call_id)
        await alice.send(p.Accept(call_id=call_id, ref=2))
        await alice.expect(p.Offer, call_id=call_id)
        await bob.expect(p.Accepted, call_id=call_id)
        await alice.send(p.Connected(call_id=call_id, ref=3))
        await alice.expect(p.Ok, ref=3)
        # alice also waits alone in a room of her own.
        await alice.send(p.RoomCreate(name="c2VjcmV0", ref=4))
        token = (await alice.expect(p.RoomCreated, ref=4)).room.token
        await alice.send(p.RoomJoin(token=token, ref=5))
        await alice.expect(p.RoomJoined, ref=5)
        (alice_sid,) = zombie.sessions
        assert (await store.get_room(token)).participants == [alice_sid]  # type: ignore[union-attr]

        # The zombie stalls: no more beats (its sockets stay open, as in a stall).
        assert zombie._beats is not None
        zombie._beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await zombie._beats
        ended = await bob.expect(p.CallEnded, call_id=call_id, timeout=10)
        assert ended.reason == "closed"
        async with asyncio.timeout(10):  # the reaping's last step follows the ending
            while not survivor.reaper.reaped:
                await asyncio.sleep(0.02)
        assert survivor.reaper.reaped[0][1] == 1  # alice's session
        assert await store.get_call(call_id) is None
        assert (await store.get_room(token)).participants == []  # type: ignore[union-attr]
        dump = await store.dump()
        assert alice_sid not in dump["sessions"]
        assert all(alice_sid not in members for members in dump["presence"].values())
        assert zombie.instance not in dump["instances"]

        # It beats again: it was reaped, so its clients are sent elsewhere.
        zombie._beats = asyncio.get_running_loop().create_task(zombie.reaper.run())
        # (alice heard her call end too: her instance still reads its channel.)
        assert await alice.expect(p.CallEnded, call_id=call_id, reason="closed")
        notice = await alice.expect(p.Reconnect, timeout=10)
        assert notice.after_ms > 0
        frame = await alice.ws.receive(timeout=10)
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        await bob.close()
