"""A new transport within a connected call, in process (docs/calls.md, "A new
transport within the call"): real peers through the real server app."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.errors import SignalingError
from tests.call.conftest import Env, T


async def _connected(env: Env) -> tuple[Call, Call]:
    alice, bob = await env.phone("alice"), await env.phone("bob")
    call = alice.dial("bob", audio_in="sine:440", audio_out="null:")
    incoming = await bob.next_incoming(T)
    await incoming.accept(replace(incoming.options, audio_in="sine:880", audio_out="null:"))
    for side in (call, incoming):
        await side.wait_for(ev.MediaFlowing, T)
        await side.wait_for(ev.CheckCode, T)
    return call, incoming


async def _frames_grow(call: Call, by: int) -> None:
    assert call.media.remote is not None
    start = call.media.remote.frames
    async with asyncio.timeout(T):
        while call.media.remote.frames < start + by:
            await asyncio.sleep(0.05)


async def renewed_code(call: Call) -> ev.CheckCode:
    """The check code of ``call``'s latest renewal (the browser's tests use it too)."""
    async with asyncio.timeout(T):
        while True:
            codes = [e for e in call.event_log if isinstance(e, ev.CheckCode) and e.renewal]
            if codes:
                return codes[-1]
            await asyncio.sleep(0.05)


async def test_a_renewed_transport_carries_the_call_on_with_the_same_code(env: Env) -> None:
    call, incoming = await _connected(env)
    code, old_a, old_b = call.sas, call.pc, incoming.pc
    chat = asyncio.ensure_future(incoming.wait_for(ev.ChatMessage, T))
    await call.renewal.offer("test")
    a_code, b_code = await renewed_code(call), await renewed_code(incoming)
    # New peer connections on both sides, the same call; the old ones dropped.
    assert call.pc is not old_a and incoming.pc is not old_b
    assert call.stage == incoming.stage == "connected"
    assert (a_code.renewal, b_code.renewal) == (1, 1)
    # Same DTLS certificates on both sides: the code shown before still holds.
    assert a_code.status == b_code.status == "verified"
    assert a_code.code == b_code.code == code and not a_code.changed and not b_code.changed
    # Audio both ways on the new connections, through the same sinks.
    async with asyncio.timeout(T):  # closed in the background
        while not (old_a and old_b and old_a.connectionState == old_b.connectionState == "closed"):
            await asyncio.sleep(0.05)
    await _frames_grow(call, 25)
    await _frames_grow(incoming, 25)
    # Chat over the re-created data channel (same negotiated id).
    async with asyncio.timeout(T):
        while not call.chat.open:
            await asyncio.sleep(0.05)
    call.send_chat("still here")
    received = await chat
    assert received.sender == "remote" and received.text == "still here"
    ended = await call.hangup()
    assert (ended.reason, ended.stage) == ("hangup", "connected")
    assert (await incoming.wait_ended(T)).reason == "hangup"


async def test_the_server_relays_renewals_in_order_bounded_and_only_between_parties(
    env: Env,
) -> None:
    call, incoming = await _connected(env)
    stranger = await env.client("mallory")
    sdp = "v=0\r\n"
    with pytest.raises(SignalingError) as refused:
        await stranger.request(p.RenewOffer(call_id=call.call_id, round=1, sdp=sdp))
    assert refused.value.code == "not-allowed"
    await call.client.request(p.RenewOffer(call_id=call.call_id, round=3, sdp=sdp))
    with pytest.raises(SignalingError) as back:  # rounds never go back
        await call.client.request(p.RenewOffer(call_id=call.call_id, round=2, sdp=sdp))
    assert back.value.code == "not-allowed"
    with pytest.raises(SignalingError) as too_many:
        await call.client.request(p.RenewOffer(call_id=call.call_id, round=21, sdp=sdp))
    assert too_many.value.code == "rate-limited"
    # A v1 session never sees the v2 messages.
    offer = p.RenewOffer(call_id=call.call_id, round=1, sdp=sdp)
    assert p.for_version(offer, 1) is None and p.for_version(offer, 2) is offer
    await call.hangup()
    await incoming.wait_ended(T)


async def test_a_renewal_with_another_certificate_says_the_code_changed(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    call, incoming = await _connected(env)
    code = call.sas
    # As a peer that does not keep its certificate (or someone in the middle) would.
    monkeypatch.setattr("hello_tui.call.call.reuse_certificate", lambda pc, previous: None)
    await call.renewal.offer("test")
    a_code, b_code = await renewed_code(call), await renewed_code(incoming)
    assert a_code.status == b_code.status == "verified"
    assert a_code.changed and b_code.changed
    assert a_code.code == b_code.code == call.sas == incoming.sas != code  # a fresh exchange
    assert a_code.line().startswith("WARNING: the check code changed")
    await _frames_grow(call, 25)
    await _frames_grow(incoming, 25)
    await call.hangup()
    await incoming.wait_ended(T)


async def test_a_renewed_video_call_keeps_its_picture_both_ways(env: Env) -> None:
    alice, bob = await env.phone("alice"), await env.phone("bob")
    call = alice.dial("bob", audio_in="sine:440", audio_out="null:", video_source="pattern:")
    incoming = await bob.next_incoming(T)
    await incoming.accept(replace(incoming.options, audio_in="sine:880", audio_out="null:"),
                          video="pattern:")  # fmt: skip
    for side in (call, incoming):
        await side.wait_for(ev.MediaFlowing, T)
        await side.wait_for(ev.CheckCode, T)
    await call.renewal.offer("test")
    await renewed_code(call)
    await renewed_code(incoming)
    for side in (call, incoming):  # the same picture sinks, fed by the new connection
        sink = side.remote_video
        assert sink is not None
        start = sink.frames
        async with asyncio.timeout(T):
            while sink.frames < start + 10:
                await asyncio.sleep(0.05)
    await _frames_grow(call, 25)
    await call.hangup()
    await incoming.wait_ended(T)


async def test_the_echo_peer_sends_the_video_back_on_the_renewed_transport() -> None:
    async with embedded_server() as server:
        client = SignalingClient(reconnect=None)
        await client.connect(server.url)
        try:
            async with Phone(client, CallOptions(host_addresses=LOOPBACK)) as phone:
                call = phone.dial("echo", audio_in="sine:440", video_source="pattern:")
                await call.wait_for(ev.MediaFlowing, T)
                await call.wait_for(ev.CheckCode, T)
                old = call.pc
                await call.renewal.offer("test")
                await renewed_code(call)
                async with asyncio.timeout(T):  # from now on only the new one carries us
                    while old is None or old.connectionState != "closed":
                        await asyncio.sleep(0.05)
                sink = call.remote_video
                assert sink is not None
                start = sink.frames
                async with asyncio.timeout(T):  # our own picture, sent back
                    while sink.frames < start + 10:
                        await asyncio.sleep(0.05)
                await _frames_grow(call, 25)
                await call.hangup()
        finally:
            await client.close()
