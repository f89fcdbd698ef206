"""Protocol version 2 in rooms: display names, "someone is waiting in your room"
(room-waiting), room context; and version 1 clients served exactly as before."""

from __future__ import annotations

import json
import logging

import aiohttp
import pytest

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, Running, sdp

NAME = "Y2lwaGVydGV4dA"  # ciphertext: opaque to the server
CONTEXT = "Y29udGV4dA"


async def v2(srv: Running, name: str | None = None) -> Client:
    client = await srv.raw()
    await client.hello(2)
    if name is not None:
        await client.account(name)
    return client


async def create(owner: Client, context: str = "") -> str:
    ref = owner.next_ref()
    await owner.send(p.RoomCreate(name=NAME, context=context, ref=ref))
    return (await owner.expect(p.RoomCreated, ref=ref)).room.token


async def raw_until(client: Client, kind: str) -> list[dict[str, object]]:
    """Every frame (as JSON) up to and including the first of type ``kind``."""
    frames: list[dict[str, object]] = []
    while not frames or frames[-1]["type"] != kind:
        frame = await client.ws.receive(timeout=3.0)
        assert frame.type == aiohttp.WSMsgType.TEXT
        frames.append(json.loads(frame.data))
    return frames


async def settled(client: Client) -> None:
    """Everything ``client`` asked before has been handled (requests run in order)."""
    ref = client.next_ref()
    await client.send(p.RoomList(ref=ref))
    await client.expect(p.Rooms, ref=ref)


# ---------------------------------------------------------------- display names
async def test_display_names_cross_both_ways(srv: Running) -> None:
    ann, ben = await v2(srv), await v2(srv)
    token = await create(ann)
    await ann.send(p.RoomJoin(token=token, display_name="Ann <b>Lee</b>", ref=1))
    await ann.expect(p.RoomJoined, ref=1)
    await ben.send(p.RoomJoin(token=token, offer=sdp(), display_name="Ben", ref=1))
    joined = await ben.expect(p.RoomJoined, ref=1)
    await ann.expect(p.PeerJoined, call_id=joined.call_id, display_name="Ben")
    await ann.expect(p.Offer, call_id=joined.call_id)
    # The one already there tells the joiner from its own instance (never stored).
    await ben.expect(p.PeerName, call_id=joined.call_id, display_name="Ann <b>Lee</b>")


async def test_a_nameless_participant_sends_no_peer_name(srv: Running) -> None:
    ann, ben = await v2(srv), await v2(srv)
    token = await create(ann)
    await ann.send(p.RoomJoin(token=token, ref=1))
    await ann.expect(p.RoomJoined, ref=1)
    await ben.send(p.RoomJoin(token=token, display_name="Ben", ref=1))
    joined = await ben.expect(p.RoomJoined, ref=1)
    await ann.expect(p.PeerJoined, display_name="Ben")
    await settled(ann)
    await ben.send(p.RoomLeave(token=token, ref=2))
    await ben.expect(p.Ok, ref=2)  # nothing (no peer-name) came before it
    assert joined.call_id


@pytest.mark.parametrize(
    "bad", ["x" * (p.MAX_DISPLAY_NAME + 1), "a\nb", "a\x1b[31mb", "a\u202eb", "a\u2028b"]
)
async def test_display_names_are_bounded_and_one_line(srv: Running, bad: str) -> None:
    ann = await v2(srv)
    token = await create(ann)
    frame = {"type": "room-join", "token": token, "display_name": bad, "ref": 7}
    await ann.send_raw(json.dumps(frame))
    await ann.error("bad-message", ref=7)
    assert p.clean_display_name(bad)  # what a client sends instead is valid
    p.decode_client(json.dumps({**frame, "display_name": p.clean_display_name(bad)}))


async def test_a_version_1_peer_never_sees_version_2(srv: Running) -> None:
    old, new = await srv.client(), await v2(srv)
    token = await create(new, context=CONTEXT)
    await old.send(p.RoomJoin(token=token, ref=1))
    (joined,) = await raw_until(old, "room-joined")
    assert "context" not in joined["room"]  # type: ignore[operator]
    await new.expect(p.RoomWaiting, token=token)  # the v2 creator is told
    await new.send(p.RoomJoin(token=token, display_name="New", ref=1))
    call_id = (await new.expect(p.RoomJoined, ref=1)).call_id
    frames = await raw_until(old, "peer-joined")
    assert frames == [{"type": "peer-joined", "token": token, "call_id": call_id}]
    old_rooms = await srv.client()
    await old_rooms.send(p.RoomList(ref=1))
    assert all("context" not in r for r in (await raw_until(old_rooms, "rooms"))[0]["rooms"])  # type: ignore[attr-defined]


async def test_version_3_is_refused_then_1_accepted(srv: Running) -> None:
    client = await srv.raw()
    await client.send(p.Hello(version=3, ref=1))
    await client.error("version", ref=1)
    await client.send(p.Hello(version=1, ref=2))
    await client.expect(p.Welcome, version=1, ref=2)


# ---------------------------------------------------------------- room-waiting
async def test_every_owner_device_hears_someone_is_waiting(srv: Running) -> None:
    phone = await v2(srv, "olive")
    laptop = await v2(srv)
    laptop.key = phone.key
    await laptop.login("olive")
    old = await srv.client()  # a version-1 device of the same account hears nothing
    old.key = phone.key
    await old.login("olive")
    token = await create(phone)

    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, display_name="Vic", ref=1))
    await visitor.expect(p.RoomJoined, ref=1, call_id=None)
    for device in (phone, laptop):
        waiting = await device.expect(p.RoomWaiting, token=token, display_name="Vic")
        assert waiting.name == NAME  # the owner's device decrypts it; nothing else is said
        assert set(json.loads(p.encode(waiting))) == {"type", "token", "name", "display_name"}
    await settled(visitor)
    await settled(old)  # its next frame is its own reply: no room-waiting came

    # The owner joins: paired with the visitor, and a second visitor is not announced.
    await phone.send(p.RoomJoin(token=token, offer=sdp(), display_name="Olive", ref=9))
    joined = await phone.expect(p.RoomJoined, ref=9)
    await phone.expect(p.PeerName, call_id=joined.call_id, display_name="Vic")
    await visitor.expect(p.PeerJoined, display_name="Olive")


async def test_no_ping_while_an_owner_device_is_in_the_room(srv: Running) -> None:
    phone = await v2(srv, "olive")
    laptop = await v2(srv)
    laptop.key = phone.key
    await laptop.login("olive")
    token = await create(phone)
    await laptop.send(p.RoomJoin(token=token, ref=1))
    await laptop.expect(p.RoomJoined, ref=1)
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, display_name="Vic", ref=1))
    await visitor.expect(p.RoomJoined, ref=1)
    await settled(visitor)
    await settled(phone)  # no room-waiting before its own reply
    await laptop.expect(p.PeerJoined, display_name="Vic")


async def test_an_anonymous_creator_is_told_too(srv: Running) -> None:
    creator = await v2(srv)
    token = await create(creator)
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, ref=1))
    await visitor.expect(p.RoomJoined, ref=1)
    await creator.expect(p.RoomWaiting, token=token, display_name="")


async def test_store_and_log_never_hold_the_visitors_name(
    srv: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    owner = await v2(srv, "olive")
    token = await create(owner)
    secret_name = "Zelda Quixotic-7f3"
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, display_name=secret_name, ref=1))
    await visitor.expect(p.RoomJoined, ref=1)
    # It did travel: to the owner, and nowhere the server keeps.
    await owner.expect(p.RoomWaiting, display_name=secret_name)
    await owner.send(p.RoomJoin(token=token, display_name="Olive", ref=5))
    joined = await owner.expect(p.RoomJoined, ref=5)
    await owner.expect(p.PeerName, display_name=secret_name)
    dump = await srv.dump_text()
    assert token in dump and joined.call_id and joined.call_id in dump  # the dump is real
    for needle in (secret_name, "Zelda", "Olive"):
        assert needle not in dump
        assert needle not in caplog.text
    assert "owner session(s) told" in caplog.text  # the log was captured
    assert "127.0.0.1" not in caplog.text


# ---------------------------------------------------------------- context
async def test_context_is_kept_listed_replaced_and_kept_on_rename(srv: Running) -> None:
    owner = await v2(srv, "olive")
    token = await create(owner, context=CONTEXT)
    await owner.send(p.RoomList(ref=1))
    assert (await owner.expect(p.Rooms, ref=1)).rooms[0].context == CONTEXT
    await owner.send(p.RoomRename(token=token, name="bmV3", ref=2))  # context kept
    await owner.expect(p.Ok, ref=2)
    visitor = await v2(srv)
    await visitor.send(p.RoomJoin(token=token, ref=1))
    assert (await visitor.expect(p.RoomJoined, ref=1)).room.context == CONTEXT
    await owner.expect(p.RoomWaiting)
    await owner.send(p.RoomRename(token=token, name="bmV3", context="", ref=3))  # cleared
    await owner.expect(p.Ok, ref=3)
    await owner.send(p.RoomList(ref=4))
    assert (await owner.expect(p.Rooms, ref=4)).rooms[0].context == ""
    frame = {"type": "room-create", "name": NAME, "context": "A" * 2601, "ref": 5}
    await owner.send_raw(json.dumps(frame))
    await owner.error("bad-message", ref=5)
