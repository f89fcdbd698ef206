"""Per-network quotas shared by every instance on one Redis (issue 18).

Two real instances (in process, each on its own port) share a real
redis-server and the operator's secret: a registration, room or unanswered
call counted on one is counted on the other, and 127.0.0.2 (another network)
is not affected. Redis holds no address: only keyed hashes of truncated
networks, each under a TTL of at most one window (or an unanswered call's
life). Without a shared secret each instance counts alone, and says so.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from hello_tui.server import quotas as quotas_module
from hello_tui.server.app import HUB, create_app, runner_options
from hello_tui.server.hub import Hub
from hello_tui.server.quotas import network_of
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.server.conftest import FAST, Client, sdp
from tests.services.redis import RedisServer, redis_server

SLOW: dict[str, Any] = {"supervisory_timeout": 60.0, "ring_timeout": 60.0}  # calls stay unanswered
WINDOW = 600.0
Start = Callable[..., Any]


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


class Pair:
    """Two instances on one Redis (one key prefix per test), and their clients."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.redis_url, self.prefix = redis_url, prefix
        self.runners: list[web.AppRunner] = []
        self.urls: list[str] = []
        self.clients: list[Client] = []
        self.http = aiohttp.ClientSession()
        self.far = aiohttp.ClientSession(  # from 127.0.0.2: another network
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        )
        self.secret = secrets.token_bytes(32)

    async def start(self, *, shared_secret: bool = True, **overrides: Any) -> None:
        for _ in range(2):
            settings = ServerSettings(
                **{**FAST, "quota_window": WINDOW, **overrides},
                secret=self.secret, shared_secret=shared_secret, redis_url=self.redis_url,
            )  # fmt: skip
            app = create_app(settings, RedisStore(self.redis_url, prefix=self.prefix))
            # An AppRunner as `serve` has (TestServer cancels a handler whose
            # client goes, which would cut that session's cleanup short).
            runner = web.AppRunner(app, **runner_options(settings))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            self.runners.append(runner)
            self.urls.append(f"ws://{host}:{port}/ws")

    def hub(self, i: int) -> Hub:
        return self.runners[i].app[HUB]

    async def client(self, i: int, name: str | None = None, far: bool = False) -> Client:
        http = self.far if far else self.http
        client = Client(await http.ws_connect(self.urls[i]))
        self.clients.append(client)
        await client.hello()
        if name is not None:
            await client.account(name)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        for runner in self.runners:
            await runner.cleanup()
        await self.http.close()
        await self.far.close()


@pytest.fixture
async def pair(redis_srv: RedisServer) -> AsyncIterator[Pair]:
    two = Pair(redis_srv.url, f"q{time.monotonic_ns()}:")
    yield two
    await two.close()


async def refused(client: Client, message: Any, code: str = "quota-exceeded") -> p.Error:
    import msgspec

    ref = client.next_ref()
    await client.send(msgspec.structs.replace(message, ref=ref))
    return await client.error(code, ref=ref)


async def place(caller: Client, to: str) -> str:
    ref = caller.next_ref()
    await caller.send(p.Call(to=to, offer=sdp(), ref=ref))
    return (await caller.expect(p.CallCreated, ref=ref)).call_id


async def redis_contents(url: str, prefix: str) -> dict[str, tuple[bytes, int]]:
    """Every key under ``prefix``: its raw value (any type, dumped) and its PTTL."""
    r = aioredis.Redis.from_url(url)
    try:
        out = {}
        async for raw in r.scan_iter(match=prefix + "*"):
            key = raw.decode()
            out[key] = (await r.dump(key) or b"", await r.pttl(key))
        return out
    finally:
        await r.aclose()


async def test_registrations_count_on_every_instance(pair: Pair) -> None:
    await pair.start(registrations_per_network=3)
    assert pair.hub(0).quotas.shared and pair.hub(1).quotas.shared
    a, b, c, d = [await pair.client(i % 2) for i in range(4)]
    await a.register("ann")  # on instance 0
    await b.register("bea")  # on instance 1
    # Refused for another reason (name taken): the slot is given back.
    await refused(c, p.Register(name="ann", public_key=c.public_key), "name-taken")
    await c.register("cat")  # on instance 0: the third of the window
    error = await refused(d, p.Register(name="dot", public_key=d.public_key))
    assert "network" in error.message  # on instance 1, which counted one itself
    far = await pair.client(1, far=True)
    await far.register("dot")  # another network is not affected


async def test_rooms_and_relay_quotas_are_shared(pair: Pair) -> None:
    await pair.start(rooms_per_network=2)
    a = await pair.client(0, "ann")
    b = await pair.client(1, "bea")
    for client in (a, b):
        ref = client.next_ref()
        await client.send(p.RoomCreate(name="Y2lwaGVy", ref=ref))
        await client.expect(p.RoomCreated, ref=ref)
    await refused(a, p.RoomCreate(name="Y2lwaGVy"))
    await refused(b, p.RoomCreate(name="Y2lwaGVy"))
    # The relay-credential windows are made the same way, in the same store.
    turn = pair.hub(0).room_turn.per_network
    assert turn.store is pair.hub(0).store and turn.name == "turn"


async def test_unanswered_calls_count_on_every_instance(pair: Pair) -> None:
    await pair.start(pending_calls_per_network=2, **SLOW)
    await pair.client(1, "bob")
    callers = [await pair.client(i % 2, f"caller{i}") for i in range(3)]
    await place(callers[0], "bob")  # from instance 0
    await place(callers[1], "bob")  # from instance 1
    error = await refused(callers[2], p.Call(to="bob", offer=sdp()))  # instance 0
    assert "network" in error.message
    await place(await pair.client(0, "faraway", far=True), "bob")  # another network
    # A caller that vanishes ends its call: its slot comes back, on either instance.
    await callers[1].close()
    async with asyncio.timeout(10):
        while True:
            ref = callers[2].next_ref()
            await callers[2].send(p.Call(to="bob", offer=sdp(), ref=ref))
            reply = await callers[2].recv()
            if isinstance(reply, p.CallCreated):
                break
            assert isinstance(reply, p.Error) and reply.code == "quota-exceeded"
            await asyncio.sleep(0.05)


async def test_redis_holds_no_address_only_keyed_hashes_with_ttls(pair: Pair) -> None:
    await pair.start(registrations_per_network=5, rooms_per_network=5,
                     pending_calls_per_network=5, **SLOW)  # fmt: skip
    await pair.client(1, "bob")
    alice = await pair.client(0, "alice")
    far = await pair.client(1, "faraway", far=True)
    await place(alice, "bob")
    await place(far, "bob")
    contents = await redis_contents(pair.redis_url, pair.prefix)
    blob = b"".join(k.encode() + v for k, (v, _) in contents.items())
    for address in ("127.0.0.1", "127.0.0.2"):
        for form in (address, network_of(address), network_of(address).split("/")[0]):
            assert form.encode() not in blob, f"Redis holds {form}"
    # Both networks' keys: the same keyed hash on both instances, nothing else.
    hashes = {pair.hub(0).quotas.network(a) for a in ("127.0.0.1", "127.0.0.2")}
    assert hashes == {pair.hub(1).quotas.network(a) for a in ("127.0.0.1", "127.0.0.2")}
    quota_keys = {k: ttl for k, (_, ttl) in contents.items() if ":quota:" in k}
    assert {k.rsplit(":", 1)[1] for k in quota_keys} == hashes  # registrations
    for ttl in quota_keys.values():
        assert 0 < ttl <= WINDOW * 1000  # gone after one window at most
    live = {k: ttl for k, (_, ttl) in contents.items() if ":live:calls:" in k}
    assert {k.rsplit(":", 1)[1] for k in live} == hashes
    settings = pair.hub(0).settings
    life = settings.supervisory_timeout + settings.ring_timeout + settings.timer_lease + 1
    for ttl in live.values():
        assert 0 < ttl <= life * 1000  # an unanswered call's life at most
    # Without the shared secret nobody can link a hash to an address: the key is
    # derived from it, not the address alone.
    assert network_of("127.0.0.1") not in {h for k in quota_keys for h in k.split(":")}


async def test_without_a_shared_secret_each_instance_counts_alone(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    quotas_module._said_per_instance = False
    with caplog.at_level(logging.WARNING, logger="hello_tui.server"):
        await pair.start(shared_secret=False, registrations_per_network=1)
    said = [r for r in caplog.records if "quotas count per instance" in r.getMessage()]
    assert len(said) == 1  # once, not once per instance
    assert not pair.hub(0).quotas.shared
    a, b = await pair.client(0), await pair.client(1)
    await a.register("ann")
    await b.register("bea")  # instance 1 has its own count
    assert not [k for k in await redis_contents(pair.redis_url, pair.prefix) if ":quota:" in k]
