"""The device sink's playout buffer and its clock-drift correction.

The sender's clock (its sound card, or a monotonic timer) and our sound card's
clock never agree exactly: at 0.1 % skew a naive FIFO gains or loses 3.6 s
of latency per hour. :class:`DriftController` keeps the buffer near a target
depth instead:

* it smooths the depth seen at each pull with an exponential moving average
  (time constant ``smoothing_s``, so network jitter and the push/pull
  sawtooth average out);
* inside a dead band (``target ± tolerance``) it does nothing;
* beyond it, it asks for a correction proportional to the excess — enough to
  absorb it in ``settle_s`` — capped at ``max_ratio`` of the block (0.5 %),
  accumulated fractionally so 0.01 % skews are corrected as well as 0.5 %.

:class:`PlayoutBuffer` applies a correction of *k* samples by linearly
resampling ``n + k`` buffered samples into the ``n`` the card asked for:
the change is spread over the whole block (a pitch change of at most 0.5 %,
about 9 cents, inaudible on speech) instead of a click from dropping or
duplicating one sample. Under a constant skew *s* the depth settles at about
``target + tolerance + s × settle_s``. A hard bound (``max_ms``) and an
underrun rule (play silence, then refill to target before playing again)
handle what drift correction must not: bursts and starvation.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from hello_tui.media.audio_format import SAMPLE_RATE, Samples, silence
from hello_tui.media.levels import rms_dbfs


@dataclass(frozen=True, slots=True)
class PlayoutConfig:
    """Tuning of the playout buffer (milliseconds / seconds / ratios)."""

    target_ms: float = 40.0
    tolerance_ms: float = 10.0
    max_ms: float = 200.0
    smoothing_s: float = 1.0
    settle_s: float = 2.0
    max_ratio: float = 0.005


def ms_to_samples(ms: float) -> int:
    return round(ms * SAMPLE_RATE / 1000)


class DriftController:
    """Pure decision: how many samples to remove (> 0) or insert (< 0) at each pull."""

    def __init__(self, config: PlayoutConfig) -> None:
        self.config = config
        self._target = ms_to_samples(config.target_ms)
        self._tolerance = ms_to_samples(config.tolerance_ms)
        self._avg: float | None = None
        self._carry = 0.0

    @property
    def average_depth(self) -> float:
        """Smoothed depth in samples (0 before the first update)."""
        return self._avg or 0.0

    def reset(self, depth: int) -> None:
        """Start afresh (after an underrun refill or an overflow trim)."""
        self._avg = float(depth)
        self._carry = 0.0

    def update(self, depth: int, n: int) -> int:
        """Record ``depth`` (samples buffered) before a pull of ``n``; return the correction."""
        cfg = self.config
        if self._avg is None:
            self._avg = float(depth)
        else:
            alpha = min(1.0, n / (SAMPLE_RATE * cfg.smoothing_s))
            self._avg += alpha * (depth - self._avg)
        error = self._avg - self._target
        want = 0.0
        if abs(error) > self._tolerance:
            excess = error - math.copysign(self._tolerance, error)
            limit = cfg.max_ratio * n
            want = max(-limit, min(limit, excess * n / (SAMPLE_RATE * cfg.settle_s)))
        self._carry += want
        adjust = int(self._carry)  # toward zero; the fraction carries to the next pull
        self._carry -= adjust
        return adjust


@dataclass(frozen=True, slots=True)
class PlayoutStats:
    depth_ms: float
    underruns: int
    overflow_drops: int
    samples_removed: int
    samples_inserted: int
    output_dbfs: float


class PlayoutBuffer:
    """Bounded, thread-safe sample FIFO between the event loop and the card's callback."""

    def __init__(self, config: PlayoutConfig | None = None) -> None:
        self.config = config or PlayoutConfig()
        self.drift = DriftController(self.config)
        self._target = ms_to_samples(self.config.target_ms)
        self._max = ms_to_samples(self.config.max_ms)
        self._buf = np.zeros(self._max * 2 + SAMPLE_RATE // 10, dtype=np.int16)
        self._start = 0
        self._end = 0
        self._priming = True  # silent until the buffer first reaches the target
        self._lock = threading.Lock()
        self.underruns = 0
        self.overflow_drops = 0
        self.samples_removed = 0
        self.samples_inserted = 0
        self._last_out: Samples = silence(0)  # level is computed on demand, not per callback

    @property
    def depth(self) -> int:
        return self._end - self._start

    def push(self, samples: Samples) -> None:
        """Append received samples; past ``max_ms``, drop the oldest back to the target."""
        with self._lock:
            n = len(samples)
            if self._end + n > len(self._buf):
                depth = self.depth
                self._buf[:depth] = self._buf[self._start : self._end]
                self._start, self._end = 0, depth
            if n > len(self._buf) - self._end:  # larger than the whole buffer: keep the newest
                samples = samples[-(len(self._buf) - self._end) :]
                n = len(samples)
            self._buf[self._end : self._end + n] = samples
            self._end += n
            if self.depth > self._max:
                excess = self.depth - self._target
                self._start += excess
                self.overflow_drops += excess
                self.drift.reset(self.depth)

    def pull(self, n: int) -> Samples:
        """The next ``n`` samples for the card: drift-corrected, or silence on underrun."""
        with self._lock:
            depth = self.depth
            if self._priming:
                if depth < self._target:
                    self._last_out = silence(0)
                    return silence(n)
                self._priming = False
                self.drift.reset(depth)
            adjust = self.drift.update(depth, n)
            take = n + adjust
            if take > depth:  # starving: play what is left, then silence, and refill
                out = silence(n)
                out[:depth] = self._buf[self._start : self._end][:n]
                self._start = self._end
                self.underruns += 1
                self._priming = True
            else:
                block = self._buf[self._start : self._start + take]
                self._start += take
                if adjust:
                    src = np.linspace(0.0, take - 1, n)
                    out = np.interp(src, np.arange(take), block).astype(np.int16)
                    if adjust > 0:
                        self.samples_removed += adjust
                    else:
                        self.samples_inserted -= adjust
                else:
                    out = block.copy()
        self._last_out = out
        return out

    @property
    def output_dbfs(self) -> float:
        """RMS level of the block the card played last (floor while silent/priming)."""
        return rms_dbfs(self._last_out)

    def stats(self) -> PlayoutStats:
        return PlayoutStats(
            depth_ms=self.depth * 1000 / SAMPLE_RATE,
            underruns=self.underruns,
            overflow_drops=self.overflow_drops,
            samples_removed=self.samples_removed,
            samples_inserted=self.samples_inserted,
            output_dbfs=self.output_dbfs,
        )
