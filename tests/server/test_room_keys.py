"""Room keys on every device of an account (protocol v2): each device publishes a
signed X25519 key, a room's key is sealed to each device, the server keeps only
the boxes. Real server, real WebSockets, real keys."""

from __future__ import annotations

import json

from hello_tui.signaling import protocol as p
from hello_tui.signaling.roomcrypt import decrypt_name, encode_key, encrypt_name, new_room_key
from hello_tui.signaling.roomkeys import box_public_b64, open_box, seal, sign_box_key
from tests.server.conftest import Client, Running
from tests.server.test_devices import link, owner, v2


async def publish(client: Client, name: str = "alice", ref: int = 20) -> str:
    box_key, signature = sign_box_key(client.key, name)
    await client.send(p.DeviceBoxKey(box_key=box_key, signature=signature, ref=ref))
    await client.expect(p.Ok, ref=ref)
    return box_key


async def create(client: Client, key: bytes, ref: int = 30) -> str:
    await client.send(p.RoomCreate(name=encrypt_name(key, "Standup"), ref=ref))
    return (await client.expect(p.RoomCreated, ref=ref)).room.token


async def listed(client: Client, ref: int) -> list[p.RoomInfo]:
    await client.send(p.RoomList(ref=ref))
    return (await client.expect(p.Rooms, ref=ref)).rooms


async def test_a_room_key_reaches_the_second_device_sealed(srv: Running) -> None:
    first = await owner(srv)
    second = await link(srv, first)
    await publish(first)
    await publish(second, ref=21)
    # Every device sees the others' box keys, each signed by that device's own key.
    await first.send(p.DeviceList(ref=22))
    devices = (await first.expect(p.Devices, ref=22)).devices
    assert [d.box_key for d in devices] == [box_public_b64(first.key), box_public_b64(second.key)]
    key = new_room_key()
    token = await create(first, key)
    boxes = [
        p.RoomKeyBox(device=d.id, box=seal(d.box_key, key, token)) for d in devices
    ]  # fmt: skip
    assert all(len(b.box) == 103 for b in boxes)  # the documented size, within KeyBox
    await first.send(p.RoomKeyAdd(token=token, key_boxes=boxes, ref=31))
    await first.expect(p.Ok, ref=31)
    # The second device gets its own box, and only its own, with the listing.
    (room,) = await listed(second, 32)
    assert room.key_box == boxes[1].box
    opened = open_box(second.key, room.key_box, token)
    assert opened == key and decrypt_name(opened, room.name) == "Standup"
    assert open_box(first.key, room.key_box, token) is None  # not the first device's box
    assert open_box(second.key, room.key_box, "another-token") is None  # bound to the room
    # The server holds the boxes and no room key in the clear.
    record = await srv.store.get_room(token)
    assert record is not None and set(record.key_boxes) == {d.id for d in devices}
    stored = await srv.dump_text()
    assert encode_key(key) not in stored and key.hex() not in stored


async def test_another_account_cannot_add_read_or_open_boxes(srv: Running) -> None:
    first = await owner(srv)
    await publish(first)
    mallory = await owner(srv, "mallory")
    mallory_box = await publish(mallory, "mallory")
    key = new_room_key()
    token = await create(first, key)
    # The owner cannot seal to a device of another account: the server drops it.
    theirs = p.RoomKeyBox(device=p.device_id(mallory.public_key), box=seal(mallory_box, key, token))
    mine = p.RoomKeyBox(
        device=p.device_id(first.public_key), box=seal(box_public_b64(first.key), key, token)
    )
    await first.send(p.RoomKeyAdd(token=token, key_boxes=[theirs, mine], ref=31))
    await first.expect(p.Ok, ref=31)
    record = await srv.store.get_room(token)
    assert record is not None and list(record.key_boxes) == [mine.device]
    # Mallory cannot add boxes to alice's room, lists none of it, and cannot open it.
    await mallory.send(p.RoomKeyAdd(token=token, key_boxes=[theirs], ref=32))
    await mallory.error("not-allowed", ref=32)
    assert await listed(mallory, 33) == []
    assert open_box(mallory.key, mine.box, token) is None


async def test_a_box_key_must_be_signed_by_the_device(srv: Running) -> None:
    first = await owner(srv)
    other = await owner(srv, "mallory")
    box_key, signature = sign_box_key(other.key, "alice")  # another key signed it
    await first.send(p.DeviceBoxKey(box_key=box_key, signature=signature, ref=5))
    await first.error("bad-signature", ref=5)
    anonymous = await v2(srv)
    await anonymous.send(p.DeviceBoxKey(box_key=box_key, signature=signature, ref=6))
    await anonymous.error("auth-required", ref=6)


async def test_version_1_sessions_never_see_the_boxes(srv: Running) -> None:
    first = await owner(srv)
    await publish(first)
    key = new_room_key()
    token = await create(first, key)
    box = p.RoomKeyBox(
        device=p.device_id(first.public_key), box=seal(box_public_b64(first.key), key, token)
    )
    await first.send(p.RoomKeyAdd(token=token, key_boxes=[box], ref=31))
    await first.expect(p.Ok, ref=31)
    old = await srv.raw()
    old.key = first.key
    await old.hello(1)
    assert isinstance(await old.login("alice"), p.LoggedIn)
    await old.send(p.RoomList(ref=2))
    frame = await old.ws.receive(timeout=3)
    assert json.loads(frame.data)["rooms"][0]["token"] == token
    assert "key_box" not in frame.data
    rooms = p.Rooms(rooms=[p.RoomInfo(token=token, name="x", expires=1, key_box=box.box)])
    downgraded = p.for_version(rooms, 1)
    assert isinstance(downgraded, p.Rooms) and downgraded.rooms[0].key_box is None
