"""The end-of-call quality record, computed from the very samples the panel showed.

Percentiles are nearest-rank (the value at rank ⌈p·n/100⌉ of the sorted
values, no interpolation), so every percentile reported is a value some
sample actually carried — telemetry can be checked against the samples.
Samples whose value is ``None`` (e.g. RTT before the first RTCP report) are
left out of that metric; a metric with no values at all is ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from hello_tui.quality.sample import QualitySample
from hello_tui.signaling.protocol import CallEndReason, CallOutcome, CandidateType, NetworkType


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank ``p``-th percentile (0 < p ≤ 100) of ``values``; None when empty."""
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallQualitySummary:
    """Duration, outcome and the distribution of the call's quality samples."""

    duration_s: float
    outcome: CallOutcome
    reason: CallEndReason | Literal[""] = ""  # termination reason, when the caller has one
    samples: int = 0
    rtt_ms_p50: float | None = None
    rtt_ms_p95: float | None = None
    jitter_ms_p50: float | None = None
    jitter_ms_p95: float | None = None
    fraction_lost_p50: float | None = None  # per-interval loss, 0..1
    fraction_lost_p95: float | None = None
    packets_lost: int = 0  # cumulative count of the last sample
    packets_received: int = 0
    mos_mean: float | None = None
    mos_min: float | None = None
    codec: str | None = None  # the last one seen
    candidate_type: CandidateType | None = None
    network_type: NetworkType = "unknown"
    # Loss as heard: less what in-band FEC recovered (what the MOS is computed from).
    effective_fraction_lost_p50: float | None = None
    effective_fraction_lost_p95: float | None = None
    packets_recovered: int = 0  # cumulative count of the last sample

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    samples: Sequence[QualitySample],
    *,
    outcome: CallOutcome,
    reason: CallEndReason | Literal[""] = "",
    duration_s: float | None = None,
) -> CallQualitySummary:
    """Summarise ``samples`` (in call order); ``duration_s`` defaults to the last ``t``."""
    if duration_s is None:
        duration_s = samples[-1].t if samples else 0.0
    rtt = _present(s.rtt_ms for s in samples)
    jitter = _present(s.jitter_ms for s in samples)
    loss = [s.fraction_lost for s in samples]
    heard = [s.effective_fraction_lost for s in samples]
    mos = _present(s.mos for s in samples)
    last = samples[-1] if samples else None
    return CallQualitySummary(
        duration_s=duration_s,
        outcome=outcome,
        reason=reason,
        samples=len(samples),
        rtt_ms_p50=percentile(rtt, 50),
        rtt_ms_p95=percentile(rtt, 95),
        jitter_ms_p50=percentile(jitter, 50),
        jitter_ms_p95=percentile(jitter, 95),
        fraction_lost_p50=percentile(loss, 50),
        fraction_lost_p95=percentile(loss, 95),
        packets_lost=last.packets_lost if last else 0,
        packets_received=last.packets_received if last else 0,
        mos_mean=sum(mos) / len(mos) if mos else None,
        mos_min=min(mos) if mos else None,
        codec=next((s.codec for s in reversed(samples) if s.codec), None),
        candidate_type=next(
            (s.candidate_type for s in reversed(samples) if s.candidate_type), None
        ),
        network_type=last.network_type if last else "unknown",
        effective_fraction_lost_p50=percentile(heard, 50),
        effective_fraction_lost_p95=percentile(heard, 95),
        packets_recovered=last.packets_recovered if last else 0,
    )


__all__ = ["CallQualitySummary", "percentile", "summarize"]
