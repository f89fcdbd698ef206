"""The adaptive speaker latency policy: when the speaker reopens larger, and when it stays."""

from __future__ import annotations

from hello_tui.media.output_latency import LADDER, LatencyPolicy


def test_starts_at_portaudio_low_and_steps_up_after_five_underruns_in_ten_seconds() -> None:
    policy = LatencyPolicy()
    assert policy.latency == "low" == LADDER[0]
    assert policy.next_latency([1.0, 2.0, 3.0, 4.0], now=5.0) is None  # four: stays
    assert policy.next_latency([1.0, 2.0, 3.0, 4.0, 4.5], now=5.0) == 0.040
    assert policy.step == 1  # now at 40 ms: a middle step before the 80 ms cap
    assert policy.next_latency([5.1 + i / 10 for i in range(5)], now=6.0) == 0.080
    # At the top of the ladder it stays, however often the card runs dry.
    assert policy.next_latency([6.1 + i / 10 for i in range(50)], now=12.0) is None
    assert policy.latency == 0.080


def test_underruns_spread_over_more_than_the_window_do_not_count() -> None:
    policy = LatencyPolicy()
    times = [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]  # six, but never five within 10 s
    for i, t in enumerate(times):
        assert policy.next_latency(times[: i + 1], now=t + 0.1) is None
    assert policy.latency == "low"


def test_underruns_before_a_step_do_not_count_for_the_next_one() -> None:
    policy = LatencyPolicy(ladder=("low", 0.080, 0.160))
    burst = [1.0, 1.1, 1.2, 1.3, 1.4]
    assert policy.next_latency(burst, now=2.0) == 0.080
    assert policy.next_latency(burst, now=3.0) is None  # the same five: already acted on
    assert policy.next_latency([*burst, 3.1, 3.2, 3.3, 3.4, 3.5], now=4.0) == 0.160
