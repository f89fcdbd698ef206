"""Echo cancellation on a real call: the callee's speaker leaks into its microphone.

A private PulseAudio daemon with null sinks ``b_mic`` and ``b_spk``, seen by
PortAudio as sound cards (``tests.pulse.pulse_devices``). The room
(:class:`tests.acoustic.AcousticPath`, PulseAudio's loopback module) plays what
Bob's speaker (``b_spk``) renders into Bob's microphone sink (``b_mic``) 50 ms
later at -6 dB. Alice sends speech rendered by espeak-ng (``file:``) and
records what Bob sends back (``file:``); Bob talks through ``device:b_mic`` /
``device:b_spk``, silent himself, so everything Alice hears is echo.

One call with echo cancellation on: the echo is what the canceller got from
the microphone (``CaptureProcessor.tap``, before any processing), the
residual what Alice received; the echo return loss enhancement is their power
ratio after the canceller's learning time. (Two calls did this before, one
with processing off for the echo: the same figure, twice the time.) The bound
here is 10 dB: a canceller that never converges (the old arrival-order
pairing, a jumping echo path) gives ~2 dB; a converged call 25-60 dB; under a
CPU hog single calls with many speaker underruns measured 15.5 dB. The 25 dB
bar (median of 5) is bench/aec.py's.

Then the speaker moves mid-call to a headset (a sink whose
``device.form_factor`` is ``headset``): echo cancellation goes off with a
notice, and back on when the speaker comes back. Content only, no timing
assertions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hello_tui.call import events as ev
from hello_tui.call.audio_devices import switch_audio
from hello_tui.call.call import Call
from hello_tui.media.audio_processing import ProcessingConfig
from hello_tui.media.sources import DeviceSource, FileSource
from tests.acoustic import AcousticPath, echo_delays, power_db, speech
from tests.call.conftest import RATE, Env, T, read_wav, rms
from tests.pulse import PulseDaemon, pulse_devices

MIC, SPEAKER, HEADSET = "b_mic", "b_spk", "b_headset"
FAR_TEXT = (
    "Hello Bob, this is Alice calling from the other side of town. The weather has been "
    "lovely today and I walked along the river for an hour before lunch."
)
CONVERGE_S = 2.5  # the canceller's learning time, and Opus/playout start-up


@pytest.fixture
def room_devices(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    """PulseAudio with Bob's microphone, speaker and headset, and the room between
    the speaker and the microphone."""
    headset = {HEADSET: {"device.form_factor": "headset"}}
    with pulse_devices(
        tmp_path_factory.mktemp("pulse"), [MIC], [SPEAKER, HEADSET], headset
    ) as daemon:
        room = AcousticPath(daemon.env, SPEAKER, MIC, delay_ms=50, gain_db=-6)
        try:
            yield daemon
        finally:
            room.stop()


async def notice(call: Call, words: str) -> ev.Notice:
    async with asyncio.timeout(3 * T):
        async for event in call.events():
            if isinstance(event, ev.Notice) and words in event.text:
                return event
    raise AssertionError(f"no notice with {words!r}")


async def test_echo_cancellation_removes_the_speaker_from_what_the_callee_sends(
    env: Env, room_devices: PulseDaemon, tmp_path: Path
) -> None:
    far = speech(tmp_path / "far.wav", FAR_TEXT)
    heard = tmp_path / "heard.wav"
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    call = alice.dial("bob", audio_in=f"file:{far}", audio_out=f"file:{heard}")
    incoming = await bob.next_incoming(T)
    await incoming.accept(
        replace(incoming.options, audio_in=f"device:{MIC}", audio_out=f"device:{SPEAKER}",
                audio_processing=ProcessingConfig(aec=True, auto_gain=False))
    )  # fmt: skip
    await call.wait_for(ev.MediaFlowing, 3 * T)
    assert incoming.source is not None and isinstance(incoming.source.source, DeviceSource)
    mic = incoming.source.source
    processor = mic.processor
    assert processor is not None and processor.echo_cancellation  # a speaker: echo expected
    pairs: list[tuple[np.ndarray, np.ndarray]] = []  # what the canceller gets
    processor.tap = lambda near, far: pairs.append((near.copy(), far.copy()))
    assert call.source is not None and isinstance(call.source.source, FileSource)
    async with asyncio.timeout(6 * T):
        await call.source.source.ended.wait()
    processor.tap = None
    stats = processor.stats()
    print(f"speaker underflows {getattr(incoming.sink, 'card_underflows', '-')}, "
          f"microphone overflows {mic.overflows}")  # fmt: skip
    print(f"pairing {stats.pairing_ms:.1f} ms, {stats.realignments} realignments, "
          f"{stats.far_missing} of {stats.frames} frames without reference")  # fmt: skip
    print(f"echo delay per 2 s, ms (peak): {echo_delays(pairs)}")
    assert stats.far_frames > 0  # the playout fed the reference

    # A headset: nothing to cancel (and AEC3 would duck Bob), so it goes off, and back on.
    await switch_audio(incoming, "out", f"device:{HEADSET}")
    await notice(incoming, "echo cancellation off: the output is a headset")
    assert not processor.echo_cancellation and processor.frames > 0
    await switch_audio(incoming, "out", f"device:{SPEAKER}")
    await notice(incoming, "echo cancellation on")
    assert processor.echo_cancellation
    await call.hangup()
    await incoming.wait_ended(T)

    start = int(CONVERGE_S * RATE)
    captured = np.concatenate([near for near, _ in pairs])
    sent = read_wav(heard)
    end = min(len(captured), len(sent)) - RATE // 2
    assert end - start > 2 * RATE, (len(captured), len(sent))
    echo, residual = captured[start:end], sent[start:end]
    erle = power_db(echo) - power_db(residual)
    print(f"echo {power_db(echo):.1f} dB, residual {power_db(residual):.1f} dB: ERLE {erle:.1f} dB")
    assert rms(echo) > 300  # the room really leaks: without processing Alice hears herself
    assert erle >= 10
