"""The signaling client against the real server, over real loopback WebSockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import (
    ConnectionLost,
    Disconnected,
    NotConnected,
    ProtocolMismatch,
    Reconnected,
    ReconnectPolicy,
    ServerUnreachable,
    SignalingClient,
    SignalingError,
)
from hello_tui.signaling.identity import generate_key, public_key_b64
from hello_tui.signaling.roomcrypt import decrypt_name, encrypt_name, new_room_key
from tests.signaling.conftest import WAIT, Server, wait_event

MakeClient = Callable[..., Awaitable[SignalingClient]]
MakeServer = Callable[..., Awaitable[Server]]
OFFER = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=x-test:offer\r\n"
ANSWER = "v=0\r\no=- 2 2 IN IP4 0.0.0.0\r\na=x-test:answer\r\n"


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def account(make_client: MakeClient, server: Server, name: str) -> SignalingClient:
    client = await make_client(server.url)
    key = generate_key()
    await client.register(name, key)
    await client.login(name, key)
    return client


# ---------------------------------------------------------------- connecting
@pytest.mark.parametrize("form", ["http", "ws", "ws-path"])
async def test_connect_says_hello_and_gets_welcome(
    server: Server, make_client: MakeClient, form: str
) -> None:
    url = {
        "http": server.url,
        "ws": server.url.replace("http", "ws"),
        "ws-path": server.url.replace("http", "ws") + "/ws",
    }[form]
    client = await make_client(url)
    assert client.url == f"ws://127.0.0.1:{server.port}/ws"
    assert client.is_connected and client.session and len(client.session) >= 8
    assert client.welcome is not None and client.welcome.registration == "open"
    assert client.name is None


async def test_closed_port_is_server_unreachable_quickly() -> None:
    port = closed_port()
    client = SignalingClient(reconnect=None)
    start = time.monotonic()
    with pytest.raises(ServerUnreachable) as info:
        await client.connect(f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 2.0
    expected = f"cannot reach the server at ws://127.0.0.1:{port}/ws: connection refused"
    assert str(info.value) == expected
    await client.close()


async def test_a_web_server_without_ws_is_not_taken_for_ours() -> None:
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    try:
        client = SignalingClient(reconnect=None)
        with pytest.raises(ServerUnreachable, match=r"no hello-tui server there \(HTTP 404"):
            await client.connect(str(server.make_url("/")))
        await client.close()
    finally:
        await server.close()


async def test_wrong_protocol_is_protocol_mismatch() -> None:
    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.receive()
        await sock.send_str('{"type": "welcome", "version": 99, "session": "abcdefgh12"}')
        await sock.receive()
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = SignalingClient(reconnect=None)
        with pytest.raises(ProtocolMismatch, match="protocol version 99, this client 2"):
            await client.connect(str(server.make_url("/")))
        await client.close()
    finally:
        await server.close()


async def test_requests_after_close_are_not_connected(
    server: Server, make_client: MakeClient
) -> None:
    client = await make_client(server.url)
    await client.close()
    assert client.closed and not client.is_connected
    with pytest.raises(NotConnected):
        await client.room_list()


# ---------------------------------------------------------------- accounts
async def test_register_login_logout(server: Server, make_client: MakeClient) -> None:
    client = await make_client(server.url)
    key = generate_key()
    await client.register("alice", key)
    logged = await client.login("alice", key)
    assert logged.name == "alice" and client.name == "alice"
    await client.logout()
    assert client.name is None


async def test_wrong_key_is_bad_signature(server: Server, make_client: MakeClient) -> None:
    client = await make_client(server.url)
    await client.register("alice", generate_key())
    with pytest.raises(SignalingError) as info:
        await client.login("alice", generate_key())
    assert info.value.code == "bad-signature"
    assert client.name is None
    assert "\n" not in str(info.value)


async def test_name_taken_and_invite_required(
    server: Server, make_server: MakeServer, make_client: MakeClient
) -> None:
    client = await make_client(server.url)
    await client.register("alice", generate_key())
    with pytest.raises(SignalingError) as info:
        await client.register("Alice", generate_key())  # same name, other case
    assert info.value.code == "name-taken"

    closed = await make_server(registration="invite-only")
    other = await make_client(closed.url)
    assert other.welcome is not None and other.welcome.registration == "invite-only"
    with pytest.raises(SignalingError) as info:
        await other.register("bob", generate_key())
    assert info.value.code == "invite-required"


async def test_delete_account_frees_the_name(server: Server, make_client: MakeClient) -> None:
    alice = await account(make_client, server, "alice")
    await alice.delete_account()
    assert alice.name is None
    again = await make_client(server.url)
    key = generate_key()
    await again.register("alice", key)  # the name is free again
    assert (await again.login("alice", key)).name == "alice"


async def test_delete_account_needs_login(server: Server, make_client: MakeClient) -> None:
    client = await make_client(server.url)
    with pytest.raises(SignalingError) as info:
        await client.delete_account()
    assert info.value.code == "auth-required"


# ---------------------------------------------------------------- calls
async def test_call_between_two_clients(server: Server, make_client: MakeClient) -> None:
    alice_key, bob_key = generate_key(), generate_key()
    alice, bob = await make_client(server.url), await make_client(server.url)
    for client, name, key in ((alice, "alice", alice_key), (bob, "bob", bob_key)):
        await client.register(name, key)
        await client.login(name, key)

    call_id = await alice.call("bob", OFFER)
    incoming = await wait_event(bob, p.Incoming)
    # Each side learns the key the other signed in with (proved in the SDP: call/identity_proof).
    alice_pub, bob_pub = public_key_b64(alice_key), public_key_b64(bob_key)
    assert incoming == p.Incoming(call_id=call_id, caller="alice", caller_key=alice_pub)

    await bob.ringing(call_id)
    assert await wait_event(alice, p.Ringing) == p.Ringing(call_id=call_id)

    assert await bob.accept(call_id) == OFFER  # the held offer reaches the accepting device
    assert await wait_event(alice, p.Accepted) == p.Accepted(call_id=call_id, callee_key=bob_pub)

    await bob.answer(call_id, ANSWER)
    assert await wait_event(alice, p.Answer) == p.Answer(call_id=call_id, sdp=ANSWER)

    await alice.connected(call_id)
    await bob.connected(call_id)
    await alice.hangup(call_id)
    ended = await wait_event(bob, p.CallEnded)
    assert ended.call_id == call_id and ended.reason == "hangup"


async def test_rejected_call_and_unknown_callee(server: Server, make_client: MakeClient) -> None:
    alice = await account(make_client, server, "alice")
    bob = await account(make_client, server, "bob")
    call_id = await alice.call("bob", OFFER, video=True)
    incoming = await wait_event(bob, p.Incoming)
    assert incoming.caller == "alice" and incoming.video
    await bob.reject(call_id)
    assert (await wait_event(alice, p.CallEnded)).reason == "rejected"

    nobody = await alice.call("nobody-here", OFFER)
    ended = await wait_event(alice, p.CallEnded)
    assert ended == p.CallEnded(call_id=nobody, reason="unavailable")  # as if offline

    anonymous = await make_client(server.url)
    with pytest.raises(SignalingError) as refused:
        await anonymous.call("bob", OFFER)
    assert refused.value.code == "auth-required"


async def test_typed_errors_for_calls(server: Server, make_client: MakeClient) -> None:
    client = await make_client(server.url)
    with pytest.raises(SignalingError) as info:
        await client.accept("no-such-call-id")
    assert info.value.code == "unknown-call"
    assert info.value.server_message
    # The connection stays usable after an error reply.
    assert await client.room_list() == []


# ---------------------------------------------------------------- rooms
async def test_room_lifecycle_with_encrypted_name(server: Server, make_client: MakeClient) -> None:
    owner = await account(make_client, server, "alice")
    key = new_room_key()
    created = await owner.room_create(encrypt_name(key, "Family call"), ttl=3600)
    token = created.room.token
    assert created.url.endswith(f"/r/{token}")
    assert created.room.expires > time.time() + 3000
    assert "Family call" not in str(await server.store.dump())  # the server cannot read it

    rooms = await owner.room_list()
    assert [r.token for r in rooms] == [token]
    assert decrypt_name(key, rooms[0].name) == "Family call"

    await owner.room_rename(token, encrypt_name(key, "Team sync"))
    assert decrypt_name(key, (await owner.room_list())[0].name) == "Team sync"

    # Anyone with the token joins; the later arrival's offer rides along.
    first = await make_client(server.url)
    second = await make_client(server.url)
    joined = await first.room_join(token)
    assert joined.call_id is None and joined.room.token == token
    paired = await second.room_join(token, offer=OFFER)
    assert paired.call_id is not None
    peer = await wait_event(first, p.PeerJoined)
    assert peer == p.PeerJoined(token=token, call_id=paired.call_id)
    assert await wait_event(first, p.Offer) == p.Offer(call_id=paired.call_id, sdp=OFFER)
    await first.answer(paired.call_id, ANSWER)
    assert await wait_event(second, p.Answer) == p.Answer(call_id=paired.call_id, sdp=ANSWER)

    await second.room_leave(token)
    left = await wait_event(first, p.PeerLeft)
    assert left.token == token and left.reason == "hangup"

    with pytest.raises(SignalingError) as info:
        await first.room_delete(token)  # not the owner
    assert info.value.code == "not-allowed"
    await owner.room_delete(token)
    assert await owner.room_list() == []
    with pytest.raises(SignalingError) as info:
        await first.room_join(token)
    assert info.value.code == "unknown-room"


# ---------------------------------------------------------------- reconnect
async def test_reconnects_after_restart_and_logs_in_again(
    server: Server, make_client: MakeClient
) -> None:
    client = await account(make_client, server, "alice")
    first_session = client.session

    await server.stop()  # graceful: the server says `reconnect`, then closes
    notice = await wait_event(client, p.Reconnect)
    assert 500 <= notice.after_ms <= 3000
    lost = await wait_event(client, Disconnected)
    assert lost.will_retry and not client.is_connected

    await server.start()  # same port, same store: the account still exists
    back = await wait_event(client, Reconnected, timeout=3.0 + 5.0)
    assert back.name == "alice" and back.login_error is None and back.attempts >= 1
    assert client.is_connected and client.session == back.session != first_session
    assert client.name == "alice"

    # The restored session is logged in: another client can call alice by name.
    caller = await account(make_client, server, "carol")
    call_id = await caller.call("alice", OFFER)
    assert (await wait_event(client, p.Incoming)).call_id == call_id


async def test_reconnects_when_the_server_drops_the_connection_without_notice(
    server: Server, make_client: MakeClient
) -> None:
    client = await account(make_client, server, "alice")
    before = client.session
    hub = server.hub
    for session in list(hub.sessions.values()):
        session.close()  # as a crashed proxy or a dropped NAT binding would look
    lost = await wait_event(client, Disconnected)
    assert lost.will_retry
    back = await wait_event(client, Reconnected)
    assert back.name == "alice" and back.session != before
    assert client.session in hub.sessions  # the server knows the new session
    assert await client.room_list() == []


async def test_requests_during_an_outage_wait_for_the_reconnect(
    server: Server, make_client: MakeClient
) -> None:
    client = await make_client(server.url)
    await server.stop()
    await wait_event(client, Disconnected)
    pending = asyncio.ensure_future(client.room_list())
    await asyncio.sleep(0)  # let it start waiting
    assert not pending.done()
    await server.start()
    assert await asyncio.wait_for(pending, 3.0 + 5.0) == []
    assert isinstance(await wait_event(client, Reconnected), Reconnected)


async def test_re_login_failure_is_reported_not_fatal(
    server: Server, make_client: MakeClient
) -> None:
    client = await account(make_client, server, "alice")
    await server.stop()
    server.store = type(server.store)()  # a server that forgot every account
    await server.start()
    back = await wait_event(client, Reconnected, timeout=3.0 + 5.0)
    assert back.name is None and back.login_error and "bad-signature" in back.login_error
    assert client.is_connected and client.name is None


async def test_gives_up_after_max_attempts(server: Server, make_client: MakeClient) -> None:
    client = await make_client(server.url, reconnect=ReconnectPolicy(0.01, 0.05, max_attempts=3))
    await server.stop()
    await wait_event(client, Disconnected)
    final = await wait_event(client, Disconnected, timeout=3.0 + 5.0)
    assert not final.will_retry and "gave up reconnecting" in final.reason
    assert "connection refused" in final.reason
    await asyncio.wait_for(_until(lambda: client.closed), WAIT)
    with pytest.raises(NotConnected):
        await client.room_list()


async def test_no_reconnect_policy_closes_and_fails_pending(
    server: Server, make_client: MakeClient
) -> None:
    client = await make_client(server.url, reconnect=None)
    await server.stop()
    lost = await wait_event(client, Disconnected)
    assert not lost.will_retry
    await asyncio.wait_for(_until(lambda: client.closed), WAIT)
    with pytest.raises((NotConnected, ConnectionLost)):
        await client.room_list()


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_an_old_server_gets_hello_1_and_no_version_2_field() -> None:
    """A version-1 server (it refuses hello 2 with error version, then takes 1):
    the client falls back on the same socket and never sends a v2 field."""
    received: list[dict[str, object]] = []

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for frame in sock:
            msg = json.loads(frame.data)
            received.append(msg)
            ref = msg.get("ref")
            if msg["type"] == "hello" and msg["version"] != 1:
                await sock.send_json({"type": "error", "code": "version", "message": "1 only",
                                      "ref": ref})  # fmt: skip
            elif msg["type"] == "hello":
                await sock.send_json({"type": "welcome", "version": 1, "session": "abcdefgh12",
                                      "ref": ref})  # fmt: skip
            elif msg["type"] == "room-join":
                room = {"token": msg["token"], "name": "", "expires": 1}
                await sock.send_json({"type": "room-joined", "room": room, "ref": ref})
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        client = SignalingClient(reconnect=None)
        client.display_name = "Ann"
        welcome = await client.connect(str(server.make_url("/")))
        assert welcome.version == 1 and client.version == 1
        await client.room_join("abcdefgh12")
        with pytest.raises(SignalingError, match="too old"):
            await client.room_create("eA", context="Y29udGV4dA")
        await client.close()
    finally:
        await server.close()
    assert [m["version"] for m in received if m["type"] == "hello"] == [2, 1]
    [join] = [m for m in received if m["type"] == "room-join"]
    assert "display_name" not in join
    assert not any(m["type"] == "room-create" for m in received)


async def test_a_reconnect_waits_longer_at_each_attempt_for_a_busy_server(
    server: Server, make_client: MakeClient
) -> None:
    """After an instance dies its clients all arrive at the survivors at once; a
    queue longer than the connect timeout must not turn every client into a
    stream of abandoned attempts. Here the port accepts and never answers (a
    server drowning in handshakes): each attempt is given twice the last one's
    time, up to 8 times the connect timeout, and the client still comes back."""
    client = await make_client(
        server.url, connect_timeout=0.2, reconnect=ReconnectPolicy(base=0.01, cap=0.02)
    )
    reasons: list[str] = []
    client.on_retry = lambda _delay, reason: reasons.append(reason)
    port = server.port
    await server.stop()
    await wait_event(client, Disconnected)

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepted, never answered
        writer.close()

    drowning = await asyncio.start_server(silent, "127.0.0.1", port)
    try:
        async with asyncio.timeout(WAIT + 4.0):
            while sum("timed out after" in r for r in reasons) < 5:
                await asyncio.sleep(0.02)
    finally:
        drowning.close()
        await drowning.wait_closed()
    # (An attempt before the silent server listened was refused, not timed out.)
    waits = [float(r.split("timed out after ", 1)[1].split()[0]) for r in reasons if "timed" in r]
    assert waits[-1] == 1.6 and waits[0] <= 0.4, reasons
    assert all(b == min(2 * a, 1.6) for a, b in itertools.pairwise(waits)), reasons
    await server.start()
    back = await wait_event(client, Reconnected, timeout=WAIT + 4.0)
    assert client.is_connected and back.attempts >= 6
