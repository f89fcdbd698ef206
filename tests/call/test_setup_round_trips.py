"""Round trips on the way to a call's first audio (docs/media.md, "Where setup time
goes", session 9): the callee's `accept` does not wait for the server's `ok` to
its `ringing`, and its peer connection is made while `accept` is in flight."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.call.media_policy import CallMedia
from hello_tui.call.phone import Phone
from hello_tui.signaling.errors import SignalingError
from tests.call.conftest import Env

T = 15.0


async def _connect(alice: Phone, bob: Phone) -> tuple[Call, Call]:
    """Alice calls Bob, Bob answers, and both hear media: (Alice's call, Bob's)."""
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await incoming.wait_for(ev.MediaFlowing, T)
    await call.wait_for(ev.MediaFlowing, T)
    return call, incoming


async def test_the_call_is_answerable_before_the_server_acks_ringing(env: Env) -> None:
    """Bob's `ringing` is sent but its reply held back for good: the call is still
    handed out and answered, and the server, serving one connection's messages in
    order, has Alice see it ring before it is accepted."""
    alice = await env.phone("alice", audio_in="sine:440")
    bob = await env.phone("bob", audio_in="sine:440")
    ringing = bob.client.ringing
    sent: list[str] = []

    async def ring_unacked(call_id: str) -> None:
        request = asyncio.ensure_future(ringing(call_id))
        await asyncio.sleep(0)  # its first step: sent (the send lock taken)
        sent.append(call_id)
        await asyncio.Event().wait()  # the ok never counts
        await request

    bob.client.ringing = ring_unacked  # type: ignore[method-assign]
    call = alice.dial("bob")
    incoming = await bob.next_incoming(5.0)
    assert sent == [incoming.call_id]
    await incoming.accept()
    await call.wait_for(ev.MediaFlowing, T)
    await incoming.wait_for(ev.MediaFlowing, T)
    kinds = [type(e) for e in call.event_log]
    assert kinds.index(ev.Ringing) < kinds.index(ev.Connecting)
    await call.hangup()
    await incoming.wait_ended(T)


async def test_the_callees_connection_is_made_while_accept_is_in_flight(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answerer's peer connection (certificate, adapters) is made between
    sending `accept` and the held offer coming back, not after."""
    alice = await env.phone("alice", audio_in="sine:440")
    bob = await env.phone("bob", audio_in="sine:440")
    order: list[str] = []
    accept = bob.client.accept
    make_pc = Call._make_pc

    async def accepted(call_id: str) -> str:
        order.append("accept sent")
        offer = await accept(call_id)
        order.append("offer back")
        return offer

    def made(self: Call) -> RTCPeerConnection:
        if self.direction == "incoming":
            order.append("connection made")
        return make_pc(self)

    bob.client.accept = accepted  # type: ignore[method-assign]
    monkeypatch.setattr(Call, "_make_pc", made)
    call, incoming = await _connect(alice, bob)
    assert order == ["accept sent", "connection made", "offer back"]
    await call.hangup()
    await incoming.wait_ended(T)


async def test_a_refused_accept_closes_the_connection_made_ahead(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await env.phone("alice", audio_in="sine:440")
    bob = await env.phone("bob", audio_in="sine:440")
    made: list[RTCPeerConnection] = []
    make_pc = Call._make_pc

    def making(self: Call) -> RTCPeerConnection:
        pc = make_pc(self)
        made.append(pc)
        return pc

    async def refused(call_id: str) -> str:
        await asyncio.sleep(0.05)
        raise SignalingError("not-allowed", "this device cannot accept this call now")

    monkeypatch.setattr(Call, "_make_pc", making)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    bob.client.accept = refused  # type: ignore[method-assign]
    await incoming.accept()
    await incoming.wait_ended(T)
    answerer = [pc for pc in made if pc is not call.pc]
    assert len(answerer) == 1
    async with asyncio.timeout(T):
        while answerer[0].connectionState != "closed":
            await asyncio.sleep(0.01)
    await call.hangup()


async def test_the_microphone_is_kept_from_the_dtls_connect_itself(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CallMedia.connected`` (the microphone's blocks kept from now on) runs inside
    aiortc's DTLS state change, before its connect task starts the receiver, on
    both sides: a block arriving in between would otherwise be dropped."""
    alice = await env.phone("alice", audio_in="sine:440")
    bob = await env.phone("bob", audio_in="sine:440")
    started: list[bool] = []
    connected = CallMedia.connected

    def keeping(self: CallMedia) -> None:
        (pc,) = [c.pc for c in (*alice.live, *bob.live) if c.media is self]
        assert pc is not None
        started.append(pc.getTransceivers()[0].receiver._RTCRtpReceiver__started)  # type: ignore[attr-defined]
        connected(self)

    monkeypatch.setattr(CallMedia, "connected", keeping)
    call, incoming = await _connect(alice, bob)
    assert started.count(False) == 2  # each side once before its receiver started
    await call.hangup()
    await incoming.wait_ended(T)
