"""``call-turn``: a direct call refreshes the account's TURN credentials, since
those of ``logged-in`` may be near their end hours later (coturn re-checks the
expiry on every allocation refresh); the client side decides when to ask."""

from __future__ import annotations

import base64
import hashlib
import hmac

from aiortc import RTCIceServer

from hello_tui.call.peer import FRESH_FOR, turn_is_stale, without_timed_turn
from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, StartServer

TURN = {"turn_secret": b"s3cret", "turn_urls": ("turn:127.0.0.1:3478",)}


async def ask(client: Client) -> p.Message:
    ref = client.next_ref()
    await client.send(p.CallTurn(ref=ref))
    return await client.recv()


def expiry(ice: p.IceServer) -> int:
    return int(ice.username.split(":", 1)[0])


async def test_a_call_long_after_login_gets_fresh_credentials(start_server: StartServer) -> None:
    srv = await start_server(**TURN, turn_ttl=7200)
    alice = await srv.client()
    await alice.register("alice")
    logged = await alice.login("alice")
    assert isinstance(logged, p.LoggedIn)
    [old] = logged.ice
    srv.clock.advance(7000)  # the login's credentials have 200 s left
    assert turn_is_stale([RTCIceServer(old.urls, old.username, old.credential)], srv.clock())
    reply = await ask(alice)
    assert isinstance(reply, p.RoomIce), reply
    [ice] = reply.ice
    assert 7190 <= expiry(ice) - srv.clock() <= 7210  # a whole lifetime from now
    assert ice.username != old.username and ice.urls == ["turn:127.0.0.1:3478"]
    digest = hmac.new(b"s3cret", ice.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(ice.credential) == digest  # coturn accepts it
    fresh = RTCIceServer(ice.urls, ice.username, ice.credential)
    assert not turn_is_stale([fresh], srv.clock())


async def test_only_for_accounts_and_rationed(start_server: StartServer) -> None:
    srv = await start_server(**TURN, call_turn_per_account=2)
    anonymous = await srv.client()
    assert isinstance(reply := await ask(anonymous), p.Error) and reply.code == "auth-required"
    alice = await srv.client("alice")
    kinds = [type(await ask(alice)).__name__ for _ in range(3)]
    assert kinds == ["RoomIce", "RoomIce", "Error"]
    srv.clock.advance(3601)  # the window passes
    assert isinstance(await ask(alice), p.RoomIce)


async def test_no_turn_configured_answers_empty(start_server: StartServer) -> None:
    srv = await start_server()
    alice = await srv.client("alice")
    reply = await ask(alice)
    assert isinstance(reply, p.RoomIce) and reply.ice == []


def test_only_time_limited_entries_are_replaced() -> None:
    now = 1_000_000
    stun = RTCIceServer("stun:stun.example.org")
    static = RTCIceServer("turn:turn.example.org", "me", "pw")  # from the config: kept
    old = RTCIceServer("turn:127.0.0.1:3478", f"{now + FRESH_FOR - 1}:abc", "x")
    young = RTCIceServer("turn:127.0.0.1:3478", f"{now + FRESH_FOR + 60}:abc", "x")
    assert turn_is_stale([stun, static, old], now)
    assert not turn_is_stale([stun, static, young], now)
    assert without_timed_turn([stun, static, old]) == [stun, static]
