"""Mute (the far side records silence) and rooms (conversation URLs)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from hello_tui.call import events as ev
from hello_tui.call.engine import Call
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from tests.call.conftest import RATE, Env, T, dominant_hz, read_wav, rms


async def _until_received(call: Call, samples: int) -> None:
    """Wait (on the received audio itself) until ``call`` has received ``samples``."""
    assert call.sink is not None
    async with asyncio.timeout(T):
        while call.sink.samples < samples:
            await asyncio.sleep(0.02)


async def test_far_side_records_silence_while_muted(env: Env) -> None:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    wav = env.wav("bob.wav")
    call = alice.dial("bob", audio_in="sine:440")
    incoming = await bob.next_incoming(T)
    await incoming.accept(replace(incoming.options, audio_out=f"file:{wav}"))
    await incoming.wait_for(ev.MediaFlowing, T)
    assert incoming.sink is not None
    await _until_received(incoming, RATE // 2)
    call.mute()
    muted_at = incoming.sink.samples
    await _until_received(incoming, muted_at + RATE)
    call.unmute()
    unmuted_at = incoming.sink.samples
    await _until_received(incoming, unmuted_at + RATE // 2)
    await call.hangup()
    await incoming.wait_ended(T)
    kinds = [e.kind for e in call.event_log]
    assert "muted" in kinds and "unmuted" in kinds
    audio = read_wav(wav)
    margin = int(0.3 * RATE)  # what was already on its way when we muted
    before = audio[RATE // 8 : muted_at]
    during = audio[muted_at + margin : unmuted_at]
    after = audio[unmuted_at + margin :]
    assert rms(before) > 1000 and rms(after) > 1000
    assert rms(during) < 50, f"muted window RMS {rms(during):.0f}"
    assert abs(dominant_hz(after) - 440) < 10


async def test_two_clients_meet_in_a_room(env: Env) -> None:
    owner = await env.phone()  # anonymous: rooms need no account
    guest = await env.phone()
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, "standup"))
    url = room_url(created.url, key)
    a_wav, b_wav = env.wav("owner.wav"), env.wav("guest.wav")
    first = owner.join(url, audio_in="sine:500", audio_out=f"file:{a_wav}")
    await first.wait_for(ev.Waiting, T)  # alone until the guest arrives
    second = guest.join(url, audio_in="sine:1000", audio_out=f"file:{b_wav}")
    a = await first.wait_for(ev.CheckCode, T)  # the first one in answers, the guest offers
    b = await second.wait_for(ev.CheckCode, T)
    assert a.status == b.status == "verified" and a.code == b.code
    await first.wait_for(ev.MediaFlowing, T)
    await second.wait_for(ev.MediaFlowing, T)
    await _until_received(first, RATE)
    await _until_received(second, RATE)
    assert (await second.hangup()).reason == "hangup"
    assert (await first.wait_ended(T)).reason == "hangup"
    assert abs(dominant_hz(read_wav(a_wav)[RATE // 4 :]) - 1000) < 5
    assert abs(dominant_hz(read_wav(b_wav)[RATE // 4 :]) - 500) < 5
