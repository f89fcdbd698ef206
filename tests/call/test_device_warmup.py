"""Devices are opened and started while the call is set up, not after it connects.

The caller's devices open while the call is signalled and connects (the offer
does not wait for them). The callee's devices are opened while it rings: its
speaker starts then, its microphone only once the call is answered (and the answer uses those very
devices); a ringing call that is declined closes what it opened. Real peers
through the real server, PulseAudio null sinks as sound cards (``pulse_devices``).
No timing assertion: only which device is started when.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import replace

import pytest

from hello_tui.call import events as ev
from hello_tui.call.media_policy import CallMedia
from hello_tui.media.sinks import DeviceSink
from hello_tui.media.sources import DeviceSource
from tests.call.conftest import MIC, SPEAKER, Env, T
from tests.pulse import PulseDaemon

DEVICES = {"audio_in": f"device:{MIC}", "audio_out": f"device:{SPEAKER}"}


async def until(check: Callable[[], bool], timeout: float = T) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


async def test_a_ringing_call_opens_its_devices_and_starts_only_the_speaker(
    env: Env, pulse_devices: PulseDaemon
) -> None:
    alice = await env.phone("alice", audio_in="sine:440", audio_out="null:")
    bob = await env.phone("bob", **DEVICES)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await until(lambda: isinstance(incoming.sink, DeviceSink) and incoming.sink._running)
    assert incoming.stage == "ringing"
    assert incoming.source is not None
    mic = incoming.source.source
    speaker = incoming.sink
    assert isinstance(mic, DeviceSource) and not mic._started  # not while it rings

    await incoming.accept()
    await incoming.wait_for(ev.MediaFlowing, 3 * T)
    await call.wait_for(ev.MediaFlowing, 3 * T)
    assert incoming.sink is speaker and incoming.source.source is mic  # opened once
    assert mic._started and mic.frames_sent > 0
    await call.hangup()
    await incoming.wait_ended(T)
    assert speaker._closed and mic.readyState == "ended"
    notices = [e for e in incoming.event_log if isinstance(e, ev.Notice)]
    assert notices == []


async def test_a_declined_ringing_call_closes_the_devices_it_opened(
    env: Env, pulse_devices: PulseDaemon
) -> None:
    alice = await env.phone("alice", audio_in="sine:440", audio_out="null:")
    bob = await env.phone("bob", **DEVICES)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await until(lambda: isinstance(incoming.sink, DeviceSink) and incoming.sink._running)
    speaker = incoming.sink
    assert incoming.source is not None
    mic = incoming.source.source
    await incoming.reject()
    await call.wait_ended(T)
    assert isinstance(speaker, DeviceSink) and speaker._closed
    assert mic.readyState == "ended"


async def test_answered_with_another_microphone_keeps_the_speaker_opened_while_ringing(
    env: Env, pulse_devices: PulseDaemon
) -> None:
    alice = await env.phone("alice", audio_in="sine:440", audio_out="null:")
    bob = await env.phone("bob", **DEVICES)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await until(lambda: isinstance(incoming.sink, DeviceSink) and incoming.sink._running)
    speaker = incoming.sink
    assert incoming.source is not None
    mic = incoming.source.source
    await incoming.accept(replace(incoming.options, audio_in="sine:660"))
    await incoming.wait_for(ev.MediaFlowing, 3 * T)
    await call.wait_for(ev.MediaFlowing, 3 * T)
    assert incoming.sink is speaker  # the speaker's endpoint did not change: kept
    assert incoming.source is not None and incoming.source.source is not mic
    assert mic.readyState == "ended"  # the microphone opened while ringing: closed
    await call.hangup()
    await incoming.wait_ended(T)


async def test_the_call_rings_and_connects_while_the_callers_devices_open(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offer and ICE/DTLS do not wait for the caller's devices (opening a sound
    card waits on the sound server); what it sends waits for them, and a mute
    pressed meanwhile holds: the microphone opens muted."""
    gate = threading.Event()
    opening = CallMedia._open_endpoints

    def slow(opts: object, source: object, sink: object) -> object:
        if getattr(opts, "audio_in", "") == "sine:440":  # alice's, not bob's
            gate.wait(4 * T)  # longer than any wait below: the old order fails
        return opening(opts, source, sink)  # type: ignore[arg-type]

    monkeypatch.setattr(CallMedia, "_open_endpoints", staticmethod(slow))
    alice = await env.phone("alice", audio_in="sine:440", audio_out="null:")
    bob = await env.phone("bob", audio_in="sine:660", audio_out="null:")
    try:
        call = alice.dial("bob")
        incoming = await bob.next_incoming(T)  # rang: the offer went out
        call.mute()
        assert call.muted and call.source is None
        await incoming.accept()
        await call.wait_for(ev.Connected, T)
        await incoming.wait_for(ev.Connected, T)
        assert call.source is None  # still opening: nothing sent, nothing played yet
        assert not any(isinstance(e, ev.MediaFlowing) for e in incoming.event_log)
    finally:
        gate.set()
    await incoming.wait_for(ev.MediaFlowing, T)
    await call.wait_for(ev.MediaFlowing, T)
    assert call.source is not None and call.source.muted  # opened muted
    await call.hangup()
    await incoming.wait_ended(T)
