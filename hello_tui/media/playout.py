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

With ``adaptive=True`` the target follows the network, as WebRTC's NetEQ
does: :class:`ArrivalJitter` keeps the delay of each arrival relative to the
sender's timeline (arrival time minus samples received so far) over the last
``jitter_window_s``; the target is the push/pull sawtooth plus ``jitter_k`` ×
the 95th percentile of those delays above their minimum plus ``margin_ms``,
clamped to ``min_target_ms`` .. ``max_target_ms``. It shrinks only through
the drift correction above (≤ 0.5 % of a block, inaudible), and grows at
once on an underrun: each adds ``underrun_boost_ms`` that halves every
``boost_half_life_s``, and the refill primes to the new target.
"""

from __future__ import annotations

import collections
import functools
import math
import threading
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

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
    # Adaptive target (off: a fixed ``target_ms``). ``target_ms`` is then where it starts.
    adaptive: bool = False
    min_target_ms: float = 20.0
    max_target_ms: float = 120.0
    margin_ms: float = 5.0
    jitter_k: float = 1.0
    jitter_window_s: float = 2.0
    underrun_boost_ms: float = 20.0
    boost_half_life_s: float = 20.0
    # Adaptive: a depth far above the target (a burst after a stall) also drains by
    # skipping whole quiet blocks (peak under ``quiet_peak``, ~-50 dBFS: a pause in speech).
    # Sound is never resampled faster than ``max_ratio`` (a faster rate was tried: 2 % moved
    # a 440 Hz tone by 6 Hz, audible on a tone and failing tests/media/test_devices.py).
    fast_excess_ms: float = 20.0
    quiet_peak: int = 100
    # Adaptive: above the target's band by ``accelerate_excess_ms`` (smoothed), splice up to
    # ``accelerate_ms`` out of each pull where the sound repeats best, cross-faded (as
    # NetEQ's "accelerate"): a burst drains at up to accelerate_ms per pull with no pitch
    # change. 0: off (drain by the drift correction and quiet blocks only).
    accelerate_ms: float = 0.0
    accelerate_min_ms: float = 2.0
    accelerate_excess_ms: float = 5.0
    # Adaptive: after an underrun, play again once this much is buffered (one 20 ms frame),
    # not the whole target (0: the target, as at the start). The depth then grows back
    # through the drift correction; a stall's burst usually refills it at once.
    underrun_refill_ms: float = 0.0


SPLICE_FADE = SAMPLE_RATE * 25 // 10000  # 2.5 ms: the cross-fade over an accelerate splice


def ms_to_samples(ms: float) -> int:
    return round(ms * SAMPLE_RATE / 1000)


@functools.lru_cache(maxsize=16)
def _stretch_grid(take: int, n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Where drift correction reads ``n`` samples out of ``take``, and the grid it reads
    from: the same few sizes at every pull (a sample or two either way), so kept
    (read-only) instead of two arrays built per 10 ms block in the speaker's callback."""
    src, grid = np.linspace(0.0, take - 1, n), np.arange(take)
    src.flags.writeable = grid.flags.writeable = False
    return src, grid


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

    @property
    def target(self) -> int:
        return self._target

    def set_target(self, target: int, tolerance: int) -> None:
        """Aim at ``target`` ± ``tolerance`` samples from the next update on."""
        self._target, self._tolerance = target, tolerance

    @property
    def tolerance(self) -> int:
        return self._tolerance

    def excess(self) -> float:
        """Smoothed depth above the dead band, in samples (0 inside or below it)."""
        return max(0.0, (self._avg or 0.0) - self._target - self._tolerance)

    def shift(self, samples: int) -> None:
        """The buffer lost ``samples`` outside a correction: move the average with it."""
        if self._avg is not None:
            self._avg -= samples

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


class ArrivalJitter:
    """How late arrivals come relative to the sender's timeline, over a sliding window.

    Each push of *n* samples at time *t* has a relative delay ``t - sent / rate``
    (``sent``: samples received before it). Steady arrivals keep it constant, so
    the spread (95th percentile minus minimum) is the jitter a buffer must absorb;
    a clock skew adds only skew × window to it. A sender that paused (the delay
    jumps by more than ``restart_s``) starts a fresh window.
    """

    def __init__(self, window_s: float, restart_s: float = 0.2) -> None:
        self.window_s = window_s
        self.restart_s = restart_s
        self._sent = 0
        self._delays: collections.deque[tuple[float, float]] = collections.deque()
        # The window's minimum, kept as a monotonic deque (delays increasing front to
        # back): O(1) per push where a scan of the ~100 entries took ~17 us a frame.
        self._mins: collections.deque[tuple[float, float]] = collections.deque()

    def add(self, now: float, n: int) -> None:
        delay = now - self._sent / SAMPLE_RATE
        self._sent += n
        delays, mins = self._delays, self._mins
        if mins and delay - mins[0][1] > self.restart_s:
            delays.clear()
            mins.clear()
        delays.append((now, delay))
        while mins and mins[-1][1] >= delay:
            mins.pop()
        mins.append((now, delay))
        cutoff = now - self.window_s
        while delays[0][0] < cutoff:
            delays.popleft()
        while mins[0][0] < cutoff:
            mins.popleft()

    @property
    def count(self) -> int:
        return len(self._delays)

    def spread_s(self, percentile: float = 95.0) -> float:
        """The ``percentile`` of the window's delays above their minimum (0 when empty)."""
        if not self._delays:
            return 0.0
        # numpy's default ("linear") percentile, in Python: 15 us where np.percentile
        # took 0.1-0.3 ms, and its np.unique imports numpy.ma (1.2 MiB) mid-call.
        d = sorted(delay for _, delay in self._delays)
        pos = (len(d) - 1) * percentile / 100
        lo = int(pos)
        hi = min(lo + 1, len(d) - 1)
        return d[lo] + (d[hi] - d[lo]) * (pos - lo) - d[0]


@dataclass(frozen=True, slots=True)
class PlayoutStats:
    depth_ms: float
    underruns: int
    overflow_drops: int
    samples_removed: int
    samples_inserted: int
    output_dbfs: float
    target_ms: float = 0.0
    jitter_ms: float = 0.0


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
        self.accelerated = 0  # of samples_removed: spliced out by _accelerate
        self._last_out: Samples = silence(0)  # level is computed on demand, not per callback
        # The adaptive target's inputs (see the module docstring).
        self.jitter = ArrivalJitter(self.config.jitter_window_s)
        self._last_push = 960
        self._last_pull = 480
        self._boost = 0.0  # samples added by underruns, decaying
        self._boost_at = 0.0
        self._last_now = 0.0
        self._pushes = 0
        self._jitter_ms = 0.0
        if self.config.adaptive:
            self._set_target(self._target)

    @property
    def target(self) -> int:
        """The depth aimed at now, in samples."""
        return self._target

    @property
    def depth(self) -> int:
        return self._end - self._start

    def _retarget(self, now: float) -> None:
        """Adaptive mode: recompute the target from the arrival jitter and the underrun boost."""
        cfg = self.config
        if self._boost:
            self._boost *= 0.5 ** ((now - self._boost_at) / cfg.boost_half_life_s)
            self._boost_at = now
            if self._boost < 1:
                self._boost = 0.0
        if self.jitter.count < 25 and not self._boost:  # under ~0.5 s of arrivals: keep the start
            return
        self._jitter_ms = self.jitter.spread_s() * 1000
        sawtooth = (self._last_push + self._last_pull) / 2
        want = sawtooth + ms_to_samples(cfg.margin_ms + cfg.jitter_k * self._jitter_ms)
        want += self._boost
        lo, hi = ms_to_samples(cfg.min_target_ms), ms_to_samples(cfg.max_target_ms)
        self._set_target(round(max(lo, min(hi, want))))

    def _prime_level(self) -> int:
        """Depth to refill to: the target, or in adaptive mode the sawtooth's top (so its
        mean, which the drift controller sees, starts at the target, not half a push below);
        after an underrun, at most ``underrun_refill_ms``."""
        if not self.config.adaptive:
            return self._target
        level = self._target + max(0, self._last_push - self._last_pull) // 2
        if self.underruns and self.config.underrun_refill_ms > 0:
            return min(level, ms_to_samples(self.config.underrun_refill_ms))
        return level

    def _skip_quiet(self, depth: int, n: int) -> int:
        """Far above the target, drop the next ``n`` samples if they and the ``n`` after them
        are quiet (a pause in speech: nothing to hear, no edge to click); the new depth."""
        if self.drift.excess() < ms_to_samples(self.config.fast_excess_ms) or depth < 3 * n:
            return depth
        ahead = self._buf[self._start : self._start + 2 * n]
        if int(np.max(np.abs(ahead.astype(np.int32)))) >= self.config.quiet_peak:
            return depth
        self._start += n
        self.samples_removed += n
        self.drift.shift(n)
        return depth - n

    def _accelerate(self, depth: int, n: int) -> Samples | None:
        """Far enough above the target, the next ``n`` samples with ``c`` more spliced out
        (``accelerate_min_ms`` <= c <= ``accelerate_ms``, never below the target's band): c is
        where the sound best repeats itself (a whole number of a tone's periods), and the
        splice is cross-faded over ``SPLICE_FADE`` samples, so no click, no pitch change."""
        cfg = self.config
        w = SPLICE_FADE
        if n < w or self.drift.excess() < ms_to_samples(cfg.accelerate_excess_ms):
            return None
        lo = ms_to_samples(cfg.accelerate_min_ms)
        room = depth - n - self._target - self.drift.tolerance  # what may go, this pull
        hi = min(ms_to_samples(cfg.accelerate_ms), room)
        if hi < lo:
            return None
        x = self._buf[self._start : self._start + n + hi].astype(np.float64)
        head = x[:w]
        windows = np.lib.stride_tricks.sliding_window_view(x[lo : hi + w], w)
        energy = np.einsum("ij,ij->i", windows, windows) * float(head @ head)
        score = (windows @ head) / np.sqrt(energy + 1.0)
        c = lo + int(np.argmax(score))
        ramp = np.arange(1, w + 1) / (w + 1)
        out = np.empty(n, dtype=np.int16)
        out[:w] = np.round(head * (1 - ramp) + x[c : c + w] * ramp)
        out[w:] = self._buf[self._start + c + w : self._start + c + n]
        self._start += n + c
        self.samples_removed += c
        self.accelerated += c
        return out

    def _grow(self) -> None:
        cfg = self.config
        step = ms_to_samples(cfg.underrun_boost_ms)
        self._boost += step
        self._boost_at = self._last_now  # decays on the arrivals' clock
        self._set_target(min(ms_to_samples(cfg.max_target_ms), self._target + step))

    def _set_target(self, target: int) -> None:
        self._target = target
        # The dead band narrows with the target: ±10 ms around 20 ms would allow starving.
        tolerance = min(ms_to_samples(self.config.tolerance_ms), target // 8)
        self.drift.set_target(target, tolerance)

    def push(self, samples: Samples, now: float | None = None) -> None:
        """Append received samples (arrived at ``now``, time.monotonic() by default);
        past ``max_ms``, drop the oldest back to the target."""
        with self._lock:
            n = len(samples)
            if self.config.adaptive:
                now = time.monotonic() if now is None else now
                self.jitter.add(now, n)
                self._last_now = now
                self._last_push = n
                self._pushes += 1
                if self._pushes % 5 == 0 or self._boost:  # a percentile per 100 ms is plenty
                    self._retarget(now)
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
            self._last_pull = n
            depth = self.depth
            if self._priming:
                if depth < self._prime_level():
                    self._last_out = silence(0)
                    return silence(n)
                self._priming = False
                self.drift.reset(depth)
            if self.config.adaptive:
                depth = self._skip_quiet(depth, n)
                if self.config.accelerate_ms > 0:
                    spliced = self._accelerate(depth, n)
                    if spliced is not None:
                        self.drift.update(depth, n)  # the depth seen (the splice is the correction)
                        self.drift.shift(depth - n - self.depth)  # the samples spliced out
                        self._last_out = spliced
                        return spliced
            adjust = self.drift.update(depth, n)
            take = n + adjust
            if take > depth:  # starving: play what is left, then silence, and refill
                out = silence(n)
                out[:depth] = self._buf[self._start : self._end][:n]
                self._start = self._end
                self.underruns += 1
                self._priming = True
                if self.config.adaptive:  # grow at once: the refill primes to the new target
                    self._grow()
            else:
                block = self._buf[self._start : self._start + take]
                self._start += take
                if adjust:
                    src, grid = _stretch_grid(take, n)
                    out = np.interp(src, grid, block).astype(np.int16)
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
            target_ms=self._target * 1000 / SAMPLE_RATE,
            jitter_ms=self._jitter_ms,
        )
