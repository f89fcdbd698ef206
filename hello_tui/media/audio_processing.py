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

The binding processes 10 ms pairs (near, far) in one call, so the far end
is kept in a ring (``FAR_RING`` samples) and each near 10 ms is paired with
the far samples that the speaker played at the moment it was captured, by
the devices' own clocks: the output callback gives each block's DAC time
(PortAudio's ``outputBufferDacTime``), the input callback each block's ADC
time. Both map a stream's sample count to time (a running median over the
last callbacks, so one late callback does not move it); their difference is
the pairing lag, held constant while it stays within ``REALIGN_S`` of the
measured one (a contiguous reference, which the canceller needs: ALSA's
pulse plugin reports capture times that wander ~10 ms with nothing wrong)
and jumped when it does not, or as soon as fresh times are in after a
callback reports an underrun/overflow (the card played silence we never
gave it, or lost captured samples: the echo moved against the reference).
The reference is taken ``LEAD_S`` ahead, so the delay the
canceller must find is the acoustic path plus that lead, never negative when
the devices' reported latencies are a little off. Pairing by arrival order
instead (a queue) made the delay the canceller sees jump by 10-400 ms
whenever one callback was late, and AEC3 then never converged (docs/media.md).
Without times (tests feeding synthetic scenes) near sample *k* pairs with
far sample *k*.

Only ``device:`` capture is processed (files, tones and silence stay
bit-exact), and echo cancellation only when the output is a device too.
Without the binding, :func:`open_processor` returns a one-line notice and no
processor: the call goes on unprocessed.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from collections.abc import Callable
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
FAR_RING = 1 << 17  # far samples kept for pairing (2.7 s): more than any stall we recover from
CLOCK_WINDOW = 5  # callbacks in each stream's running median of its clock offset
RESYNC_AFTER = 3  # callbacks of both streams after an xrun before the pairing follows it
REALIGN_S = 0.020  # the pairing lag moves only when the measured one is this far from it
LEAD_S = 0.010  # the reference is taken this far ahead of the capture time (see above)


class ProcessingUnavailable(RuntimeError):
    """The processing binding cannot be loaded (not installed, or its library fails)."""


@dataclass(frozen=True, slots=True)
class ProcessingConfig:
    """Which stages run on ``device:`` capture (``[audio]`` aec / noise_suppression / auto_gain).

    The high-pass filter always runs with any other stage (AEC3 needs it)."""

    aec: bool = True
    noise_suppression: bool = True
    auto_gain: bool = True
    ns_level: int = 1  # 0-3: at most 6, 12, 18, 21 dB of noise removed (bench/aec.py --sweep)

    @property
    def any(self) -> bool:
        return self.aec or self.noise_suppression or self.auto_gain


DEFAULT = ProcessingConfig()
OFF = ProcessingConfig(aec=False, noise_suppression=False, auto_gain=False)


@dataclass(frozen=True, slots=True)
class ProcessingStats:
    frames: int  # near-end 10 ms frames processed
    far_frames: int  # far-end 10 ms frames received from the playout
    far_missing: int  # near frames paired with (partly) no reference: nothing played then
    realignments: int  # jumps of the pairing lag (underruns, stalls)
    pairing_ms: float  # the pairing lag: far stream position minus near position, in ms
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
                ns_level=config.ns_level,
            )
        except Exception as exc:  # a binding that loads but refuses the settings
            raise ProcessingUnavailable(f"audio processing cannot start ({exc})") from None
        self._ring = np.zeros(FAR_RING, dtype=np.int16)
        self._far_count = 0  # far samples received so far (the ring's write position)
        self._near_count = 0  # near samples received so far
        self._far_clock: collections.deque[float] = collections.deque(maxlen=CLOCK_WINDOW)
        self._near_clock: collections.deque[float] = collections.deque(maxlen=CLOCK_WINDOW)
        self._lag: int | None = None  # far index paired with near index k is k + lag
        self._resync = False  # an xrun: realign as soon as both clocks have fresh times
        self._near_partial = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()
        self._silence = np.zeros(BLOCK, dtype=np.int16)
        self.frames = self.far_frames = self.far_missing = self.realignments = 0
        self.cpu_seconds = 0.0
        self.speech_probability = 0.0
        self.gain_db = 0.0
        # Diagnostics (bench/aec.py): called with each (near, far) 10 ms pair the binding gets.
        self.tap: Callable[[Samples, Samples], None] | None = None

    def feed_far(
        self, samples: Samples, play_time: float | None = None, underflow: bool = False
    ) -> None:
        """What the speaker plays (any length; copied); ``play_time``: when its first
        sample reaches the speaker, on the capture's clock (PortAudio stream time);
        ``underflow``: the card ran dry before this block (PortAudio's status flag)."""
        if not self.echo_cancellation:
            return
        with self._lock:
            if underflow:
                self._far_clock.clear()
                self._resync = True
            if play_time is not None:
                self._far_clock.append(play_time - self._far_count / SAMPLE_RATE)
            samples = samples[-FAR_RING:]
            n = len(samples)
            at = self._far_count % FAR_RING
            first = min(n, FAR_RING - at)
            self._ring[at : at + first] = samples[:first]
            self._ring[: n - first] = samples[first:]
            self._far_count += n
            self.far_frames = self._far_count // BLOCK

    def _align(self) -> int:
        """The pairing lag in samples, moved only when the clocks say it is off by more
        than ``REALIGN_S`` (0 without times)."""
        with self._lock:
            far = statistics.median_low(self._far_clock) if self._far_clock else None
            fresh = min(len(self._far_clock), len(self._near_clock)) >= RESYNC_AFTER
            resync = self._resync and fresh
            self._resync = self._resync and not fresh
        near = statistics.median_low(self._near_clock) if self._near_clock else None
        measured = 0 if far is None or near is None else round((near - far + LEAD_S) * SAMPLE_RATE)
        if self._lag is None:
            self._lag = measured
        elif abs(measured - self._lag) > (BLOCK // 10 if resync else REALIGN_S * SAMPLE_RATE):
            self._lag = measured
            self.realignments += 1
        return self._lag

    def _far_at(self, index: int) -> Samples:
        """Far samples ``index .. index + BLOCK`` (zeros where the ring has none)."""
        with self._lock:
            lo = max(index, self._far_count - FAR_RING, 0)
            hi = min(index + BLOCK, self._far_count)
            if lo == index and hi == index + BLOCK:
                at = index % FAR_RING
                if at + BLOCK <= FAR_RING:
                    return self._ring[at : at + BLOCK].copy()
            out = np.zeros(BLOCK, dtype=np.int16)
            if hi > lo:  # rare: the ring's wrap, or the edge of what was played
                out[lo - index : hi - index] = self._ring[np.arange(lo, hi) % FAR_RING]
        self.far_missing += 1 if hi - lo < BLOCK else 0
        return out

    def process(
        self, near: Samples, capture_time: float | None = None, overflow: bool = False
    ) -> Samples:
        """Process captured samples (any length; ``capture_time``: when the first one
        was captured, PortAudio stream time; ``overflow``: samples were lost before
        these); returns the processed ones, in whole 10 ms frames (a remainder waits
        for the next call)."""
        if overflow:
            with self._lock:
                self._near_clock.clear()
                self._resync = True
        if capture_time is not None:
            self._near_clock.append(capture_time - self._near_count / SAMPLE_RATE)
        first = self._near_count - len(self._near_partial)  # near index of pending[0]
        self._near_count += len(near)
        pending = np.concatenate((self._near_partial, near)) if len(self._near_partial) else near
        n = len(pending) // BLOCK
        self._near_partial = pending[n * BLOCK :].copy()
        if n == 0:
            return self._silence[:0]
        out = np.empty(n * BLOCK, dtype=np.int16)
        lag = self._align() if self.echo_cancellation else 0
        tap = self.tap
        t0 = time.thread_time()
        for i in range(n):
            chunk = pending[i * BLOCK : (i + 1) * BLOCK]
            far = self._far_at(first + i * BLOCK + lag) if self.echo_cancellation else None
            out[i * BLOCK : (i + 1) * BLOCK] = self._ap.process(chunk, far)
            if tap is not None:
                tap(chunk, self._silence if far is None else far)
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
            realignments=self.realignments,
            pairing_ms=(self._lag or 0) * 1000 / SAMPLE_RATE,
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
