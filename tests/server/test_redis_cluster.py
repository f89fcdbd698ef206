"""Two server instances sharing one real Redis: a client on one instance calls
a client on the other, rooms pair across instances, and nothing of a call
is left in Redis once it ends."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from hello_tui.server.app import HUB, create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.server.conftest import FAST, Client, sdp
from tests.services.redis import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@dataclass
class Cluster:
    servers: list[TestServer]
    stores: list[RedisStore]
    http: aiohttp.ClientSession

    async def client(self, instance: int, name: str | None = None) -> Client:
        ws = await self.http.ws_connect(str(self.servers[instance].make_url("/ws")))
        client = Client(ws)
        await client.hello()
        if name:
            await client.account(name)
        return client

    async def dump_text(self) -> str:
        return json.dumps(await self.stores[0].dump())


@pytest.fixture
async def cluster(redis_srv: RedisServer) -> AsyncIterator[Cluster]:
    prefix = f"c{time.monotonic_ns()}:"
    secret = secrets.token_bytes(32)
    servers, stores = [], []
    for _ in range(2):
        store = RedisStore(redis_srv.url, prefix=prefix)
        settings = ServerSettings(**FAST, secret=secret, redis_url=redis_srv.url)
        server = TestServer(create_app(settings, store), host="127.0.0.1")
        await server.start_server()
        await store.wait_subscribed()
        servers.append(server)
        stores.append(store)
    http = aiohttp.ClientSession()
    yield Cluster(servers, stores, http)
    await http.close()
    for server in servers:
        await server.close()


async def test_call_across_instances_and_forgotten(cluster: Cluster) -> None:
    alice = await cluster.client(0, "alice@example.org")
    bob = await cluster.client(1, "bob@example.org")
    offer, answer = sdp("offer"), sdp("answer")

    await bob.send(p.Call(to="alice@example.org", offer=offer, ref=1))
    created = await bob.expect(p.CallCreated)
    incoming = await alice.expect(p.Incoming, call_id=created.call_id, caller="bob@example.org")
    await alice.send(p.Ringing(call_id=incoming.call_id))
    await bob.expect(p.Ringing, call_id=created.call_id)
    await alice.send(p.Accept(call_id=incoming.call_id, ref=2))
    got_offer = await alice.expect(p.Offer, call_id=created.call_id)
    assert got_offer.sdp == offer
    await bob.expect(p.Accepted)
    await alice.send(p.Answer(call_id=created.call_id, sdp=answer))
    assert (await bob.expect(p.Answer)).sdp == answer
    await bob.send(p.Connected(call_id=created.call_id))
    await alice.send(p.Connected(call_id=created.call_id))
    assert created.call_id in await cluster.dump_text()

    await bob.send(p.Hangup(call_id=created.call_id, ref=3))
    await alice.expect(p.CallEnded, call_id=created.call_id, reason="hangup")
    # The caller's own end notice (or its ok) arrives; then the store is clean.
    for _ in range(3):
        msg = await bob.recv()
        if isinstance(msg, p.CallEnded):
            break
    text = await cluster.dump_text()
    assert created.call_id not in text
    assert "SDPMARKER" not in text
    assert "alice@example.org" not in text and "bob@example.org" not in text


async def test_unknown_and_offline_look_the_same_across_instances(cluster: Cluster) -> None:
    carol = await cluster.client(0, "carol@example.org")
    await carol.close()
    dave = await cluster.client(1, "dave@example.org")
    await dave.send(p.Call(to="nobody@example.org", offer=sdp(), ref=1))
    created = await dave.expect(p.CallCreated)
    await dave.expect(p.CallEnded, call_id=created.call_id, reason="unavailable")
    # carol registered on instance 0 and left: known, but no device connected.
    for _ in range(100):
        await dave.send(p.Call(to="carol@example.org", offer=sdp(), ref=2))
        created = await dave.expect(p.CallCreated)
        ended = await dave.expect(p.CallEnded, call_id=created.call_id)
        if ended.reason == "unavailable":
            break
    assert ended.reason == "unavailable"


async def test_room_pairs_across_instances(cluster: Cluster) -> None:
    owner = await cluster.client(0)
    await owner.send(p.RoomCreate(name="Y2lwaGVydGV4dA", ref=1))
    created = await owner.expect(p.RoomCreated)
    token = created.room.token
    await owner.send(p.RoomJoin(token=token, ref=2))
    await owner.expect(p.RoomJoined, call_id=None)

    guest = await cluster.client(1)
    offer = sdp("offer")
    await guest.send(p.RoomJoin(token=token, offer=offer, ref=1))
    joined = await guest.expect(p.RoomJoined)
    assert joined.call_id
    await owner.expect(p.PeerJoined, token=token, call_id=joined.call_id)
    assert (await owner.expect(p.Offer, call_id=joined.call_id)).sdp == offer
    await owner.send(p.Answer(call_id=joined.call_id, sdp=sdp("answer")))
    await guest.expect(p.Answer, call_id=joined.call_id)

    await guest.close()  # vanishes without a word
    await owner.expect(p.PeerLeft, token=token, reason="closed")
    assert joined.call_id not in await cluster.dump_text()


async def test_instance_keys_all_expire(cluster: Cluster) -> None:
    # Held to the end: a client dropped here would close, and its keys go with it.
    erin = await cluster.client(0, "erin@example.org")
    store = cluster.stores[0]
    keys = [k async for k in store._r.scan_iter(match=store.prefix + "*")]
    assert keys
    for key in keys:
        ttl = await store._r.pttl(key)
        assert ttl > 0, f"{key!r} has no TTL: a dead instance would leave it behind"
    assert isinstance(cluster.servers[0].app[HUB].store, RedisStore)
    await erin.close()
