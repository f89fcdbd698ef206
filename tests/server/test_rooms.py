"""Rooms: create, manage, join two at a time, expire; pair calls forgotten on leave."""

from __future__ import annotations

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, Running, StartServer, sdp

NAME = "Y2lwaGVydGV4dA"  # ciphertext: opaque to the server


async def create(owner: Client, name: str = NAME, ttl: int | None = None) -> p.RoomCreated:
    ref = owner.next_ref()
    await owner.send(p.RoomCreate(name=name, ttl=ttl, ref=ref))
    return await owner.expect(p.RoomCreated, ref=ref)


async def test_create_list_rename_delete(start_server: StartServer) -> None:
    srv = await start_server(public_url="https://hello.example.org/")
    alice = await srv.client("alice")
    created = await create(alice)
    token = created.room.token
    assert len(token) >= 22
    assert created.url == f"https://hello.example.org/r/{token}"
    assert created.room.name == NAME and created.room.participants == 0
    await create(alice, ttl=3600)
    await alice.send(p.RoomList(ref=1))
    rooms = (await alice.expect(p.Rooms, ref=1)).rooms
    by_token = {r.token: r for r in rooms}
    assert len(rooms) == 2 and token in by_token
    assert sorted(r.expires - int(srv.clock()) for r in rooms) == [3600, 8 * 7 * 86400]
    await alice.send(p.RoomRename(token=token, name="bmV3", ref=2))
    await alice.expect(p.Ok, ref=2)
    # Another device of the same account manages the same rooms.
    laptop = await srv.client()
    laptop.key = alice.key
    await laptop.login("alice")
    await laptop.send(p.RoomList(ref=3))
    rooms = (await laptop.expect(p.Rooms, ref=3)).rooms
    assert {r.token: r.name for r in rooms}[token] == "bmV3"
    await laptop.send(p.RoomDelete(token=token, ref=4))
    await laptop.expect(p.Ok, ref=4)
    await alice.send(p.RoomJoin(token=token, ref=5))
    await alice.error("unknown-room", ref=5)
    await srv.assert_forgotten(token)


async def test_only_the_owner_manages(srv: Running) -> None:
    alice = await srv.client("alice")
    token = (await create(alice)).room.token
    bob = await srv.client()
    await bob.send(p.RoomRename(token=token, name="eA", ref=1))
    await bob.error("not-allowed", ref=1)
    await bob.send(p.RoomDelete(token=token, ref=2))
    await bob.error("not-allowed", ref=2)
    await bob.send(p.RoomDelete(token="doesnotexist", ref=3))
    await bob.error("unknown-room", ref=3)
    await bob.send(p.RoomList(ref=4))
    assert (await bob.expect(p.Rooms, ref=4)).rooms == []


async def test_anonymous_owner_is_the_session(srv: Running) -> None:
    anon = await srv.client()
    created = await create(anon)
    assert created.url.startswith("http://127.0.0.1:")
    await anon.send(p.RoomList(ref=1))
    assert len((await anon.expect(p.Rooms, ref=1)).rooms) == 1


async def test_join_pair_offer_answer_leave(srv: Running) -> None:
    owner = await srv.client("alice")
    token = (await create(owner)).room.token
    guest = await srv.client()
    await owner.send(p.RoomJoin(token=token, ref=1))
    joined = await owner.expect(p.RoomJoined, ref=1)
    assert joined.call_id is None and joined.room.participants == 1
    await guest.send(p.RoomJoin(token=token, ref=2))
    joined = await guest.expect(p.RoomJoined, ref=2)
    call_id = joined.call_id
    assert call_id and joined.room.participants == 2
    await owner.expect(p.PeerJoined, token=token, call_id=call_id)
    offer, answer = sdp("offer"), sdp("answer")
    await guest.send(p.Offer(call_id=call_id, sdp=offer))
    await owner.expect(p.Offer, call_id=call_id, sdp=offer)
    await owner.send(p.Answer(call_id=call_id, sdp=answer))
    await guest.expect(p.Answer, call_id=call_id, sdp=answer)
    await guest.send(p.Connected(call_id=call_id))
    await guest.send(p.RoomLeave(token=token, ref=3))
    await guest.expect(p.Ok, ref=3)
    await owner.expect(p.PeerLeft, token=token, call_id=call_id, reason="hangup")
    await srv.assert_forgotten(call_id, offer, answer)
    room = await srv.store.get_room(token)
    assert room is not None and room.participants == [owner.session]
    # The owner is still in the room; a new guest makes a new pair.
    again = await srv.client()
    await again.send(p.RoomJoin(token=token))
    second = (await again.expect(p.RoomJoined)).call_id
    assert second and second != call_id
    await owner.expect(p.PeerJoined, call_id=second)


async def test_offer_rides_along_with_join(srv: Running) -> None:
    owner = await srv.client()
    token = (await create(owner)).room.token
    await owner.send(p.RoomJoin(token=token))
    await owner.expect(p.RoomJoined)
    guest = await srv.client()
    offer = sdp("offer")
    await guest.send(p.RoomJoin(token=token, offer=offer))
    call_id = (await guest.expect(p.RoomJoined)).call_id
    await owner.expect(p.PeerJoined, call_id=call_id)
    await owner.expect(p.Offer, call_id=call_id, sdp=offer)
    assert offer not in await srv.dump_text()  # relayed, never stored


async def test_third_participant_is_refused(srv: Running) -> None:
    owner = await srv.client()
    token = (await create(owner)).room.token
    for client in (owner, await srv.client()):
        await client.send(p.RoomJoin(token=token))
        await client.expect(p.RoomJoined)
    third = await srv.client()
    await owner.expect(p.PeerJoined)
    await third.send(p.RoomJoin(token=token, ref=1))
    await third.error("room-full", ref=1)
    await owner.send(p.RoomJoin(token=token, ref=2))
    await owner.error("not-allowed", ref=2)  # already in it


async def test_vanished_participant(srv: Running) -> None:
    owner = await srv.client()
    token = (await create(owner)).room.token
    await owner.send(p.RoomJoin(token=token))
    await owner.expect(p.RoomJoined)
    guest = await srv.client()
    await guest.send(p.RoomJoin(token=token))
    call_id = (await guest.expect(p.RoomJoined)).call_id
    assert call_id
    await owner.expect(p.PeerJoined)
    await guest.close()
    await owner.expect(p.PeerLeft, call_id=call_id, reason="closed")
    await srv.assert_forgotten(call_id, guest.session)
    room = await srv.store.get_room(token)
    assert room is not None and room.participants == [owner.session]


async def test_hangup_on_a_room_call_leaves_the_room(srv: Running) -> None:
    owner = await srv.client()
    token = (await create(owner)).room.token
    await owner.send(p.RoomJoin(token=token))
    await owner.expect(p.RoomJoined)
    guest = await srv.client()
    await guest.send(p.RoomJoin(token=token))
    call_id = (await guest.expect(p.RoomJoined)).call_id
    assert call_id
    await owner.expect(p.PeerJoined)
    await owner.send(p.Hangup(call_id=call_id, ref=1))
    await owner.expect(p.Ok, ref=1)
    await guest.expect(p.PeerLeft, call_id=call_id, reason="hangup")
    await srv.assert_forgotten(call_id)


async def test_expiry_refresh_and_forgetting(srv: Running) -> None:
    owner = await srv.client()
    created = await create(owner, ttl=3600)
    token = created.room.token
    srv.clock.advance(3000)
    await owner.send(p.RoomJoin(token=token))
    joined = await owner.expect(p.RoomJoined)
    assert joined.room.expires == int(srv.clock()) + 3600  # the join pushed it back
    await owner.send(p.RoomLeave(token=token))
    await owner.expect(p.Ok)
    srv.clock.advance(3601)
    guest = await srv.client()
    await guest.send(p.RoomJoin(token=token, ref=1))
    await guest.error("room-expired", ref=1)
    srv.clock.advance(srv.hub.settings.room_expired_grace)
    await guest.send(p.RoomJoin(token=token, ref=2))
    await guest.error("unknown-room", ref=2)
    await srv.assert_forgotten(token)


async def test_room_ttl_is_capped(start_server: StartServer) -> None:
    srv = await start_server(room_max_ttl=7200)
    owner = await srv.client()
    created = await create(owner, ttl=366 * 86400)
    assert created.room.expires - int(srv.clock()) == 7200


async def test_owner_deleting_an_occupied_room_ends_the_pair(srv: Running) -> None:
    owner = await srv.client()
    token = (await create(owner)).room.token
    guests = [await srv.client(), await srv.client()]
    for guest in guests:
        await guest.send(p.RoomJoin(token=token))
    await guests[0].expect(p.RoomJoined)
    call_id = (await guests[1].expect(p.RoomJoined)).call_id
    assert call_id
    await guests[0].expect(p.PeerJoined)
    await owner.send(p.RoomDelete(token=token, ref=1))
    await owner.expect(p.Ok, ref=1)
    for guest in guests:
        await guest.expect(p.PeerLeft, call_id=call_id, reason="closed")
    await srv.assert_forgotten(token, call_id)


async def test_rooms_per_owner_cap(start_server: StartServer) -> None:
    srv = await start_server(max_rooms_per_owner=2)
    owner = await srv.client()
    await create(owner)
    await create(owner)
    await owner.send(p.RoomCreate(name=NAME, ref=99))
    await owner.error("quota-exceeded", ref=99)
