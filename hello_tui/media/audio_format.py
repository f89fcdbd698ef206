"""The one internal audio format: 48 kHz, mono, signed 16-bit, 20 ms frames.

Every source produces, and every sink consumes, ``av.AudioFrame`` objects of
960 samples with ``pts`` counted in samples and ``time_base = 1/48000`` —
what aiortc's Opus encoder expects, so no resampling happens on the send path.
Anything else (files, a remote track decoded as stereo) goes through
:class:`Conformer`.
"""

from __future__ import annotations

import fractions

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
CHANNELS = 1
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 960
FRAME_SECONDS = FRAME_MS / 1000
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)

Samples = npt.NDArray[np.int16]


_S16 = av.AudioFormat("s16")
_MONO = av.AudioLayout("mono")


def make_frame(samples: Samples, pts: int) -> av.AudioFrame:
    """Wrap mono int16 ``samples`` as an aiortc-ready frame starting at sample ``pts``.

    The frame is allocated and its one plane filled directly: ``from_ndarray``
    does the same after parsing the format and layout names and checking the
    array in Python, twice the cost (9.5 -> 4.7 us warm, 26 -> 14 us right after
    an Opus encode; twice per 20 ms frame and side in a call)."""
    pcm = np.ascontiguousarray(samples, dtype=np.int16).reshape(-1)
    frame = av.AudioFrame(format=_S16, layout=_MONO, samples=len(pcm))
    if len(pcm):
        frame.planes[0].update(pcm)  # type: ignore[arg-type]  # any buffer (the stub says bytes)
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    frame.time_base = TIME_BASE
    return frame


def silence(n: int = FRAME_SAMPLES) -> Samples:
    """``n`` samples of digital silence."""
    return np.zeros(n, dtype=np.int16)


class Conformer:
    """Turn frames of any format/rate/layout into mono int16 48 kHz sample arrays.

    The fast path (s16 at 48 kHz, mono or interleaved stereo — what aiortc's
    Opus decoder emits) is plain numpy; anything else uses ``av.AudioResampler``,
    created on first need and kept, so its filter state carries across frames.
    """

    def __init__(self) -> None:
        self._resampler: av.AudioResampler | None = None

    def convert(self, frame: av.AudioFrame) -> Samples:
        """Samples of ``frame`` in the internal format (any length)."""
        if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE:
            channels = len(frame.layout.channels)
            # A read-only view of the (packed) plane: to_ndarray() would vstack a copy.
            data = np.frombuffer(
                memoryview(frame.planes[0]), dtype=np.int16, count=frame.samples * channels
            )
            if channels == 1:
                return data.astype(np.int16, copy=False)
            if channels == 2:
                pairs = data.reshape(-1, 2).astype(np.int32)
                return ((pairs[:, 0] + pairs[:, 1]) // 2).astype(np.int16)
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        frame.pts = None  # the resampler insists on continuous pts; we count samples ourselves
        return self._join(self._resampler.resample(frame))

    def flush(self) -> Samples:
        """Samples still held inside the resampler (call once at end of input)."""
        if self._resampler is None:
            return silence(0)
        return self._join(self._resampler.resample(None))

    @staticmethod
    def _join(frames: list[av.AudioFrame]) -> Samples:
        if not frames:
            return silence(0)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.int16)


class Rechunker:
    """Accumulate samples and hand them out in exact 960-sample frames."""

    def __init__(self, size: int = FRAME_SAMPLES) -> None:
        self._size = size
        self._parts: list[Samples] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def push(self, samples: Samples) -> None:
        if len(samples):
            self._parts.append(samples)
            self._count += len(samples)

    def pop(self, pad: bool = False) -> Samples | None:
        """Next full chunk; with ``pad``, a short remainder zero-padded; else None."""
        if self._count < self._size and not (pad and self._count):
            return None
        data = np.concatenate(self._parts) if len(self._parts) > 1 else self._parts[0]
        chunk, rest = data[: self._size], data[self._size :]
        self._parts = [rest] if len(rest) else []
        self._count = len(rest)
        if len(chunk) < self._size:
            chunk = np.concatenate([chunk, silence(self._size - len(chunk))])
        return chunk
