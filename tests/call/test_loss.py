"""A call through a lossy relay: 5 % random loss both ways, the tone survives.

Both peers reach each other only through ``tests/services/lossy_relay.py``
(their SDP candidates are rewritten to its ports); it drops 5 % of every
packet both ways (seeded), STUN and DTLS included, and adds a little
jitter. Each side records what it decodes **on the RTP timeline** (each
frame at its ``pts``), so audio that never reached the sink shows as
silence where it belongs: a plain WAV sink writes frames back to back and
would hide a hole. Checks are on content only (no timing assertions): no
run of near-silence longer than 100 ms, and the tone stays at its frequency.
"""

from __future__ import annotations

import asyncio
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hello_tui.call import events as ev
from hello_tui.media.audio_format import Conformer
from hello_tui.media.sinks import AudioSink
from tests.call.conftest import RATE, Env, T, dominant_hz
from tests.services.lossy_relay import LossyRelay, relay_phones

LOSS = 0.05
SECONDS = 3.0


class TimelineSink(AudioSink):
    """Keeps decoded audio at its RTP position (``pts``, 48 kHz) from the first frame."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"file:{path}")
        self.path = path
        self.audio = np.zeros(0, dtype=np.int16)
        self._origin: int | None = None
        self._conform = Conformer()

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                samples = self._conform.convert(frame)
                if self._origin is None:
                    self._origin = frame.pts
                pos = int(frame.pts - self._origin)
                if 0 <= pos < 60 * RATE:
                    end = pos + len(samples)
                    if end > len(self.audio):
                        self.audio = np.concatenate(
                            [self.audio, np.zeros(end - len(self.audio), np.int16)]
                        )
                    self.audio[pos:end] = samples
                self.frames += 1
                self.samples += len(samples)
        except MediaStreamError:
            pass
        finally:
            self.done.set()

    def _close(self) -> None:
        with wave.open(str(self.path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(self.audio.tobytes())


def longest_gap_ms(samples: np.ndarray, window_ms: int = 5) -> float:
    """The longest run of near-silence (5 ms windows under 10 % of the median RMS)."""
    n = RATE * window_ms // 1000
    usable = len(samples) // n * n
    blocks = samples[:usable].astype(np.float64).reshape(-1, n)
    level = np.sqrt((blocks**2).mean(axis=1))
    quiet = level < 0.1 * np.median(level)
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return longest * window_ms


def test_gap_detector_finds_a_hole() -> None:
    t = np.arange(RATE) / RATE
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    assert longest_gap_ms(tone) == 0
    tone[RATE // 2 : RATE // 2 + RATE * 120 // 1000] = 0
    assert 110 <= longest_gap_ms(tone) <= 125


async def test_five_percent_loss_both_ways_no_gap_and_the_tone_holds(env: Env) -> None:
    relay = await LossyRelay.start(LOSS, delay=0.002, jitter=0.004, seed=4)
    try:
        alice = await env.phone("alice")
        bob = await env.phone("bob")
        relay_phones(relay, alice.client, bob.client)
        a_rec, b_rec = TimelineSink(env.wav("alice.wav")), TimelineSink(env.wav("bob.wav"))
        call = alice.dial("bob", audio_in="sine:440")
        call.media.sink = a_rec  # before the call task opens its media
        incoming = await bob.next_incoming(T)
        incoming.media.sink = b_rec
        await incoming.accept(replace(incoming.options, audio_in="sine:660"))
        await call.wait_for(ev.MediaFlowing, 3 * T)
        await incoming.wait_for(ev.MediaFlowing, 3 * T)
        async with asyncio.timeout(3 * T):
            while len(a_rec.audio) < SECONDS * RATE or len(b_rec.audio) < SECONDS * RATE:
                await asyncio.sleep(0.05)
        await call.hangup()
        await incoming.wait_ended(T)
    finally:
        relay.close()
    ab, ba = relay.stats["a->b"], relay.stats["b->a"]
    print(f"relay a->b {ab}, b->a {ba}")
    assert ab.dropped > 0 and ba.dropped > 0  # the loss really happened both ways
    # A sender whose event loop stalled more than 100 ms skips ahead (its pts
    # jump: media/sources.py MAX_LATE): that hole is the machine's, not the
    # network's. The bound adds what each sender reports it skipped.
    skipped = {hz: _frames_skipped(c) for hz, c in ((660, incoming), (440, call))}
    for rec, hz in ((a_rec.audio, 660), (b_rec.audio, 440)):
        body = rec[RATE // 4 : int(SECONDS * RATE)]
        gap = longest_gap_ms(body)
        bound = 100 + 20 * skipped[hz]
        print(f"{hz} Hz: longest gap {gap} ms (sender skipped {skipped[hz]} frames)")
        assert gap <= bound, f"a {gap} ms hole in the {hz} Hz tone"
        assert abs(dominant_hz(body) - hz) < 5


def _frames_skipped(call: Any) -> int:
    """Frames the call's paced source skipped after a stalled loop."""
    source = call.media.source.source  # GatedTrack -> the sine source
    return int(source.frames_skipped)
