"""Telemetry that resists differencing: the noise is Laplace with the promised
scale, whether a small bucket appears is itself noisy, and the audit's attack
(fake reports with a rare attribute, then the victim's) learns nothing useful.

Simulations drive the aggregator directly (many closed periods, each a
simulated UTC day) with seeded RNGs, so they are deterministic; the tolerances
are wide enough that the production RNG (``SystemRandom``) passes too.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from hello_tui.server.telemetry import TelemetryAggregator
from hello_tui.signaling import protocol as p
from tests.server.test_telemetry import DAY, NOON, Clock, report

RARE = ("calls", "network_type", "cellular")  # the attribute the attacker watches


def feedback() -> p.FeedbackReport:
    return p.FeedbackReport(rating="happy", client_version="0.1.0", os="linux",
                            hour="2026-11-26T04")  # fmt: skip


def crash(error: str) -> p.CrashReport:
    return p.CrashReport(client_version="0.1.0", os="linux", python="3.12.1",
                         hour="2026-11-26T04", error=error)  # fmt: skip


def close(agg: TelemetryAggregator, clock: Clock) -> None:
    clock.now += DAY
    agg.stats()  # the first read after the period's end closes it


@pytest.mark.parametrize("rng", [random.Random(2026), random.SystemRandom()], ids=["seeded", "os"])
def test_published_counts_carry_laplace_noise_of_scale_cap_over_epsilon(
    rng: random.Random,
) -> None:
    clock = Clock(NOON)
    agg = TelemetryAggregator(clock=clock, rng=rng)  # epsilon 1, 3 reports per network
    assert agg.scale == 3.0
    values: list[int] = []
    five = one = 0
    for _ in range(2000):
        for n in range(40):  # 40 networks, one report each
            agg.add_feedback(feedback(), f"10.{n}.0.0/24")
        for n in range(5):
            agg.add_crash(crash("FiveReporters"), f"10.{n}.0.0/24")
        agg.add_crash(crash("OneReporter"), "10.0.0.0/24")
        before = dict(agg.published["feedback"]["rating"]), dict(agg.published["crashes"]["error"])
        close(agg, clock)
        values.append(agg.published["feedback"]["rating"]["happy"] - before[0].get("happy", 0))
        errors = agg.published["crashes"]["error"]
        five += errors.get("FiveReporters", 0) > before[1].get("FiveReporters", 0)
        one += errors.get("OneReporter", 0) > before[1].get("OneReporter", 0)
    # Laplace(0, 3) rounded: mean 0, standard deviation 3·√2 ≈ 4.24, mean |x| = 3.
    assert abs(statistics.fmean(values) - 40) < 0.5
    assert 3.6 < statistics.pstdev(values) < 4.9
    assert 2.6 < statistics.fmean(abs(v - 40) for v in values) < 3.4
    assert len(set(values)) > 15  # really noisy, not a constant offset
    # Noisy thresholding: a bucket shows when reporters + Laplace(3) >= k = 5,
    # then with a value round(count + Laplace(3)) if that is above 0. With 5
    # reporters: 1/2 · (1 - e^(-1.5)/2) ≈ 44 %; with one:
    # e^(-4/3)/2 · (1 - e^(-1/6)/2) ≈ 7.6 %, never certain either way.
    assert 0.36 < five / 2000 < 0.52
    assert 0.04 < one / 2000 < 0.12


def test_values_are_fixed_at_close_so_reading_again_draws_no_new_noise() -> None:
    clock = Clock(NOON)
    agg = TelemetryAggregator(clock=clock)
    for n in range(30):
        agg.add_call(report(n), f"10.{n}.0.0/24")
    close(agg, clock)
    first = agg.stats()
    assert first["calls"]["outcome"]  # 30 reporters: published
    assert all(agg.stats() == first for _ in range(100))


def attack_world(victim: bool) -> TelemetryAggregator:
    """The audit's attack on a server with ordinary users, noise off (exact counts)."""
    clock = Clock(NOON)
    agg = TelemetryAggregator(clock=clock, epsilon=math.inf)
    for n in range(20):  # ordinary users (wifi)
        agg.add_call(report(n), f"198.51.{n}.0/24")
    for i in range(4):  # 4 fake reports, the rare attribute, 4 daily ids, 1 network
        agg.add_call(report(1000 + i, network_type="cellular"), "203.0.113.0/24")
    if victim:  # the one real user with that attribute, from another network
        agg.add_call(report(2000, network_type="cellular"), "192.0.2.0/24")
    assert len(agg._buckets[RARE]) == 1 + victim  # reporters: networks, not daily ids
    close(agg, clock)
    return agg


def test_differencing_with_fakes_from_one_network_finds_the_bucket_hidden() -> None:
    with_victim, without = attack_world(True), attack_world(False)
    for agg in (with_victim, without):
        assert agg.stats()["calls"]["network_type"] == {"wifi": 20}  # no "cellular" either way
    # The old rule (k counted in reports) would have shown 5 = 4 fakes + the victim.


def differencing_accuracy(
    epsilon: float, attacker_networks: int, periods: int
) -> tuple[float, float]:
    """How often an attacker who floods the rare bucket guesses right whether the
    victim (who reports in a random half of the periods) reported.

    The attacker sees each period's published value of the bucket (0 when
    hidden) and guesses "reported" when it is at least t, with the best t in
    hindsight: an upper bound on that strategy. Returns that accuracy and
    chance (always guessing the more frequent answer)."""
    clock = Clock(NOON)
    agg = TelemetryAggregator(clock=clock, epsilon=epsilon, rng=random.Random(11))
    coin = random.Random(12)
    seen: list[tuple[bool, int]] = []
    for period in range(periods):
        victim = coin.random() < 0.5
        for a in range(attacker_networks):
            for i in range(4 // attacker_networks):  # four fake reports in all
                fake = report(10_000 * period + 10 * a + i, network_type="cellular")
                agg.add_call(fake, f"203.0.{a}.0/24")
        if victim:
            agg.add_call(report(10_000 * period + 9999, network_type="cellular"), "192.0.2.0/24")
        before = agg.published["calls"]["network_type"]["cellular"]
        close(agg, clock)
        seen.append((victim, agg.published["calls"]["network_type"]["cellular"] - before))
    accuracy = max(
        sum((value >= t) == victim for victim, value in seen) / len(seen) for t in range(40)
    )
    reported = sum(victim for victim, _ in seen) / len(seen)
    return accuracy, max(reported, 1 - reported)


@pytest.mark.parametrize("attacker_networks", [1, 4])
def test_differencing_guesses_the_victim_near_chance(attacker_networks: int) -> None:
    # Without noise the attack works when the fakes come from four networks: the
    # bucket has 5 reporters exactly when the victim reported, and the test can fail.
    exact, chance = differencing_accuracy(math.inf, attacker_networks, 200)
    assert exact == (1.0 if attacker_networks == 4 else chance)  # one network: bucket hidden
    # With the default noise (epsilon 1, scale 3): one victim report moves the
    # bucket's count and its reporter count by 1 each, so no strategy can beat
    # e^(2/3) / (1 + e^(2/3)) ≈ 0.66; over 2000 periods it stays near 0.5-0.57.
    noisy, chance = differencing_accuracy(1.0, attacker_networks, 2000)
    assert abs(chance - 0.5) < 0.03
    assert noisy < 0.63
