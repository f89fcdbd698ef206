"""MOS estimate from the simplified ITU-T G.107 E-model, and a 1–5 bar rating.

The formulas are the "simplified E-model" used by many VoIP monitors, as in
baresip ``src/mos.c`` (``mos_calculate``, which cites Perl's Algorithm::MOS)
and checked against the vectors of baresip ``test/mos.c``:

* effective latency ``Le = latency + 2·jitter + 10`` (ms); we pass the
  one-way latency (RTT / 2), the form the issue asks for (baresip feeds its
  RTT argument in directly, so its vectors are read here as one-way latency);
* ``R = 93.2 − Le/40`` if ``Le < 160``, else ``R = 93.2 − (Le − 120)/10``;
* ``R −= 2.5 × loss_percent``; R clamped to [0, 100];
* ``MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R)`` (G.107 Annex B, eq. B-4).

The MOS polynomial dips just below 1 for R below about 6.5 (R = 4.2 → 0.990,
one of baresip's vectors); it is kept as published, not clamped.

Bars use G.107/G.109's user-satisfaction bands (R 90/80/70/60, i.e. MOS
4.339/4.024/3.597/3.100 by the formula above): 5 = very satisfied, 4 = satisfied, 3 = some users
dissatisfied, 2 = many dissatisfied, 1 = nearly all dissatisfied.
"""

from __future__ import annotations

# R at the lower edge of each bar rating, best first (G.107 Table B.1 / G.109).
BAR_R_BANDS: tuple[tuple[float, int], ...] = ((90.0, 5), (80.0, 4), (70.0, 3), (60.0, 2))


def r_factor(latency_ms: float, jitter_ms: float, loss_percent: float) -> float:
    """Transmission rating R (0..100) from one-way latency, jitter (ms) and loss (%)."""
    effective = latency_ms + 2.0 * jitter_ms + 10.0
    # Delay impairment Id: gentle up to the 160 ms knee, four times steeper beyond it.
    delay_impairment = effective / 40.0 if effective < 160.0 else (effective - 120.0) / 10.0
    r = 93.2 - delay_impairment - 2.5 * loss_percent  # 2.5 per % lost: the loss impairment Ie
    return min(100.0, max(0.0, r))


def mos_from_r(r: float) -> float:
    """MOS (listening quality, ~1..4.5) from R, G.107 Annex B."""
    if r <= 0.0:
        return 1.0
    if r >= 100.0:
        return 4.5
    return 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)


def estimate(latency_ms: float, jitter_ms: float, loss_percent: float) -> tuple[float, float]:
    """``(R, MOS)`` for one-way latency and jitter in ms and loss in percent."""
    r = r_factor(latency_ms, jitter_ms, loss_percent)
    return r, mos_from_r(r)


# The same edges on the MOS scale: 4.339, 4.024, 3.597, 3.100.
BAR_THRESHOLDS: tuple[tuple[float, int], ...] = tuple(
    (mos_from_r(r), bars) for r, bars in BAR_R_BANDS
)


def bars_from_mos(mos: float) -> int:
    """1–5 bars: the G.107 satisfaction band the MOS falls in (see module doc)."""
    for threshold, bars in BAR_THRESHOLDS:
        if mos >= threshold - 1e-9:  # R exactly on an edge belongs to the better band
            return bars
    return 1


__all__ = ["BAR_R_BANDS", "BAR_THRESHOLDS", "bars_from_mos", "estimate", "mos_from_r", "r_factor"]
