"""``room-turn``: a room's visitors, anonymous ones too, get TURN credentials that are
tied to a live room, short-lived, anonymous, and rationed per room and per network."""

from __future__ import annotations

import base64
import hashlib
import hmac

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, StartServer, sdp
from tests.server.test_rooms import create

TURN = {"turn_secret": b"s3cret", "turn_urls": ("turn:127.0.0.1:3478",)}


async def ask(client: Client, token: str) -> p.Message:
    ref = client.next_ref()
    await client.send(p.RoomTurn(token=token, ref=ref))
    return await client.recv()


async def test_an_anonymous_visitor_gets_short_lived_room_credentials(
    start_server: StartServer,
) -> None:
    srv = await start_server(**TURN, room_turn_ttl=900)
    owner = await srv.client("alice")
    token = (await create(owner)).room.token
    visitor = await srv.client()  # no account
    reply = await ask(visitor, token)
    assert isinstance(reply, p.RoomIce), reply
    [ice] = reply.ice
    assert ice.urls == ["turn:127.0.0.1:3478"]
    expiry, user = ice.username.split(":", 1)
    assert 890 <= int(expiry) - srv.clock() <= 910
    # Names neither the room nor the session; the TURN server can check it.
    assert token not in ice.username and visitor.session not in ice.username and len(user) >= 16
    expected = hmac.new(b"s3cret", ice.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(ice.credential) == expected
    await srv.assert_forgotten(ice.username, ice.credential)


async def test_only_for_a_live_room_with_a_free_seat(start_server: StartServer) -> None:
    srv = await start_server(**TURN)
    owner = await srv.client("alice")
    token = (await create(owner)).room.token
    stranger = await srv.client()
    assert isinstance(reply := await ask(stranger, "A" * 22), p.Error)
    assert reply.code == "unknown-room"
    first, second = await srv.client(), await srv.client()
    for client in (first, second):
        await client.send(p.RoomJoin(token=token, offer=sdp(), ref=client.next_ref()))
        await client.expect(p.RoomJoined)
    assert isinstance(reply := await ask(stranger, token), p.Error)
    assert reply.code == "room-full"
    assert isinstance(await ask(second, token), p.RoomIce)  # a participant may ask again
    srv.clock.advance(8 * 7 * 86400 + 1)
    assert isinstance(reply := await ask(second, token), p.Error)
    assert reply.code == "room-expired"


async def test_a_link_cannot_mint_relays(start_server: StartServer) -> None:
    srv = await start_server(**TURN, room_turn_per_room=3, room_turn_per_network=5)
    owner = await srv.client("alice")
    rooms = [(await create(owner)).room.token for _ in range(3)]
    visitor = await srv.client()
    kinds = [type(await ask(visitor, rooms[0])).__name__ for _ in range(4)]
    assert kinds == ["RoomIce", "RoomIce", "RoomIce", "Error"]  # per room
    assert isinstance(await ask(visitor, rooms[1]), p.RoomIce)
    assert isinstance(await ask(visitor, rooms[1]), p.RoomIce)  # 5 from this network
    assert isinstance(reply := await ask(visitor, rooms[2]), p.Error)  # per network
    assert reply.code == "quota-exceeded"
    srv.clock.advance(3601)  # the window passes
    assert isinstance(await ask(visitor, rooms[2]), p.RoomIce)


async def test_no_turn_configured_answers_empty(start_server: StartServer) -> None:
    srv = await start_server()
    owner = await srv.client("alice")
    token = (await create(owner)).room.token
    reply = await ask(await srv.client(), token)
    assert isinstance(reply, p.RoomIce) and reply.ice == []
