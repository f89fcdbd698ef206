"""A room call outlives a dropped signaling connection and still renews its
transport (docs/calls.md, "A new transport within the call"): the server keeps
the dropped participant's seat, its reconnected client takes it back with its
seat secret. Real peers, the real server app, over loopback."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import ReconnectPolicy, SignalingClient
from hello_tui.signaling.errors import SignalingError
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from tests.call.conftest import LOOPBACK, Env, StartEnv, T
from tests.call.test_renewal import _frames_grow, renewed_code

FAST_BACK = ReconnectPolicy(base=0.05, cap=0.2)  # a dropped connection is back at once


async def _phone(env: Env, **options: Any) -> Phone:
    client = SignalingClient(reconnect=FAST_BACK)
    await client.connect(env.url)
    env.clients.append(client)
    # A loaded machine must not end the call by the watch while it renews.
    phone = Phone(client, CallOptions(host_addresses=LOOPBACK, media_lost_after=60.0, **options))
    phone.start()
    env.phones.append(phone)
    return phone


async def _room_call(env: Env) -> tuple[Call, Call]:
    """Two anonymous participants of one room, connected, audio flowing both ways."""
    owner, guest = await _phone(env), await _phone(env)
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, "standup"))
    url = room_url(created.url, key)
    first = owner.join(url, audio_in="sine:500", audio_out="null:")
    await first.wait_for(ev.Waiting, T)
    second = guest.join(url, audio_in="sine:700", audio_out="null:")
    for side in (first, second):
        await side.wait_for(ev.MediaFlowing, T)
        await side.wait_for(ev.CheckCode, T)
    return first, second


async def test_a_room_call_takes_its_seat_back_and_renews(env: Env) -> None:
    first, second = await _room_call(env)
    code = first.sas
    # The later arrival's signaling drops (as after a network change): the call
    # goes on, its client reconnects and takes its seat back.
    second.client.drop_connection("test")
    back = await second.wait_for(ev.ServerBack, T)
    assert back.call_known
    # A new transport, negotiated through the server for the new session.
    await second.renewal.offer("test", local=True)
    a_code, b_code = await renewed_code(first), await renewed_code(second)
    assert a_code.code == b_code.code == code and not a_code.changed
    await _frames_grow(first, 25)
    await _frames_grow(second, 25)
    # Chat over the re-created channel, and the other side was never told anything.
    async with asyncio.timeout(T):
        while not second.chat.open:
            await asyncio.sleep(0.05)
    got = asyncio.ensure_future(first.wait_for(ev.ChatMessage, T))
    second.send_chat("back again")
    assert (await got).text == "back again"
    assert not [e for e in first.event_log if isinstance(e, ev.Notice) and e.source == "call"]
    # A clean hang-up through the server, heard at once on the other side.
    ended = await second.hangup()
    assert (ended.reason, ended.stage) == ("hangup", "connected")
    assert (await first.wait_ended(T)).reason == "hangup"


async def test_a_seat_not_taken_back_in_time_ends_the_pair(start_env: StartEnv) -> None:
    env = await start_env(room_seat_grace=0.5)
    first, second = await _room_call(env)
    second.client.reconnect_policy = None  # it never comes back
    second.client.drop_connection("test")
    # The other side hears that the server lost its peer (and goes on peer to peer).
    async with asyncio.timeout(T):
        while not first.server_forgot:
            await asyncio.sleep(0.05)
    assert any(isinstance(e, ev.Notice) and "peer to peer" in e.text for e in first.event_log)
    await first.hangup()
    await second.hangup()


async def test_a_room_call_that_loses_its_media_ends_on_both_sides_in_words(env: Env) -> None:
    first, second = await _room_call(env)
    await second._connection_lost("no audio for 9 s")  # what the media watch does
    ended = await first.wait_ended(T)
    assert ended.reason == "media-fail"
    assert ended.message.startswith("lost the connection to")
    assert (await second.wait_ended(T)).reason == "media-fail"


async def test_only_the_seat_secret_takes_a_seat_back(env: Env) -> None:
    owner, ann, ben, eve = [await env.client() for _ in range(4)]
    key = new_room_key()
    token = (await owner.room_create(encrypt_name(key, "standup"))).room.token
    ann_seat, ben_seat = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    await ann.room_enter(token, seat=ann_seat)
    paired = await ben.room_enter(token, "v=0\r\n", seat=ben_seat)
    assert isinstance(paired, p.RoomJoined) and paired.call_id
    for wrong in (secrets.token_urlsafe(32), ""):  # a guess, or none: the room is full
        with pytest.raises(SignalingError) as full:
            await eve.room_enter(token, seat=wrong)
        assert full.value.code == "room-full"
    # Ben's secret, from another connection: Ben's seat, in the same call.
    back = await eve.room_reseat(token, ben_seat, T)
    assert back.call_id == paired.call_id
    await eve.request(p.RenewOffer(call_id=paired.call_id, round=1, sdp="v=0\r\n"))
    with pytest.raises(SignalingError) as gone:  # the old connection is a party no more
        await ben.request(p.RenewOffer(call_id=paired.call_id, round=2, sdp="v=0\r\n"))
    assert gone.value.code == "not-allowed"
