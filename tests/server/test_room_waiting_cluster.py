"""room-waiting and display names across two instances sharing one real Redis:
the owner's devices and the room's participants sit on different instances,
and the visitor's name reaches them without ever entering Redis."""

from __future__ import annotations

import json
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
from tests.services.redis import RedisServer, redis_server

NAME = "Y2lwaGVydGV4dA"


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


class Pair:
    def __init__(self, servers: list[TestServer], store: RedisStore) -> None:
        self.servers = servers
        self.store = store
        self.http = aiohttp.ClientSession()

    async def client(
        self, instance: int, name: str | None = None, key: Client | None = None
    ) -> Client:
        ws = await self.http.ws_connect(str(self.servers[instance].make_url("/ws")))
        client = Client(ws)
        await client.hello(2)
        if key is not None:
            client.key = key.key
            await client.login(key.name)
        elif name:
            await client.account(name)
        return client


@pytest.fixture
async def pair(redis_srv: RedisServer) -> AsyncIterator[Pair]:
    prefix = f"w{time.monotonic_ns()}:"
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
    running = Pair(servers, stores[0])
    yield running
    await running.http.close()
    for server in servers:
        await server.close()


async def test_owner_devices_on_both_instances_hear_the_visitor(pair: Pair) -> None:
    phone = await pair.client(0, "olive")
    laptop = await pair.client(1, key=phone)
    await phone.send(p.RoomCreate(name=NAME, ref=1))
    token = (await phone.expect(p.RoomCreated, ref=1)).room.token

    visitor = await pair.client(1)
    await visitor.send(p.RoomJoin(token=token, display_name="Zelda Across", ref=1))
    await visitor.expect(p.RoomJoined, ref=1)
    for device in (phone, laptop):
        await device.expect(p.RoomWaiting, token=token, name=NAME, display_name="Zelda Across")

    # The owner joins on the other instance: the visitor's instance tells it the name.
    await phone.send(p.RoomJoin(token=token, offer=sdp(), display_name="Olive", ref=2))
    joined = await phone.expect(p.RoomJoined, ref=2)
    await visitor.expect(p.PeerJoined, call_id=joined.call_id, display_name="Olive")
    await phone.expect(p.PeerName, call_id=joined.call_id, display_name="Zelda Across")
    text = json.dumps(await pair.store.dump())
    assert joined.call_id and joined.call_id in text  # the dump is the live state
    assert "Zelda" not in text and "Olive" not in text


async def test_a_knock_and_its_admission_cross_instances(pair: Pair) -> None:
    owner = await pair.client(0, "olive")
    await owner.send(p.RoomCreate(name=NAME, knock=True, ref=1))
    token = (await owner.expect(p.RoomCreated, ref=1)).room.token
    visitor = await pair.client(1)
    await visitor.send(p.RoomJoin(token=token, offer=sdp(), display_name="Zelda Across", ref=1))
    knocking = await visitor.expect(p.RoomKnocking, ref=1, owner_present=False)
    await owner.expect(p.RoomWaiting, display_name="Zelda Across")

    await owner.send(p.RoomJoin(token=token, display_name="Olive", ref=2))
    await owner.expect(p.RoomJoined, ref=2, call_id=None)
    await visitor.expect(p.RoomKnocking, knock=knocking.knock, owner_present=True)
    await owner.expect(p.RoomKnock, knock=knocking.knock, display_name="Zelda Across")
    assert "Zelda" not in json.dumps(await pair.store.dump())

    await owner.send(p.RoomAdmit(token=token, knock=knocking.knock, ref=3))
    await owner.expect(p.Ok, ref=3)
    await owner.expect(p.RoomKnockEnded, reason="admitted")
    await visitor.expect(p.RoomKnockEnded, reason="admitted")
    joined = await visitor.expect(p.RoomJoined, ref=None)
    await owner.expect(p.PeerJoined, call_id=joined.call_id, display_name="Zelda Across")
    await owner.expect(p.Offer, call_id=joined.call_id)
    await visitor.expect(p.PeerName, display_name="Olive")
