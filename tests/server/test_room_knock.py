"""Knock to enter (protocol v2): a visitor waits in the lobby until an owner's
session admits or declines it, or its wait ends; through the real server."""

from __future__ import annotations

import json

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, Running, StartServer, sdp
from tests.server.test_room_waiting import NAME, settled, v2


async def knock_room(owner: Client) -> str:
    ref = owner.next_ref()
    await owner.send(p.RoomCreate(name=NAME, knock=True, ref=ref))
    created = await owner.expect(p.RoomCreated, ref=ref)
    assert created.room.knock
    return created.room.token


async def owner_inside(srv: Running, name: str = "olive") -> tuple[Client, str]:
    owner = await v2(srv, name)
    token = await knock_room(owner)
    ref = owner.next_ref()
    await owner.send(p.RoomJoin(token=token, display_name="Olive", ref=ref))
    await owner.expect(p.RoomJoined, ref=ref, call_id=None)
    return owner, token


async def test_admitted_visitor_enters_and_pairs_with_the_owner(srv: Running) -> None:
    owner, token = await owner_inside(srv)
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, offer=sdp(), display_name="Vic", ref=1))
    waiting = await visitor.expect(p.RoomKnocking, ref=1, token=token, owner_present=True)
    knock = await owner.expect(p.RoomKnock, token=token, knock=waiting.knock, display_name="Vic")
    assert set(json.loads(p.encode(knock))) == {"type", "token", "knock", "display_name"}
    # Nothing of the visitor's joined the room yet.
    room = await srv.hub.store.get_room(token)
    assert room is not None and len(room.participants) == 1 and len(room.lobby) == 1

    await owner.send(p.RoomAdmit(token=token, knock=waiting.knock, ref=5))
    await owner.expect(p.Ok, ref=5)
    await owner.expect(p.RoomKnockEnded, knock=waiting.knock, reason="admitted")
    await visitor.expect(p.RoomKnockEnded, knock=waiting.knock, reason="admitted")
    joined = await visitor.expect(p.RoomJoined, ref=None)
    assert joined.call_id and joined.room.participants == 2
    await owner.expect(p.PeerJoined, call_id=joined.call_id, display_name="Vic")
    await owner.expect(p.Offer, call_id=joined.call_id)  # the offer held since the knock
    await visitor.expect(p.PeerName, display_name="Olive")
    room = await srv.hub.store.get_room(token)
    assert room is not None and room.lobby == []


async def test_declined_visitor_hears_why_and_stays_out(srv: Running) -> None:
    owner, token = await owner_inside(srv)
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, display_name="Zelda Quixotic-7f3", ref=1))
    waiting = await visitor.expect(p.RoomKnocking, ref=1)
    await owner.expect(p.RoomKnock, knock=waiting.knock)
    assert "Zelda" not in await srv.dump_text()  # the lobby holds a session id, no name

    await owner.send(p.RoomDecline(token=token, knock=waiting.knock, ref=6))
    await owner.expect(p.Ok, ref=6)
    await owner.expect(p.RoomKnockEnded, reason="declined")
    await visitor.expect(p.RoomKnockEnded, knock=waiting.knock, reason="declined")
    room = await srv.hub.store.get_room(token)
    assert room is not None and len(room.participants) == 1 and room.lobby == []
    # The knock is over: admitting it now is refused, and the visitor may knock again.
    await owner.send(p.RoomAdmit(token=token, knock=waiting.knock, ref=7))
    await owner.error("not-allowed", ref=7)
    await visitor.send(p.RoomJoin(token=token, ref=2))
    await visitor.expect(p.RoomKnocking, ref=2)


async def test_owner_absent_the_visitor_waits_and_the_owner_hears_on_arrival(
    srv: Running,
) -> None:
    phone = await v2(srv, "olive")
    token = await knock_room(phone)
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, display_name="Vic", ref=1))
    waiting = await visitor.expect(p.RoomKnocking, ref=1, owner_present=False)
    await phone.expect(p.RoomWaiting, token=token, display_name="Vic")

    await phone.send(p.RoomJoin(token=token, ref=2))
    await phone.expect(p.RoomJoined, ref=2, call_id=None)  # the visitor is not inside
    await visitor.expect(p.RoomKnocking, ref=None, knock=waiting.knock, owner_present=True)
    await phone.expect(p.RoomKnock, knock=waiting.knock, display_name="Vic")


async def test_a_wait_ends_by_timeout(start_server: StartServer) -> None:
    srv = await start_server(knock_timeout=0.3)
    owner, token = await owner_inside(srv)
    slow = await v2(srv)
    await slow.send(p.RoomJoin(token=token, ref=1))
    first = await slow.expect(p.RoomKnocking, ref=1)
    await owner.expect(p.RoomKnock, knock=first.knock)
    await slow.expect(p.RoomKnockEnded, knock=first.knock, reason="timeout")
    await owner.expect(p.RoomKnockEnded, knock=first.knock, reason="timeout")
    room = await srv.hub.store.get_room(token)
    assert room is not None and room.lobby == [] and len(room.participants) == 1


async def test_a_wait_ends_by_giving_up_or_going_away(srv: Running) -> None:
    owner, token = await owner_inside(srv)
    quitter = await v2(srv)
    await quitter.send(p.RoomJoin(token=token, ref=1))
    second = await quitter.expect(p.RoomKnocking, ref=1)
    await owner.expect(p.RoomKnock, knock=second.knock)
    await quitter.send(p.RoomLeave(token=token, ref=2))
    await quitter.expect(p.Ok, ref=2)
    await owner.expect(p.RoomKnockEnded, knock=second.knock, reason="left")

    gone = await v2(srv)
    await gone.send(p.RoomJoin(token=token, ref=1))
    third = await gone.expect(p.RoomKnocking, ref=1)
    await owner.expect(p.RoomKnock, knock=third.knock)
    await gone.close()
    await owner.expect(p.RoomKnockEnded, knock=third.knock, reason="left")
    room = await srv.hub.store.get_room(token)
    assert room is not None and room.lobby == []


async def test_only_the_owner_admits_and_deleting_closes_the_lobby(srv: Running) -> None:
    owner, token = await owner_inside(srv)
    visitor, stranger = await v2(srv), await v2(srv)
    await visitor.send(p.RoomJoin(token=token, ref=1))
    waiting = await visitor.expect(p.RoomKnocking, ref=1)
    await owner.expect(p.RoomKnock)
    await stranger.send(p.RoomAdmit(token=token, knock=waiting.knock, ref=1))
    await stranger.error("not-allowed", ref=1)
    await owner.send(p.RoomAdmit(token=token, knock="A" * 22, ref=8))
    await owner.error("not-allowed", ref=8)
    await visitor.send(p.RoomJoin(token=token, ref=2))  # knocking twice
    await visitor.error("not-allowed", ref=2)

    await owner.send(p.RoomDelete(token=token, ref=9))
    await owner.expect(p.Ok, ref=9)
    await visitor.expect(p.RoomKnockEnded, knock=waiting.knock, reason="closed")


async def test_the_owners_other_device_walks_in_and_rename_switches_knocking(
    srv: Running,
) -> None:
    phone = await v2(srv, "olive")
    token = await knock_room(phone)
    laptop = await v2(srv)
    laptop.key = phone.key
    await laptop.login("olive")
    await laptop.send(p.RoomJoin(token=token, ref=1))  # an owner's device never knocks
    await laptop.expect(p.RoomJoined, ref=1)
    await laptop.send(p.RoomLeave(token=token, ref=2))
    await laptop.expect(p.Ok, ref=2)

    await phone.send(p.RoomRename(token=token, name=NAME, knock=False, ref=3))
    await phone.expect(p.Ok, ref=3)
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, ref=1))
    assert not (await visitor.expect(p.RoomJoined, ref=1)).room.knock


async def test_version_1_visitors_are_refused_with_a_reason_and_never_see_knock(
    srv: Running,
) -> None:
    owner, token = await owner_inside(srv)
    old = await srv.client()
    await old.send(p.RoomJoin(token=token, ref=1))
    error = await old.error("not-allowed", ref=1)
    assert "newer client" in error.message
    old_owner = await srv.client()
    old_owner.key = owner.key
    await old_owner.login("olive")
    await old_owner.send(p.RoomList(ref=3))
    frame = await old_owner.ws.receive(timeout=3.0)
    assert all("knock" not in r for r in json.loads(frame.data)["rooms"])
    await settled(owner)
