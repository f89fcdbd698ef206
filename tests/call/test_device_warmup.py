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
from types import SimpleNamespace

import numpy as np
import pytest

from hello_tui.call import events as ev
from hello_tui.call.media_policy import CallMedia
from hello_tui.media.audio_processing import DEFAULT, open_processor
from hello_tui.media.sinks import DeviceSink
from hello_tui.media.sources import MIC_BLOCK, DeviceSource
from tests.call.conftest import MIC, SPEAKER, Env, T
from tests.pulse import PulseDaemon
from tests.pulse import pulse_devices as pulse_device_set

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


async def test_answered_while_its_devices_open_the_microphone_starts_where_they_opened(
    env: Env, pulse_devices: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer comes while the devices opened at ringing are still opening: the
    opening thread starts the microphone itself, before it hands them over (no hop
    through the loop, which is busy connecting the call)."""
    gate = threading.Event()
    steps: list[str] = []
    opening, start_opened = CallMedia._open_endpoints, CallMedia._start_opened
    warm = DeviceSource.warm

    def slow(opts: object, source: object, sink: object) -> object:
        if getattr(opts, "audio_in", "") == DEVICES["audio_in"]:  # bob's, not alice's
            gate.wait(4 * T)
        return opening(opts, source, sink)  # type: ignore[arg-type]

    def start(self: CallMedia, opened: object) -> object:
        result = start_opened(self, opened)  # type: ignore[arg-type]
        if self.options.audio_in == DEVICES["audio_in"]:
            steps.append("handed over")
        return result

    def mic_start(self: DeviceSource) -> None:
        steps.append("mic started")
        warm(self)

    monkeypatch.setattr(CallMedia, "_open_endpoints", staticmethod(slow))
    monkeypatch.setattr(CallMedia, "_start_opened", start)
    monkeypatch.setattr(DeviceSource, "warm", mic_start)
    alice = await env.phone("alice", audio_in="sine:440", audio_out="null:")
    bob = await env.phone("bob", **DEVICES)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    try:
        await incoming.accept()
        await incoming.wait_for(ev.Connecting, T)
        assert incoming.source is None and steps == []  # answered: still opening
    finally:
        gate.set()
    await incoming.wait_for(ev.MediaFlowing, 3 * T)
    await call.wait_for(ev.MediaFlowing, 3 * T)
    assert steps[:2] == ["mic started", "handed over"]
    await call.hangup()
    await incoming.wait_ended(T)


async def test_a_headset_is_asked_about_once_audio_flows_and_its_echo_cancellation_goes_off(
    env: Env, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the speaker is a headset (pactl, twice: 30-50 ms) is not asked between
    opening and starting the devices but once audio flows; the answer still turns
    echo cancellation off for a headset, with the notice."""
    from hello_tui.media import output_kind as kinds

    asked_when_flowing: list[bool] = []
    real = kinds.output_kind
    headset = "b_headset"

    def output_kind(device: str) -> kinds.OutputKind:
        asked_when_flowing.append(any(isinstance(e, ev.MediaFlowing) for e in incoming.event_log))
        return real(device)

    monkeypatch.setattr(kinds, "output_kind", output_kind)
    props = {headset: {"device.form_factor": "headset"}}
    with pulse_device_set(tmp_path_factory.mktemp("pulse"), [MIC], [headset], props):
        alice = await env.phone("alice", audio_in="sine:440", audio_out="null:")
        bob = await env.phone("bob", audio_in=f"device:{MIC}", audio_out=f"device:{headset}")
        call = alice.dial("bob")
        incoming = await bob.next_incoming(T)
        await incoming.accept()
        await incoming.wait_for(ev.MediaFlowing, 3 * T)
        async with asyncio.timeout(3 * T):
            async for event in incoming.events():
                if isinstance(event, ev.Notice) and "the output is a headset" in event.text:
                    break
        assert incoming.source is not None
        mic = incoming.source.source
        assert isinstance(mic, DeviceSource)
        processor = mic.processor
        assert processor is not None and not processor.echo_cancellation
        assert asked_when_flowing == [True]
        await call.hangup()
        await incoming.wait_ended(T)


async def test_a_microphone_listening_keeps_the_blocks_that_come_before_the_first_read(
    pulse_devices: PulseDaemon,
) -> None:
    """``listen()`` (the call's media connected) keeps the card's blocks: one that
    comes before the sender's first ``recv()`` is sent, not dropped."""
    mic = DeviceSource(f"device:{MIC}", MIC)
    try:
        mic.warm()
        await asyncio.sleep(0.1)  # blocks come and go: nobody listens yet
        assert mic._queue is None
        mic.listen()
        await until(lambda: mic._queue is not None and not mic._queue.empty())
        frame = await mic.recv()
        assert frame.pts == 0 and mic.dropped == 0
    finally:
        mic.stop()


async def test_the_first_frame_starts_with_the_block_captured_before_listening(
    pulse_devices: PulseDaemon,
) -> None:
    """The microphone captures half frames: the block captured just before ``listen()``
    (the call's media connected) is the first frame's first half, so that frame is
    whole at the first block after it instead of the second. With a processor, that
    block goes out as captured and the processor starts at the next one, exactly as a
    fresh processor would; with echo cancellation it is not kept. The card's callback
    is driven by hand (the stream is never started): block *n* holds the value *n*."""
    when = SimpleNamespace(inputBufferAdcTime=0.0, currentTime=1.0)
    status = SimpleNamespace(input_overflow=False)

    def block(n: int) -> np.ndarray:
        return np.full((MIC_BLOCK, 1), n, dtype=np.int16)

    for processed, aec in ((False, False), (True, False), (True, True)):
        mic = DeviceSource(f"device:{MIC}", MIC)
        try:
            mic._started = True  # warm() must not start the real stream: we are the card
            if processed:
                mic.processor, _ = open_processor(DEFAULT, echo_cancellation=aec)
                assert mic.processor is not None
            for n in (1, 2, 3):  # nobody listens: only the last one is kept
                mic._callback(block(n), MIC_BLOCK, when, status)
            mic.listen()
            mic._callback(block(4), MIC_BLOCK, when, status)
            if aec:  # with echo cancellation the block before listen() is not kept
                mic._callback(block(5), MIC_BLOCK, when, status)
            frame = await asyncio.wait_for(mic.recv(), T)
            samples = frame.to_ndarray()[0]
            if aec:
                twin, _ = open_processor(DEFAULT, echo_cancellation=True)
                assert twin is not None
                want = np.concatenate([twin.process(block(n)[:, 0], 1.0) for n in (4, 5)])
                assert np.array_equal(samples, want)
            elif processed:
                twin, _ = open_processor(DEFAULT, echo_cancellation=False)
                assert twin is not None
                want = np.concatenate([block(3)[:, 0], twin.process(block(4)[:, 0], 1.0)])
                assert np.array_equal(samples, want)
                assert mic.processor.frames == 1  # the block before listen() was not processed
            else:
                assert samples.tolist() == [3] * MIC_BLOCK + [4] * MIC_BLOCK
            assert frame.pts == 0 and mic.dropped == 0
        finally:
            mic.stop()
