"""E-model vectors: baresip test/mos.c (rtt there = our one-way latency), and bars."""

from __future__ import annotations

import pytest

from hello_tui.quality.mos import (
    BAR_THRESHOLDS,
    bars_from_mos,
    estimate,
    mos_from_r,
    r_factor,
)

# (latency ms, jitter ms, loss %) → (R, MOS), baresip test/mos.c, precision 0.001
BARESIP_VECTORS = [
    ((0.0, 0.0, 0), (92.95, 4.404)),
    ((500.0, 0.0, 0), (54.20, 2.796)),
    ((1000.0, 0.0, 0), (4.20, 0.990)),
    ((0.0, 100.0, 0), (84.20, 4.172)),
    ((0.0, 200.0, 0), (64.20, 3.315)),
    ((0.0, 0.0, 1), (90.45, 4.350)),
    ((0.0, 0.0, 10), (67.95, 3.499)),
    ((10.0, 10.0, 10), (67.20, 3.463)),
]


@pytest.mark.parametrize(("inputs", "expected"), BARESIP_VECTORS)
def test_baresip_vectors(inputs: tuple[float, float, float], expected: tuple[float, float]) -> None:
    r, mos = estimate(*inputs)
    assert r == pytest.approx(expected[0], abs=0.001)
    assert mos == pytest.approx(expected[1], abs=0.001)


def test_the_published_vector_to_three_decimals() -> None:
    r, mos = estimate(0, 0, 0)
    assert round(r, 2) == 92.95 and round(mos, 3) == 4.404


def test_delay_knee_is_continuous_at_160_ms() -> None:
    # effective latency 160 ms = latency 150 + 10: both branches give Id = 4
    assert r_factor(149.999999, 0, 0) == pytest.approx(r_factor(150, 0, 0), abs=1e-6)
    assert r_factor(150, 0, 0) == pytest.approx(89.2)
    assert r_factor(250, 0, 0) == pytest.approx(93.2 - 14.0)  # 260 → (260-120)/10


def test_r_is_clamped_and_mos_bounded() -> None:
    assert r_factor(5000, 500, 100) == 0.0
    assert mos_from_r(0) == 1.0 and mos_from_r(-5) == 1.0
    assert mos_from_r(100) == 4.5 and mos_from_r(120) == 4.5


def test_bar_thresholds_are_the_g107_satisfaction_bands() -> None:
    assert [round(m, 3) for m, _ in BAR_THRESHOLDS] == [4.339, 4.024, 3.597, 3.1]
    assert bars_from_mos(4.404) == 5
    assert bars_from_mos(mos_from_r(90)) == 5  # on the edge: the better band
    assert bars_from_mos(mos_from_r(89.9)) == 4
    assert bars_from_mos(mos_from_r(80)) == 4
    assert bars_from_mos(mos_from_r(75)) == 3
    assert bars_from_mos(mos_from_r(65)) == 2
    assert bars_from_mos(mos_from_r(59.9)) == 1
    assert bars_from_mos(0.99) == 1


def test_mos_falls_monotonically_with_each_impairment() -> None:
    for vary in range(3):
        values = []
        for step in range(0, 200, 10):
            args = [0.0, 0.0, 0.0]
            args[vary] = step / (20 if vary == 2 else 1)
            values.append(estimate(*args)[1])
        assert values == sorted(values, reverse=True)


# Edges of the E-model, as fixed numbers worked by hand from the module's formulas.
# (latency ms, jitter ms, loss %) -> R
R_EDGES = [
    ((149.5, 0.0, 0.0), 89.2125),  # Le 159.5, below the knee: 93.2 - 159.5/40
    ((150.0, 0.0, 0.0), 89.2),  # Le 160, on the knee: both branches give Id = 4
    ((150.5, 0.0, 0.0), 89.15),  # Le 160.5, past it: 93.2 - 40.5/10
    ((0.0, 0.0, -2.7), 99.7),  # RTCP loss can be negative (duplicates): R rises...
    ((0.0, 0.0, -10.0), 100.0),  # ...but is capped at 100
    ((1000.0, 0.0, 10.0), 0.0),  # floored at 0 (4.2 - 25 would be negative)
    ((1000.0, 0.0, 1.68), 0.0),  # 4.2 - 4.2: exactly 0
]


@pytest.mark.parametrize(("inputs", "r"), R_EDGES)
def test_r_factor_edges(inputs: tuple[float, float, float], r: float) -> None:
    assert r_factor(*inputs) == pytest.approx(r, abs=1e-9)


# R -> MOS around the cut-offs at 0 and 100 (the polynomial: 1 + 0.035 R + 7e-6 R (R-60) (100-R)).
MOS_EDGES = [
    (-0.5, 1.0),
    (0.0, 1.0),
    (0.5, 0.996779125),  # the published polynomial dips below 1 here, on purpose
    (99.5, 4.496255875),
    (100.0, 4.5),
    (100.5, 4.5),
    (90.0, 4.339),
    (80.0, 4.024),
    (70.0, 3.597),
    (60.0, 3.1),
]


@pytest.mark.parametrize(("r", "mos"), MOS_EDGES)
def test_mos_from_r_edges(r: float, mos: float) -> None:
    assert mos_from_r(r) == pytest.approx(mos, abs=1e-9)


BAR_EDGES = [
    (4.5, 5),
    (4.339, 5),
    (4.3389, 4),
    (4.024, 4),
    (4.0239, 3),
    (3.597, 3),
    (3.5969, 2),
    (3.1, 2),
    (3.0999, 1),
    (1.0, 1),
]


@pytest.mark.parametrize(("mos", "bars"), BAR_EDGES)
def test_bars_edges(mos: float, bars: int) -> None:
    assert bars_from_mos(mos) == bars
