"""The ringing tone and the settings' test tone, played through an audio sink.

``Ringer``: a 440 + 480 Hz cadence (``RING_ON`` seconds of tone, ``RING_OFF``
of silence, again) fed to ``open_audio_sink(spec)`` until :meth:`Ringer.stop`.
``play_tone``: a sine for a fixed time on a sink, then the sink is closed.
No Textual here: the TUI starts and stops them.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

import numpy as np
from aiortc.mediastreams import MediaStreamError

from hello_tui.media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, Samples
from hello_tui.media.sinks import AudioSink, DeviceSink, open_audio_sink
from hello_tui.media.sources import PacedSource, SineSource

if TYPE_CHECKING:  # annotations only: the real av, or its stand-in (av_standin.py)
    import av

RING_HZ = (440.0, 480.0)
RING_ON = 1.0  # seconds of tone
RING_OFF = 2.0  # seconds of silence after it
RING_AMPLITUDE = 0.12  # of full scale, per tone (the two together stay far from clipping)


class RingSource(PacedSource):
    """The ring cadence as a paced track: a function of ``pts``, like the sine."""

    def __init__(self, spec: str = "ring:") -> None:
        super().__init__(spec)
        self._n = np.arange(FRAME_SAMPLES)
        self._period = round((RING_ON + RING_OFF) * SAMPLE_RATE)
        self._on = round(RING_ON * SAMPLE_RATE)

    def _samples(self, pts: int) -> Samples:
        t = self._n + pts
        phase = t % self._period
        gate = phase < self._on
        out = np.zeros(FRAME_SAMPLES)
        for hz in RING_HZ:
            cycles = (hz * pts / SAMPLE_RATE) % 1.0
            out += np.sin(2 * math.pi * (cycles + hz * self._n / SAMPLE_RATE))
        return (out * gate * RING_AMPLITUDE * 32767).astype(np.int16)


class LimitedSource(SineSource):
    """A sine that ends (``MediaStreamError``) after ``seconds``."""

    def __init__(self, spec: str, hz: float, seconds: float) -> None:
        super().__init__(spec, hz)
        self.frames_left = max(1, round(seconds * SAMPLE_RATE / FRAME_SAMPLES))

    async def recv(self) -> av.AudioFrame:
        if self.frames_left <= 0:
            raise MediaStreamError
        self.frames_left -= 1
        return await super().recv()


async def _open(spec: str, fallback: bool) -> AudioSink:
    # Opening a sound card can take a moment: not on the event loop.
    return await asyncio.to_thread(open_audio_sink, spec, fallback=fallback)


async def _drain(sink: AudioSink) -> None:
    """Let a device play what it buffered before it is closed."""
    if isinstance(sink, DeviceSink):
        await asyncio.sleep(sink.stats().buffer_ms / 1000 + 0.05)


class Ringer:
    """Rings on ``sink`` until :meth:`stop`; build it with :meth:`open`."""

    def __init__(self, sink: AudioSink) -> None:
        self.sink = sink
        self.source = RingSource()
        self.stopped = False

    @classmethod
    async def open(cls, spec: str = "device:") -> Ringer:
        """Start ringing on ``spec`` (no fallback: an unusable device raises
        ``AudioUnavailable``, the caller rings the bell instead)."""
        ringer = cls(await _open(spec, fallback=False))
        await ringer.sink.start(ringer.source)
        return ringer

    async def stop(self) -> None:
        """Stop the tone and close the sink (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        self.source.stop()
        await self.sink.stop()


async def play_tone(spec: str, hz: float = 440.0, seconds: float = 1.0) -> AudioSink:
    """Play ``seconds`` of a ``hz`` sine on the sink ``spec`` and close it;
    returns the (closed) sink (its ``notice`` says if a device fell back)."""
    sink = await _open(spec, fallback=True)
    try:
        await sink.start(LimitedSource(f"sine:{hz:g}", hz, seconds))
        await sink.done.wait()
        await _drain(sink)
    finally:
        await sink.stop()
    return sink


__all__ = ["RING_HZ", "RING_OFF", "RING_ON", "LimitedSource", "RingSource", "Ringer", "play_tone"]
