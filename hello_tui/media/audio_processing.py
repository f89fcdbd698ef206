"""The capture-side audio processing stage: echo cancellation, noise suppression, gain.

WebRTC's audio processing module (AEC3, NS, AGC2 and the high-pass filter)
through the ``pywebrtc-audio`` binding (why that one: docs/media.md). It is
the only module that imports the binding, behind a tiny interface so it can
be swapped:

* :meth:`CaptureProcessor.feed_far` — what the playout just sent to the
  speaker, called from the output device's callback, so the reference arrives
  at the playout's own timing and the canceller sees the true delay;
* :meth:`CaptureProcessor.process` — a captured block in, the processed block
  out (called from the input device's callback);
* :meth:`CaptureProcessor.stats` — counters, speech probability, gain.

The binding processes 10 ms pairs (far, near) in one call, so far-end frames
wait in a short queue until the next capture block takes them: each near
10 ms takes the oldest waiting far 10 ms, or silence when none is there (the
speaker played nothing). The queue is kept short (``MAX_FAR_BACKLOG``): a
reference that lags the microphone would reach the canceller after its echo.

Only ``device:`` capture is processed (files, tones and silence stay
bit-exact), and echo cancellation only when the output is a device too.
Without the binding, :func:`open_processor` returns a one-line notice and no
processor: the call goes on unprocessed.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hello_tui.media.audio_format import SAMPLE_RATE, Samples

__all__ = [
    "BLOCK",
    "DEFAULT",
    "OFF",
    "CaptureProcessor",
    "ProcessingConfig",
    "ProcessingStats",
    "ProcessingUnavailable",
    "attach_processing",
    "open_processor",
]

BLOCK = SAMPLE_RATE // 100  # the module's unit: 10 ms
MAX_FAR_BACKLOG = 4  # far frames (10 ms) kept waiting for the microphone; older ones are dropped


class ProcessingUnavailable(RuntimeError):
    """The processing binding cannot be loaded (not installed, or its library fails)."""


@dataclass(frozen=True, slots=True)
class ProcessingConfig:
    """Which stages run on ``device:`` capture (``[audio]`` aec / noise_suppression / auto_gain).

    The high-pass filter always runs with any other stage (AEC3 needs it)."""

    aec: bool = True
    noise_suppression: bool = True
    auto_gain: bool = True

    @property
    def any(self) -> bool:
        return self.aec or self.noise_suppression or self.auto_gain


DEFAULT = ProcessingConfig()
OFF = ProcessingConfig(aec=False, noise_suppression=False, auto_gain=False)


@dataclass(frozen=True, slots=True)
class ProcessingStats:
    frames: int  # near-end 10 ms frames processed
    far_frames: int  # far-end 10 ms frames received from the playout
    far_missing: int  # near frames processed with silence as reference (nothing played)
    far_dropped: int  # far frames dropped because the reference ran ahead of the microphone
    speech_probability: float  # of the last frame, 0..1
    gain_db: float  # applied by the gain control (0 when off)
    cpu_seconds: float  # thread CPU time spent in the binding
    echo_cancellation: bool


def _load_binding() -> Any:
    try:
        import pywebrtc_audio
    except ImportError as exc:
        raise ProcessingUnavailable(f"pywebrtc-audio is not installed ({exc})") from None
    except OSError as exc:  # the extension's shared library failed to load
        raise ProcessingUnavailable(f"pywebrtc-audio cannot load ({exc})") from None
    return pywebrtc_audio


class CaptureProcessor:
    """One call's processing stage: thread-safe between ``feed_far`` (the output
    callback's thread) and ``process`` (the input callback's thread)."""

    def __init__(self, config: ProcessingConfig, *, echo_cancellation: bool) -> None:
        binding = _load_binding()
        self.config = config
        self.echo_cancellation = echo_cancellation and config.aec
        try:
            self._ap = binding.AudioProcessor(
                sample_rate=SAMPLE_RATE,
                num_channels=1,
                echo_cancellation=self.echo_cancellation,
                noise_suppression=config.noise_suppression,
                high_pass_filter=True,
                auto_gain_control=config.auto_gain,
            )
        except Exception as exc:  # a binding that loads but refuses the settings
            raise ProcessingUnavailable(f"audio processing cannot start ({exc})") from None
        self._far: collections.deque[Samples] = collections.deque()
        self._far_partial = np.zeros(0, dtype=np.int16)
        self._near_partial = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()
        self._silence = np.zeros(BLOCK, dtype=np.int16)
        self.frames = self.far_frames = self.far_missing = self.far_dropped = 0
        self.cpu_seconds = 0.0
        self.speech_probability = 0.0
        self.gain_db = 0.0

    def feed_far(self, samples: Samples) -> None:
        """What the speaker is about to play (any length; copied)."""
        if not self.echo_cancellation:
            return
        with self._lock:
            pending = np.concatenate((self._far_partial, samples))
            n = len(pending) // BLOCK
            for i in range(n):
                self._far.append(pending[i * BLOCK : (i + 1) * BLOCK])
            self._far_partial = pending[n * BLOCK :].copy()
            self.far_frames += n
            excess = len(self._far) - MAX_FAR_BACKLOG
            for _ in range(max(0, excess)):
                self._far.popleft()
            self.far_dropped += max(0, excess)

    def _next_far(self) -> Samples:
        with self._lock:
            if self._far:
                return self._far.popleft()
        self.far_missing += 1
        return self._silence

    def process(self, near: Samples) -> Samples:
        """Process captured samples (any length); returns the processed ones, in
        whole 10 ms frames (a remainder waits for the next call)."""
        pending = np.concatenate((self._near_partial, near)) if len(self._near_partial) else near
        n = len(pending) // BLOCK
        self._near_partial = pending[n * BLOCK :].copy()
        if n == 0:
            return self._silence[:0]
        out = np.empty(n * BLOCK, dtype=np.int16)
        t0 = time.thread_time()
        for i in range(n):
            chunk = pending[i * BLOCK : (i + 1) * BLOCK]
            far = self._next_far() if self.echo_cancellation else None
            out[i * BLOCK : (i + 1) * BLOCK] = self._ap.process(chunk, far)
        self.cpu_seconds += time.thread_time() - t0
        self.frames += n
        self.speech_probability = float(self._ap.speech_probability)
        if self.config.auto_gain:
            self.gain_db = float(self._ap.gain_db)
        return out

    def stats(self) -> ProcessingStats:
        return ProcessingStats(
            frames=self.frames,
            far_frames=self.far_frames,
            far_missing=self.far_missing,
            far_dropped=self.far_dropped,
            speech_probability=self.speech_probability,
            gain_db=self.gain_db,
            cpu_seconds=self.cpu_seconds,
            echo_cancellation=self.echo_cancellation,
        )


def open_processor(
    config: ProcessingConfig, *, echo_cancellation: bool
) -> tuple[CaptureProcessor | None, str | None]:
    """A processor for ``config`` (None when every stage is off), or (None, a
    one-line notice) when the binding cannot be used — never an exception."""
    if not config.any:
        return None, None
    try:
        return CaptureProcessor(config, echo_cancellation=echo_cancellation), None
    except ProcessingUnavailable as exc:
        return None, f"no echo cancellation or noise suppression: {exc}"


def attach_processing(source: object, sink: object, config: ProcessingConfig) -> str | None:
    """Put a processing stage on ``source`` if it is a device (``device:`` capture),
    with echo cancellation fed by ``sink`` if that is a device too; returns a
    one-line notice when the binding cannot be used. Other sources are left
    untouched (bit-exact)."""
    from hello_tui.media.sinks import DeviceSink
    from hello_tui.media.sources import DeviceSource

    if not isinstance(source, DeviceSource) or source.processor is not None:
        return None
    speaker = sink if isinstance(sink, DeviceSink) else None
    processor, notice = open_processor(config, echo_cancellation=speaker is not None)
    if processor is None:
        return notice
    source.processor = processor
    if speaker is not None and processor.echo_cancellation:
        speaker.far_end = processor.feed_far
    return None
