"""Bounded state: quotas per client network and per owner, the connection cap,
the hello deadline, HTTP head/body timeouts and the bounds on held data.

Clients come from 127.0.0.1 unless a test opens them from 127.0.0.2 (another
loopback address is another network), so "another network is not affected"
is tested for real. Deadlines are short settings; the tests assert *that* a
connection is closed, within generous timeouts, never how fast.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest

from hello_tui.server.quotas import network_of
from hello_tui.signaling import protocol as p
from hello_tui.signaling.protocol import MAX_CIPHERTEXT
from tests.server.conftest import Client, Running, StartServer, sdp

NAME = "Y2lwaGVydGV4dA"
SLOW = {"supervisory_timeout": 60.0, "ring_timeout": 60.0}  # calls stay unanswered


@pytest.fixture
async def elsewhere() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session whose connections come from 127.0.0.2: another network."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        yield http


async def client_from(srv: Running, http: aiohttp.ClientSession, name: str | None = None) -> Client:
    client = Client(await http.ws_connect(srv.url("/ws")))
    srv.clients.append(client)
    await client.hello()
    if name is not None:
        await client.account(name)
    return client


async def refused(client: Client, message: p.Message, code: str = "quota-exceeded") -> p.Error:
    ref = client.next_ref()
    await client.send(msgspec.structs.replace(message, ref=ref))
    return await client.error(code, ref=ref)


async def create_room(client: Client, ttl: int | None = None) -> p.RoomCreated:
    ref = client.next_ref()
    await client.send(p.RoomCreate(name=NAME, ttl=ttl, ref=ref))
    return await client.expect(p.RoomCreated, ref=ref)


async def skip_to(client: Client, kind: type[p.Message], **fields: object) -> p.Message:
    """The next ``kind`` message with these fields, skipping others (deliveries)."""
    while True:
        message = await client.recv()
        if isinstance(message, kind) and all(getattr(message, k) == v for k, v in fields.items()):
            return message


async def place(caller: Client, to: str) -> str:
    ref = caller.next_ref()
    await caller.send(p.Call(to=to, offer=sdp(), ref=ref))
    return (await caller.expect(p.CallCreated, ref=ref)).call_id


# ---------------------------------------------------------------- networks
def test_a_network_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert network_of("203.0.113.7") == "203.0.113.7/32"
    assert network_of("::ffff:203.0.113.7") == "203.0.113.7/32"
    assert network_of("2001:db8:1:2::5") == network_of("2001:db8:1:2:ffff::1")
    assert network_of("2001:db8:1:2::5") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::5") != network_of("2001:db8:1:2::5")


async def test_quotas_hold_no_address(srv: Running) -> None:
    alice = await srv.client("alice")
    await create_room(alice)
    key = srv.hub.quotas.network("127.0.0.1")
    assert key in srv.hub.connections_by_network
    held = repr(vars(srv.hub.quotas.registrations)) + repr(vars(srv.hub.quotas.room_creations))
    held += repr(dict(srv.hub.connections_by_network))
    assert key in held and "127.0.0.1" not in held and "127.0.0" not in held


# ---------------------------------------------------------------- registrations
async def test_registrations_per_network(
    start_server: StartServer, elsewhere: aiohttp.ClientSession
) -> None:
    srv = await start_server(registrations_per_network=2)
    a, b, c = [await srv.client() for _ in range(3)]
    await a.register("alice")
    # A refused registration (name taken) does not use up the quota.
    await refused(b, p.Register(name="alice", public_key=b.public_key), "name-taken")
    await b.register("bob")
    error = await refused(c, p.Register(name="carol", public_key=c.public_key))
    assert "network" in error.message
    other = await client_from(srv, elsewhere)
    await other.register("carol")  # another network is not affected
    srv.clock.advance(srv.hub.settings.quota_window + 1)
    await c.register("dave")  # the window has passed


# ---------------------------------------------------------------- rooms
async def test_anonymous_rooms_per_network_and_their_release(
    start_server: StartServer, elsewhere: aiohttp.ClientSession
) -> None:
    srv = await start_server(anonymous_rooms_per_network=2)
    one, two = await srv.client(), await srv.client()
    first = await create_room(one)
    await create_room(two)  # another connection, same network: counted together
    await refused(one, p.RoomCreate(name=NAME))
    await create_room(await client_from(srv, elsewhere))  # another network
    # Deleting a room gives its slot back.
    await one.send(p.RoomDelete(token=first.room.token, ref=50))
    await one.expect(p.Ok, ref=50)
    third = await create_room(two)
    await refused(two, p.RoomCreate(name=NAME))
    # So does expiry (the store forgets the room; the quota re-checks when full).
    srv.clock.advance(third.room.expires - srv.clock.now + srv.hub.settings.room_expired_grace + 1)
    await create_room(one)
    await create_room(one)


async def test_anonymous_rooms_are_short_lived(srv: Running) -> None:
    anonymous = await srv.client()
    room = await create_room(anonymous, ttl=366 * 24 * 3600)
    assert room.room.expires - srv.clock.now <= srv.hub.settings.anonymous_room_ttl == 24 * 3600
    alice = await srv.client("alice")
    room = await create_room(alice)
    assert room.room.expires - int(srv.clock.now) == srv.hub.settings.room_ttl  # 8 weeks


async def test_rooms_per_network_count_accounts_too(
    start_server: StartServer, elsewhere: aiohttp.ClientSession
) -> None:
    srv = await start_server(rooms_per_network=2)
    alice, bob = await srv.client("alice"), await srv.client("bob")
    await create_room(alice)
    await create_room(bob)
    await refused(alice, p.RoomCreate(name=NAME))
    await create_room(await client_from(srv, elsewhere, "carol"))
    srv.clock.advance(srv.hub.settings.quota_window + 1)
    await create_room(alice)


async def test_invite_only_server_makes_rooms_for_accounts_only(start_server: StartServer) -> None:
    srv = await start_server(registration="invite-only")
    anonymous = await srv.client()
    error = await refused(anonymous, p.RoomCreate(name=NAME), "auth-required")
    assert "log in" in error.message
    (code,) = srv.hub.invites.create(1, ttl=3600)
    member = await srv.client()
    await member.register("alice", invite=code)
    await member.login("alice")
    await create_room(member)


async def test_room_name_is_bounded_by_what_clients_produce(srv: Running) -> None:
    client = await srv.client()
    await client.send_raw(f'{{"type":"room-create","name":"{"A" * (MAX_CIPHERTEXT + 1)}","ref":7}}')
    await client.error("bad-message", ref=7)
    assert len(await srv.store.rooms_of(f"s:{client.session}")) == 0


# ---------------------------------------------------------------- pending calls
async def test_pending_calls_per_caller_released_by_cancel_and_answer(
    start_server: StartServer,
) -> None:
    srv = await start_server(pending_calls_per_caller=2, **SLOW)
    alice, bob = await srv.client("alice"), await srv.client("bob")
    await srv.client("carol")
    first = await place(alice, "bob")
    second = await place(alice, "bob")
    await refused(alice, p.Call(to="bob", offer=sdp()))
    await alice.send(p.Hangup(call_id=second, ref=60))  # a cancel gives the slot back
    await alice.expect(p.CallEnded, call_id=second, reason="cancel", ref=60)
    await place(alice, "bob")
    await refused(alice, p.Call(to="bob", offer=sdp()))
    await bob.send(p.Accept(call_id=first, ref=61))  # an answered call is no longer pending
    await skip_to(bob, p.Offer, call_id=first)
    await alice.expect(p.Accepted, call_id=first)
    await place(alice, "nobody-here")  # ends at once: holds nothing
    await alice.expect(p.CallEnded, reason="unavailable")
    await place(alice, "carol")
    await refused(alice, p.Call(to="carol", offer=sdp()))


async def test_pending_calls_per_network(
    start_server: StartServer, elsewhere: aiohttp.ClientSession
) -> None:
    srv = await start_server(pending_calls_per_network=2, **SLOW)
    await srv.client("bob")
    callers = [await srv.client(f"caller{i}") for i in range(3)]  # one network, 3 callers
    await place(callers[0], "bob")
    await place(callers[1], "bob")
    error = await refused(callers[2], p.Call(to="bob", offer=sdp()))
    assert "network" in error.message
    await place(await client_from(srv, elsewhere, "faraway"), "bob")  # another network
    await callers[0].close()  # a caller that vanishes ends its call: the slot comes back
    network = srv.hub.quotas.network("127.0.0.1")
    async with asyncio.timeout(5):
        while srv.hub.quotas.pending_by_network.count(network) >= 2:
            await asyncio.sleep(0.01)
    await place(callers[2], "bob")


async def test_held_offer_is_bounded(start_server: StartServer) -> None:
    srv = await start_server(max_held_offer=4096, **SLOW)
    await srv.client("bob")
    alice = await srv.client("alice")
    big = "v=0\r\n" + "a=x-padding:" + "x" * 4096 + "\r\n"
    error = await refused(alice, p.Call(to="bob", offer=big), "too-big")
    assert "4096" in error.message
    await place(alice, "bob")  # a real-sized offer is fine
    assert all("x-padding" not in str(v) for v in (await srv.store.dump())["records"].values())


# ---------------------------------------------------------------- connections
async def test_global_connection_cap(start_server: StartServer) -> None:
    srv = await start_server(max_connections=2)
    first = await srv.client()
    await srv.raw()  # not even past hello: it still holds a slot
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await srv.raw()
    assert info.value.status == 503
    await first.close()
    async with asyncio.timeout(5):
        while srv.hub.connections >= 2:
            await asyncio.sleep(0.01)
    await srv.client()


async def test_silent_websocket_is_closed_with_an_error(start_server: StartServer) -> None:
    srv = await start_server(hello_timeout=0.5)
    silent = await srv.raw()
    error = await silent.expect(p.Error, timeout=10)
    assert error.code == "hello-first" and "no hello" in error.message
    frame = await silent.ws.receive(timeout=10)
    assert frame.type == aiohttp.WSMsgType.CLOSE and frame.data == 1008
    talker = await srv.client()  # one that says hello in time stays
    await asyncio.sleep(1.0)
    await talker.send(p.RoomList(ref=3))
    await talker.expect(p.Rooms, ref=3)


async def _closed_by_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Trickle a byte every 0.1 s (as a slow-loris does) until the server hangs up."""
    received = b""
    async with asyncio.timeout(20):
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), timeout=0.1)
            except TimeoutError:
                writer.write(b"a")
                continue
            if not chunk:
                return received
            received += chunk


async def test_half_a_request_line_is_closed(start_server: StartServer) -> None:
    srv = await start_server(header_timeout=0.5)
    reader, writer = await asyncio.open_connection(srv.server.host, srv.server.port)
    writer.write(b"GET /a")  # then a path that never ends: "a" every 0.1 s
    try:
        assert await _closed_by_server(reader, writer) == b""  # closed, not answered
    finally:
        writer.close()


async def test_slow_body_is_cut_off(start_server: StartServer) -> None:
    srv = await start_server(body_timeout=0.5)
    reader, writer = await asyncio.open_connection(srv.server.host, srv.server.port)
    writer.write(
        b"POST /telemetry HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000\r\n\r\n{"
    )
    try:
        reply = await _closed_by_server(reader, writer)
    finally:
        writer.close()
    assert reply.startswith(b"HTTP/1.1 408")


async def test_serve_flags_set_the_bounds() -> None:
    """The real ``hello-tui serve``: its flags reach the settings, and its runner
    has the head timeout (what the fixtures use is checked here for production)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", "serve", "--port", "0", "--ephemeral", "--no-echo",
        "--registrations-per-network", "1", "--header-timeout", "0.5", "--hello-timeout", "0.5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=30)).decode()
        url = line.split()[-1]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        async with aiohttp.ClientSession() as http:
            first = Client(await http.ws_connect(f"{url}/ws"))
            await first.hello()
            await first.register("alice")
            second = Client(await http.ws_connect(f"{url}/ws"))
            await second.hello()
            await refused(second, p.Register(name="bob", public_key=second.public_key))
            silent = Client(await http.ws_connect(f"{url}/ws"))
            await silent.expect(p.Error, timeout=10, code="hello-first")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /a")
        try:
            assert await _closed_by_server(reader, writer) == b""
        finally:
            writer.close()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), timeout=20)
