"""The playout buffer's adaptive target, on synthetic arrival times (no device, no sleeping)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hello_tui.media.playout import ArrivalJitter, PlayoutBuffer, PlayoutConfig, ms_to_samples

ADAPTIVE = PlayoutConfig(adaptive=True)  # starts at 40 ms, floor 20 ms
AMP = 10000
MAX_STEP = 2 * np.pi * 440 / 48000 * AMP * 1.05 + 2  # a 440 Hz tone's own slope, and a bit


def tone(n: int) -> np.ndarray:
    """A 440 Hz tone that is never 0 (an offset), so silence is countable."""
    return (np.sin(2 * np.pi * 440 * np.arange(n) / 48000) * AMP + 12000).astype(np.int16)


def drive(
    buf: PlayoutBuffer,
    seconds: float,
    late_ms: Callable[[int], float] = lambda k: 0.0,
    skip: frozenset[int] = frozenset(),
    on_pull: Callable[[int], None] | None = None,
    preload: np.ndarray | None = None,
    frame: int = 960,
) -> np.ndarray:
    """Push 20 ms (``frame``) of a tone per frame k at k·20 ms + late_ms(k) (arrival order
    kept; frames in ``skip`` never come), pull 10 ms every 10 ms of the card's clock;
    return what played."""
    src = tone(int(48000 * (seconds + 1)))
    arrivals: list[float] = []
    period = frame / 48000
    for k in range(round(seconds / period)):
        at = k * period + late_ms(k) / 1000
        arrivals.append(max(at, arrivals[-1]) if arrivals else at)
    played, k, j = [], 0, 0
    if preload is not None:  # a burst already waiting when playout starts
        buf.push(preload, now=0.0)
    while True:
        t_pull = 0.005 + j * 0.010
        if t_pull >= seconds:
            break
        if k < len(arrivals) and arrivals[k] <= t_pull:
            if k not in skip:
                buf.push(src[k * frame : (k + 1) * frame], now=arrivals[k])
            k += 1
            continue
        played.append(buf.pull(480))
        if on_pull:
            on_pull(j)
        j += 1
    return np.concatenate(played)


def assert_smooth(out: np.ndarray) -> None:
    """No click: between silences, no step larger than the tone's own slope."""
    x = out.astype(np.int32)
    steps = np.abs(np.diff(x))
    both_sound = (x[:-1] != 0) & (x[1:] != 0)
    assert np.max(steps[both_sound]) <= MAX_STEP


def test_arrival_jitter_is_the_spread_of_relative_delays() -> None:
    steady = ArrivalJitter(window_s=2.0)
    for k in range(200):
        steady.add(1.0 + k * 0.020, 960)  # a constant offset is not jitter
    assert steady.spread_s() < 1e-9
    rng = random.Random(3)
    jittery = ArrivalJitter(window_s=2.0)
    for k in range(200):
        jittery.add(k * 0.020 + rng.uniform(0, 0.030), 960)
    assert 0.020 < jittery.spread_s() <= 0.030
    paused = ArrivalJitter(window_s=2.0)
    for k in range(100):
        paused.add(k * 0.020 + rng.uniform(0, 0.030), 960)
    for k in range(100, 200):  # the sender paused 1 s: a fresh start, not 1 s of jitter
        paused.add(1.0 + k * 0.020, 960)
    assert paused.spread_s() < 1e-9


def test_arrival_jitter_spread_is_numpys_linear_percentile() -> None:
    """spread_s computes np.percentile's default in Python (numpy's pulls in numpy.ma)."""
    rng = random.Random(5)
    for n in (1, 2, 3, 10, 57):
        jitter = ArrivalJitter(window_s=10.0, restart_s=10.0)
        for k in range(n):
            jitter.add(k * 0.020 + rng.uniform(0, 0.050), 960)
        d = np.array([delay for _, delay in jitter._delays])
        for p in (0.0, 50.0, 95.0, 100.0):
            want = float(np.percentile(d, p) - d.min())
            assert abs(jitter.spread_s(p) - want) < 1e-12, (n, p)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.floats(0.0, 0.4), st.sampled_from((480, 960))), min_size=1, max_size=300)
)
def test_arrival_jitter_window_minimum_matches_a_scan(pushes: list[tuple[float, int]]) -> None:
    """The monotonic minimum keeps exactly the window a scan of every entry would: the
    same restarts after a pause, the same entries, the same minimum after each push."""
    jitter = ArrivalJitter(window_s=0.5, restart_s=0.2)
    window: list[tuple[float, float]] = []
    now, sent = 0.0, 0
    for gap, n in pushes:
        now += gap
        delay = now - sent / 48000
        sent += n
        if window and delay - min(d for _, d in window) > 0.2:
            window.clear()
        window.append((now, delay))
        window = [(t, d) for t, d in window if t >= now - 0.5]
        jitter.add(now, n)
        assert list(jitter._delays) == window
        assert jitter._mins[0][1] == min(d for _, d in window)


def test_steady_arrivals_shrink_the_target_to_the_floor_without_clicks() -> None:
    buf = PlayoutBuffer(ADAPTIVE)
    assert buf.target == ms_to_samples(40)
    depths: list[int] = []
    out = drive(buf, 20.0, on_pull=lambda j: depths.append(buf.depth))
    assert buf.target == ms_to_samples(ADAPTIVE.min_target_ms)
    assert buf.underruns == 0 and buf.overflow_drops == 0
    assert buf.samples_removed > 0  # it got there by squeezing, not by dropping
    # The last 5 s sit near the floor (mean depth, after each pull), not near the old 40 ms.
    assert np.mean(depths[-500:]) < ms_to_samples(20)
    # Every pushed sample was played, squeezed out, or is still buffered: nothing lost.
    pushed = int(20.0 / 0.020) * 960
    audible = int(np.count_nonzero(out))
    assert abs(audible + buf.samples_removed - buf.samples_inserted + buf.depth - pushed) <= 4
    assert_smooth(out)


def test_10_ms_arrivals_take_5_ms_off_the_sawtooth_once_the_floor_allows_it() -> None:
    """The target's sawtooth term is (push + pull) / 2: 15 ms for 20 ms frames, 10 ms for
    10 ms packets; with the margin (5 ms) steady 20 ms frames want 20 ms, 10 ms packets
    15: under the 20 ms floor (the default) both sit at 20, under a 10 ms floor (the
    A/B knob) 10 ms packets settle 5 ms lower, with nothing lost and no click."""
    floor_10 = dataclasses.replace(ADAPTIVE, min_target_ms=10.0)
    targets = {}
    for name, config, frame in (("20/20", ADAPTIVE, 960), ("10/20", ADAPTIVE, 480),
                                ("20/10", floor_10, 960), ("10/10", floor_10, 480)):  # fmt: skip
        buf = PlayoutBuffer(config)
        out = drive(buf, 20.0, frame=frame)
        assert buf.underruns == 0 and buf.overflow_drops == 0, name
        audible = int(np.count_nonzero(out))
        pushed = 20 * 48000
        assert abs(audible + buf.samples_removed - buf.samples_inserted + buf.depth - pushed) <= 4
        assert_smooth(out)
        targets[name] = buf.target
    assert targets == {
        "20/20": ms_to_samples(20), "10/20": ms_to_samples(20),
        "20/10": ms_to_samples(20), "10/10": ms_to_samples(15),
    }  # fmt: skip


def test_jittery_arrivals_grow_the_target() -> None:
    rng = random.Random(7)
    buf = PlayoutBuffer(ADAPTIVE)
    out = drive(buf, 20.0, late_ms=lambda k: rng.uniform(0, 40))
    assert buf.target > ms_to_samples(50)  # sawtooth 15 + margin 5 + ~38 ms of jitter
    assert buf.target <= ms_to_samples(ADAPTIVE.max_target_ms)
    assert buf.stats().jitter_ms > 30
    assert_smooth(out)


def test_an_underrun_grows_the_target_at_once() -> None:
    buf = PlayoutBuffer(ADAPTIVE)
    seen: dict[int, int] = {}

    def watch(j: int) -> None:
        if buf.underruns and not seen:
            seen[j] = buf.target

    drive(buf, 12.0)
    floor = buf.target
    assert floor == ms_to_samples(ADAPTIVE.min_target_ms)
    # The same call, with 3 frames (60 ms) missing at 10 s: the buffer starves there.
    buf = PlayoutBuffer(ADAPTIVE)
    drive(buf, 12.0, skip=frozenset({500, 501, 502}), on_pull=watch)
    assert buf.underruns == 1
    (grown,) = seen.values()
    assert grown >= floor + ms_to_samples(ADAPTIVE.underrun_boost_ms)  # at the same pull


def test_fixed_target_is_unchanged_by_default() -> None:
    buf = PlayoutBuffer(PlayoutConfig())
    drive(buf, 5.0)
    assert buf.target == ms_to_samples(40)


def test_a_burst_of_sound_drains_only_at_the_drift_rate() -> None:
    # 100 ms of tone too many (a stalled network releasing): sound is never squeezed faster
    # than the drift correction's 0.5 % (a pitch change no one hears), so no click either.
    buf = PlayoutBuffer(ADAPTIVE)
    out = drive(buf, 8.0, preload=tone(4800))
    assert buf.samples_removed <= 0.005 * len(out) + 480
    assert buf.samples_removed > 0.004 * 6 * 48000  # it is draining, at about that rate
    assert buf.underruns == 0 and buf.overflow_drops == 0
    assert_smooth(out)


def test_a_pause_far_above_the_target_is_skipped() -> None:
    # 100 ms of silence too many: dropped in whole blocks down to ~20 ms above the target
    # within the first second (resampling could remove 5 ms), nothing audible lost.
    buf = PlayoutBuffer(ADAPTIVE)
    depths: list[int] = []
    out = drive(buf, 1.0, preload=np.zeros(4800, np.int16), on_pull=depths.append)
    assert buf.samples_removed >= ms_to_samples(40)
    assert buf.underruns == 0
    pushed = int(1.0 / 0.020) * 960
    audible = int(np.count_nonzero(out))
    # The tone is all there: what is not played is silence skipped, squeezing, or buffered.
    assert audible + buf.depth + buf.samples_removed - buf.samples_inserted - 4800 <= pushed
    assert pushed - audible - buf.depth <= ms_to_samples(60)
    assert_smooth(out[np.argmax(out != 0) + 480 :])  # past the signal's own silence→tone edge


ACCELERATE = dataclasses.replace(ADAPTIVE, accelerate_ms=5.0)


def up_crossings(x: np.ndarray) -> np.ndarray:
    """Sample indices where the tone (its offset removed) crosses zero upward."""
    y = x.astype(np.int32) - 12000
    return np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))


def test_a_burst_of_sound_is_spliced_out_in_whole_periods() -> None:
    # 100 ms of tone too many: accelerate splices it out within ~1 s (at most 5 ms per
    # 10 ms pull), each splice a whole number of the tone's periods, cross-faded: the
    # period between zero crossings stays the tone's (a cut anywhere else would make
    # one period up to half a period short), and no step exceeds the tone's slope.
    buf = PlayoutBuffer(ACCELERATE)
    depths: list[int] = []
    out = drive(buf, 3.0, preload=tone(4800), on_pull=lambda j: depths.append(buf.depth))
    assert buf.underruns == 0 and buf.overflow_drops == 0
    assert buf.accelerated >= ms_to_samples(60)
    assert max(depths[100:]) < ms_to_samples(40)  # drained within the first second
    assert min(depths) >= 0 and buf.target == ms_to_samples(ACCELERATE.min_target_ms)
    first = np.argmax(out != 0)
    periods = np.diff(up_crossings(out[first:]))
    assert np.all(np.abs(periods - 48000 / 440) < 3)
    assert_smooth(out)
    pushed = int(3.0 / 0.020) * 960 + 4800
    audible = int(np.count_nonzero(out))
    assert abs(audible + buf.samples_removed - buf.samples_inserted + buf.depth - pushed) <= 4


def test_accelerate_leaves_a_buffer_at_its_target_alone() -> None:
    # Steady arrivals from the start: the excess is only the 40 -> 20 ms start, spliced out
    # once; then nothing more (the drift correction keeps the band).
    buf = PlayoutBuffer(ACCELERATE)
    spliced: list[int] = []
    out = drive(buf, 10.0, on_pull=lambda j: spliced.append(buf.accelerated))
    assert 0 < spliced[300] == spliced[-1]  # after 3 s, never again
    assert buf.underruns == 0
    assert_smooth(out)


def test_after_an_underrun_playout_resumes_with_the_first_frame_back() -> None:
    # 60 ms missing at 10 s: with a refill level of one frame, the buffer plays again as
    # soon as a frame is back; refilling the whole target leaves more silence.
    def run(refill_ms: float) -> tuple[int, int]:
        cfg = dataclasses.replace(ADAPTIVE, underrun_refill_ms=refill_ms)
        buf = PlayoutBuffer(cfg)
        out = drive(buf, 12.0, skip=frozenset({500, 501, 502}))
        assert buf.underruns == 1
        assert_smooth(out)
        return int(np.count_nonzero(out[480 * 100 :] == 0)), buf.target

    quick, _ = run(20.0)
    slow, _ = run(0.0)
    assert quick <= ms_to_samples(60 + 10)  # the missing frames, and the pull they ended in
    assert slow >= quick + ms_to_samples(20)
