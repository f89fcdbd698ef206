"""The device path: a tone played into one side's input device arrives at the other
side's output device.

Two real peers through the real server (loopback, DTLS-SRTP, Opus). The
``pulse_devices`` fixture starts a private PulseAudio daemon with null sinks
``a_mic`` and ``b_spk`` that PortAudio lists as sound cards of those names.
Alice's input is ``device:a_mic`` (the monitor of sink ``a_mic``, into which
the test plays a 440 Hz tone with ``paplay``); Bob's output is
``device:b_spk``; the test records ``b_spk.monitor`` with ``parec`` and
checks the tone's FFT peak and level. Content only, no timing assertions.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np

from hello_tui.call import events as ev
from hello_tui.media.sinks import DeviceSink
from tests.call.conftest import MIC, RATE, SPEAKER, Env, T, dominant_hz, rms
from tests.pulse import PulseDaemon

TONE_HZ = 440
RECORD_S = 2.5


def write_tone(path: Path, seconds: float, hz: float = TONE_HZ) -> Path:
    import wave

    t = np.arange(int(seconds * RATE)) / RATE
    samples = (np.sin(2 * np.pi * hz * t) * 0.3 * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return path


async def record(daemon: PulseDaemon, source: str, seconds: float) -> np.ndarray:
    """``seconds`` of a PulseAudio source, 48 kHz mono s16, via parec."""
    proc = await asyncio.create_subprocess_exec(
        "parec", "-d", source, "--raw", "--format=s16le", f"--rate={RATE}", "--channels=1",
        "--latency-msec=20",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **daemon.env},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(seconds + T):
            data = await proc.stdout.readexactly(int(seconds * RATE) * 2)
    finally:
        proc.terminate()
        await proc.wait()
    return np.frombuffer(data, dtype=np.int16)


async def test_tone_into_a_mic_device_comes_out_of_b_speaker_device(
    env: Env, pulse_devices: PulseDaemon, tmp_path: Path
) -> None:
    daemon = pulse_devices
    player = subprocess.Popen(
        ["paplay", "-d", MIC, str(write_tone(tmp_path / "tone.wav", 60))],
        env={**os.environ, **daemon.env}, stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        # Before the call: nothing reaches the speaker.
        before = await record(daemon, f"{SPEAKER}.monitor", 0.5)
        assert rms(before) < 50

        alice = await env.phone("alice")
        bob = await env.phone("bob")
        call = alice.dial("bob", audio_in=f"device:{MIC}", audio_out="null:")
        incoming = await bob.next_incoming(T)
        await incoming.accept(
            replace(incoming.options, audio_in="null:", audio_out=f"device:{SPEAKER}")
        )
        await call.wait_for(ev.MediaFlowing, 3 * T)
        await incoming.wait_for(ev.MediaFlowing, 3 * T)
        assert isinstance(incoming.sink, DeviceSink)
        assert incoming.sink.device.name == SPEAKER

        heard = await record(daemon, f"{SPEAKER}.monitor", RECORD_S)
        sink_stats = incoming.sink.stats()
        await call.hangup()
        await incoming.wait_ended(T)
    finally:
        player.terminate()
        player.wait(5)

    notices = [e for c in (call, incoming) async for e in c.events() if isinstance(e, ev.Notice)]
    assert notices == []  # both devices opened: no fallback to null:
    body = heard[RATE // 2 :]  # past the playout buffer's start
    level = rms(body)
    peak = dominant_hz(body)
    print(f"b_spk: {peak:.1f} Hz at RMS {level:.0f}; sink {sink_stats}")
    assert abs(peak - TONE_HZ) < 3
    assert level > 1000  # the tone, not leakage: played at RMS ≈ 6950
