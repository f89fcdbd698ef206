"""Playout buffer and drift correction, on simulated clocks (no device, no sleeping)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest

from hello_tui.media.playout import DriftController, PlayoutBuffer, PlayoutConfig, ms_to_samples

PUSH = 960  # 20 ms frames from the network
PULL = 480  # 10 ms callbacks from the card


@dataclass
class Run:
    depth_ms: list[float]  # depth before each pull, ms
    minute_avg_ms: list[float]  # mean depth over each simulated minute
    underruns: int
    overflows: int
    removed: int
    inserted: int


def simulate(skew: float, seconds: float, config: PlayoutConfig, jitter_ms: float = 8.0) -> Run:
    """Depth arithmetic of PlayoutBuffer driven by DriftController, on two skewed clocks.

    The sender delivers 960 samples every 20 ms of its clock, each late by a
    random 0..jitter_ms; the card takes 480 samples every 10 ms of its own
    clock, which runs ``skew`` slower (positive: we receive faster than we play).
    """
    rng = random.Random(42)
    ctl = DriftController(config)
    target, limit = ms_to_samples(config.target_ms), ms_to_samples(config.max_ms)
    depth, priming = 0, True
    run = Run([], [], 0, 0, 0, 0)
    pull_period = 0.010 * (1 + skew)
    k = j = 0
    next_push = rng.uniform(0, jitter_ms) / 1000
    minute_sum, minute_n, minute_end = 0.0, 0, 60.0
    while True:
        next_pull = j * pull_period
        if min(next_push, next_pull) >= seconds:
            break
        if next_push <= next_pull:
            depth += PUSH
            if depth > limit:
                run.overflows += depth - target
                depth = target
                ctl.reset(depth)
            k += 1
            next_push = k * 0.020 + rng.uniform(0, jitter_ms) / 1000
            continue
        j += 1
        if next_pull >= minute_end:
            run.minute_avg_ms.append(minute_sum / max(1, minute_n))
            minute_sum, minute_n, minute_end = 0.0, 0, minute_end + 60
        if priming:
            if depth < target:
                continue
            priming = False
            ctl.reset(depth)
        run.depth_ms.append(depth / 48)
        minute_sum += depth / 48
        minute_n += 1
        adjust = ctl.update(depth, PULL)
        if PULL + adjust > depth:
            run.underruns += 1
            depth, priming = 0, True
            continue
        depth -= PULL + adjust
        run.removed += max(0, adjust)
        run.inserted += max(0, -adjust)
    return run


@pytest.mark.parametrize("skew", [+0.001, -0.001])
def test_drift_correction_keeps_latency_flat_for_an_hour(skew: float) -> None:
    config = PlayoutConfig()
    run = simulate(skew, 3600, config)
    settled = run.depth_ms[1000:]  # after the first 10 s
    assert run.underruns == 0
    assert run.overflows == 0
    assert min(settled) >= 10 and max(settled) <= 90  # 40 ms target, 20 ms sawtooth + jitter
    first, last = run.minute_avg_ms[1], run.minute_avg_ms[-1]
    assert abs(last - first) < 3  # flat: no creep across the hour
    for avg in run.minute_avg_ms[1:]:
        assert abs(avg - config.target_ms) <= config.tolerance_ms + 10
    corrected = run.removed if skew > 0 else run.inserted
    expected = abs(skew) * 48000 * 3600  # samples the skew adds up to in an hour
    assert corrected == pytest.approx(expected, rel=0.05)
    assert (run.inserted if skew > 0 else run.removed) < expected * 0.05


def test_without_correction_the_same_skew_breaks_the_buffer() -> None:
    # The control experiment: proves the hour-long test above measures the corrector.
    ahead = simulate(+0.001, 600, PlayoutConfig(max_ratio=0.0))
    behind = simulate(-0.001, 600, PlayoutConfig(max_ratio=0.0))
    assert ahead.overflows > 0  # grew to the 200 ms bound and had to drop
    assert behind.underruns > 0  # starved


def test_controller_dead_band_and_cap() -> None:
    config = PlayoutConfig()
    ctl = DriftController(config)
    target = ms_to_samples(config.target_ms)
    assert sum(ctl.update(target + 400, 480) for _ in range(500)) == 0  # inside ±10 ms
    ctl.reset(target + 4800)  # 100 ms over: far outside
    total = sum(ctl.update(target + 4800, 480) for _ in range(100))
    assert total == pytest.approx(100 * 480 * config.max_ratio, abs=1)  # capped at 0.5 %


def test_buffer_primes_then_plays_samples_unchanged() -> None:
    buf = PlayoutBuffer(PlayoutConfig(target_ms=40, tolerance_ms=100))  # no drift corrections
    ramp = (np.arange(960 * 12) % 30000).astype(np.int16)
    buf.push(ramp[:960])
    assert not buf.pull(480).any()  # 20 ms < 40 ms target: still priming, silence
    buf.push(ramp[960:1920])
    out = []
    for i in range(16):
        if i % 2 == 0:
            buf.push(ramp[1920 + i * 480 : 1920 + i * 480 + 960])
        out.append(buf.pull(480))
    assert np.array_equal(np.concatenate(out), ramp[: 480 * 16])
    assert buf.underruns == 0
    assert buf.stats().depth_ms == pytest.approx(40)


def test_buffer_underrun_plays_silence_counts_and_reprimes() -> None:
    buf = PlayoutBuffer(PlayoutConfig(target_ms=40))
    buf.push(np.full(1920, 1000, dtype=np.int16))
    assert buf.pull(480).all() and buf.pull(480).all() and buf.pull(480).all()
    last = buf.pull(480)
    assert last.all()
    starved = buf.pull(480)
    assert not starved.any() and buf.underruns == 1
    buf.push(np.full(960, 1000, dtype=np.int16))
    assert not buf.pull(480).any()  # re-priming: waits for the target again
    assert buf.stats().underruns == 1


def test_buffer_is_bounded_under_a_burst() -> None:
    config = PlayoutConfig(target_ms=40, max_ms=200)
    buf = PlayoutBuffer(config)
    for _ in range(100):  # 2 s arrives at once (a stalled network releasing)
        buf.push(np.ones(960, dtype=np.int16))
        assert buf.stats().depth_ms <= 200
    assert buf.stats().overflow_drops > 0
    assert buf.stats().depth_ms <= 200


def test_stretching_is_smooth_on_real_samples() -> None:
    # 60 s at +0.3 % skew with a 440 Hz tone: corrections happen, and no sample
    # jumps more than the tone's own slope allows (no clicks from drop/insert).
    buf = PlayoutBuffer(PlayoutConfig())
    amp = 10000
    n = np.arange(48000 * 61)
    tone = (np.sin(2 * np.pi * 440 * n / 48000) * amp).astype(np.int16)
    played = []
    pos = 0
    t_push, t_pull, period = 0.0, 0.0, 0.010 * 1.003
    while t_pull < 60:
        if t_push <= t_pull:
            buf.push(tone[pos : pos + 960])
            pos += 960
            t_push += 0.020
        else:
            played.append(buf.pull(480))
            t_pull += period
    out = np.concatenate(played).astype(np.int32)
    assert buf.samples_removed > 0.002 * 48000 * 50  # it did correct
    assert buf.underruns == 0 and buf.overflow_drops == 0
    started = out[np.argmax(out != 0) :]
    max_step = 2 * np.pi * 440 / 48000 * amp * 1.05 + 2
    assert np.max(np.abs(np.diff(started))) <= max_step
