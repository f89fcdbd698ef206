"""Call sounds, like Firefox Hello's: short tones generated here (no sound files).

Six cues, each a few notes with 5 ms raised-cosine edges (no clicks), well
under half a second and at -20 dBFS peak or so: ``connecting`` (two soft
blips), ``connected`` (a rising triad), ``failed`` (a falling pair, longer),
``joined`` (a fourth up), ``left`` (the same down), ``message`` (two quick
high blips). :func:`render` gives the samples; :class:`CuePlayer` plays them
in turn on an audio sink (a short stream opened for the cues and closed once
they have played, like the ring tone), or rings the terminal bell instead
when there is no output. No settings and no call here: the session layer
decides which cue plays when (``hello_tui/session/sounds.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, get_args

import numpy as np
from aiortc.mediastreams import MediaStreamError

from hello_tui.media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, Samples, make_frame
from hello_tui.media.sinks import AudioSink, DeviceSink, open_audio_sink
from hello_tui.media.sources import AudioSource

if TYPE_CHECKING:  # annotations only: the real av, or its stand-in (av_standin.py)
    import av

log = logging.getLogger(__name__)

Cue = Literal["connecting", "connected", "failed", "joined", "left", "message"]
CUES: tuple[Cue, ...] = get_args(Cue)

# (Hz, seconds) a note; 0 Hz is a pause. Equal-tempered notes around A4/A5.
PATTERNS: dict[Cue, tuple[tuple[float, float], ...]] = {
    "connecting": ((440.0, 0.07), (0.0, 0.07), (440.0, 0.07)),
    "connected": ((523.25, 0.08), (659.25, 0.08), (783.99, 0.16)),
    "failed": ((493.88, 0.18), (0.0, 0.04), (369.99, 0.32)),
    "joined": ((587.33, 0.08), (783.99, 0.14)),
    "left": ((783.99, 0.08), (587.33, 0.14)),
    "message": ((1046.5, 0.05), (0.0, 0.05), (1318.51, 0.06)),
}
AMPLITUDE = 0.1  # of full scale: audible beside a call, never startling
EDGE = 0.005  # seconds of fade in and out of each note
# Without a sound output the bell stands in only for what asks for attention;
# a bell for what the user just did themselves (dialing, connecting, hanging up) is noise.
BELL_CUES: frozenset[Cue] = frozenset({"failed", "joined", "message"})
RETRY_DEVICE = 60.0  # seconds before an output that failed to open is tried again


def render(cue: Cue) -> Samples:
    """The cue's samples: mono s16 at 48 kHz."""
    parts = []
    for hz, seconds in PATTERNS[cue]:
        n = round(seconds * SAMPLE_RATE)
        if hz <= 0:
            parts.append(np.zeros(n))
            continue
        t = np.arange(n) / SAMPLE_RATE
        tone = np.sin(2 * math.pi * hz * t)
        edge = min(round(EDGE * SAMPLE_RATE), n // 2)
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, math.pi, edge))
        tone[:edge] *= ramp
        tone[n - edge :] *= ramp[::-1]
        parts.append(tone)
    return (np.concatenate(parts) * AMPLITUDE * 32767).astype(np.int16)


def duration(cue: Cue) -> float:
    """Seconds the cue lasts."""
    return sum(seconds for _, seconds in PATTERNS[cue])


class CueTrack(AudioSource):
    """Plays ``samples`` in real time (the last frame padded with silence), then
    ends. Late frames are sent late, never skipped: a cue is short and whole."""

    def __init__(self, samples: Samples) -> None:
        super().__init__("cue:")
        frames = -(-len(samples) // FRAME_SAMPLES)
        self._all = np.zeros(frames * FRAME_SAMPLES, dtype=np.int16)
        self._all[: len(samples)] = samples
        self._t0: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        self._check_live()
        if self._pts >= len(self._all):
            raise MediaStreamError
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        due = self._t0 + self._pts / SAMPLE_RATE
        if due > now:
            await asyncio.sleep(due - now)
        pts, self._pts = self._pts, self._pts + FRAME_SAMPLES
        self.frames_sent += 1
        return make_frame(self._all[pts : pts + FRAME_SAMPLES], pts)


class CuePlayer:
    """Plays cues one after another on ``output`` (an audio-sink spec; None: no
    output, the bell rings for :data:`BELL_CUES`). ``play`` never waits: the
    cues wait in a short queue (a cue already waiting is not queued twice) and
    one task plays them. An output that cannot be opened falls back to the bell
    for :data:`RETRY_DEVICE` seconds. ``played`` lists what sounded (cue names,
    ``bell:`` + name for a bell), for the faces' tests and logs."""

    MAX_QUEUED = 3

    def __init__(self, output: str | None, bell: Callable[[], None] | None = None) -> None:
        self.output = output
        self.bell = bell
        self.played: list[str] = []
        self._queue: list[Cue] = []
        self._task: asyncio.Task[None] | None = None
        self._failed_at: float | None = None
        self._sink: AudioSink | None = None

    def play(self, cue: Cue) -> None:
        if cue in self._queue or len(self._queue) >= self.MAX_QUEUED:
            return
        self._queue.append(cue)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def idle(self) -> None:
        """Until every queued cue has played (for tests and orderly exits)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        """Stop at once (what is queued is dropped)."""
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sink is not None:
            await self._sink.stop()
            self._sink = None

    def _usable_output(self) -> str | None:
        if self.output is None:
            return None
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_DEVICE:
            return None
        return self.output

    async def _run(self) -> None:
        while self._queue:
            cue = self._queue.pop(0)
            spec = self._usable_output()
            if spec is not None:
                try:
                    await self._sound(spec, cue)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # no device after all: the bell, for a while
                    log.info("call sound on %s: %s", spec, exc)
                    self._failed_at = time.monotonic()
                else:
                    self.played.append(cue)
                    continue
            if cue in BELL_CUES and self.bell is not None:
                self.bell()
                self.played.append(f"bell:{cue}")

    async def _sound(self, spec: str, cue: Cue) -> None:
        # No fallback: an unusable device raises, and the bell rings instead.
        sink = await asyncio.to_thread(open_audio_sink, spec, fallback=False)
        self._sink = sink
        try:
            await sink.start(CueTrack(render(cue)))
            await sink.done.wait()
            if isinstance(sink, DeviceSink):  # let the card play what it buffered
                await asyncio.sleep(sink.stats().buffer_ms / 1000 + 0.05)
        finally:
            self._sink = None
            await sink.stop()


__all__ = ["BELL_CUES", "CUES", "PATTERNS", "Cue", "CuePlayer", "CueTrack", "duration", "render"]
