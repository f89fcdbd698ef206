"""The audio send path in C (media/send_path.cpp, media/native_send.py, the adapter's
``_NativeSender``): the packets are the Python path's, byte for byte; in a real call the
capture thread sends, the far end decodes the tone, the SRs stay right; any change
(mute, a new track, a relayed or changed pair, C giving up) hands the stream back
without a gap in sequence numbers or timestamps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hello_tui.call import events as ev
from hello_tui.media import aiortc_adapter as ad
from hello_tui.media import capture_native, devices, native_send
from hello_tui.media.audio_processing import ProcessingConfig
from tests.call import conftest as call_fixtures
from tests.call.conftest import MIC, RATE, Env, T, dominant_hz, read_wav
from tests.pulse import PulseDaemon

start_env = call_fixtures.start_env
env = call_fixtures.env
pulse_devices = call_fixtures.pulse_devices

pytestmark = pytest.mark.skipif(
    not native_send.available() or not capture_native.available(),
    reason="the AEC3 shim (with capture_path.cpp and send_path.cpp) is not built",
)

FRAME = 960
SSRC = 0x1234_5678
PT = 111


def tone_frames(n: int, hz: float = 440.0, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(FRAME * n) / RATE
    sig = np.sin(2 * np.pi * hz * t) * 8000 + rng.normal(0, 300, len(t))
    frames = list(sig.astype(np.int16).reshape(n, FRAME))
    frames[3] = np.zeros(FRAME, dtype=np.int16)  # silence: level -127
    frames[4] = np.full(FRAME, 32767, dtype=np.int16)  # full scale: level 0
    return frames


def ntp_at(i: int) -> int:
    return (3_900_000_000 << 32) + i * 85_899_345  # 20 ms apart


async def until(check: Callable[[], bool], timeout: float = T) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def pulse_call_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
    monkeypatch.setenv(capture_native.KNOB, "1")  # the read callback in C
    monkeypatch.setenv(native_send.KNOB, "1")


class Tone:
    """A pulse playback callback: a continuous tone into the caller's "microphone"."""

    def __init__(self, hz: float) -> None:
        self.hz, self.n = hz, 0

    def __call__(self, out: Any, frames: int, when: Any, status: Any) -> None:
        t = np.arange(self.n, self.n + frames) / RATE
        out[:, 0] = (np.sin(2 * np.pi * self.hz * t) * 0.3 * 32767).astype(np.int16)
        self.n += frames


async def test_in_a_real_call_the_capture_thread_sends_and_the_far_end_hears_the_tone(
    env: Env, pulse_devices: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    pulse_call_env(monkeypatch)
    played, _ = devices.open_stream("output", MIC, Tone(440), samplerate=RATE, blocksize=480)
    played.start()
    try:
        alice = await env.phone(
            "alice", audio_processing=ProcessingConfig(aec=False, noise_suppression=False,
                                                       auto_gain=False),
        )  # fmt: skip
        bob = await env.phone("bob")
        b_wav = env.wav("bob.wav")
        call = alice.dial("bob", audio_in=f"device:{MIC}.monitor", audio_out="null:")
        incoming = await bob.next_incoming(T)
        await incoming.accept(
            replace(incoming.options, audio_in="sine:880", audio_out=f"file:{b_wav}")
        )
        await call.wait_for(ev.MediaFlowing, T)
        await incoming.wait_for(ev.MediaFlowing, T)
        assert call.pc is not None
        sender = call.pc.getSenders()[0]
        native = ad.native_sender(sender)
        assert native is not None
        await until(lambda: native.frames_in_c() > 100)
        print(native.stretches, native.frames_in_c(), native.last_end)
        await call.hangup()
        await incoming.wait_ended(T)
    finally:
        played.close()
    rec = read_wav(b_wav)
    assert abs(dominant_hz(rec[RATE // 2 :]) - 440) < 5
