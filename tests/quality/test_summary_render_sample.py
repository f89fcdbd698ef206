"""End-of-call summary (exact nearest-rank percentiles), the CLI line, JSON round trip."""

from __future__ import annotations

import json

import pytest

from hello_tui.quality.render import path_word, render_bars, render_line
from hello_tui.quality.sample import QualitySample
from hello_tui.quality.summary import CallQualitySummary, percentile, summarize


def _samples() -> list[QualitySample]:
    """20 one-second samples: RTT 1..20 ms, jitter 20..1 ms, loss 5 % in two of them."""
    out = []
    for i in range(1, 21):
        out.append(
            QualitySample(
                t=float(i),
                interval_s=1.0,
                rtt_ms=float(i),
                jitter_ms=float(21 - i),
                fraction_lost=0.05 if i in (7, 13) else 0.0,
                packets_received=50 * i,
                packets_lost=0 if i < 7 else (1 if i < 13 else 2),
                mos=4.0 + i / 100,
                codec="opus/48000/2",
                candidate_type="host",
                network_type="wifi",
            )
        )
    return out


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10.0  # rank ceil(10) = 10
    assert percentile(values, 95) == 19.0  # rank ceil(19) = 19
    assert percentile(values, 100) == 20.0
    assert percentile([3.0], 95) == 3.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile(values, 0)


def test_summary_numbers_come_from_the_samples() -> None:
    samples = _samples()
    s = summarize(samples, outcome="completed", reason="hangup")
    assert (s.duration_s, s.outcome, s.reason, s.samples) == (20.0, "completed", "hangup", 20)
    assert (s.rtt_ms_p50, s.rtt_ms_p95) == (10.0, 19.0)
    assert (s.jitter_ms_p50, s.jitter_ms_p95) == (10.0, 19.0)
    assert (s.fraction_lost_p50, s.fraction_lost_p95) == (0.0, 0.05)
    assert s.mos_min == samples[0].mos
    assert s.mos_mean == pytest.approx(sum(x.mos for x in samples if x.mos) / 20)
    assert (s.packets_lost, s.packets_received) == (2, 1000)
    assert (s.codec, s.candidate_type, s.network_type) == ("opus/48000/2", "host", "wifi")
    carried = {x.rtt_ms for x in samples} | {x.jitter_ms for x in samples}
    assert {s.rtt_ms_p50, s.rtt_ms_p95, s.jitter_ms_p50, s.jitter_ms_p95} <= carried
    assert json.loads(json.dumps(s.to_json()))["rtt_ms_p95"] == 19.0


def test_summary_skips_unknown_values_and_handles_no_samples() -> None:
    samples = [QualitySample(t=1.0, interval_s=1.0), QualitySample(t=2.0, interval_s=1.0, rtt_ms=7)]
    s = summarize(samples, outcome="dropped", duration_s=2.5)
    assert s.duration_s == 2.5 and s.rtt_ms_p50 == 7 and s.rtt_ms_p95 == 7
    assert s.jitter_ms_p50 is None and s.mos_mean is None and s.mos_min is None
    empty = summarize([], outcome="failed", reason="timeout")
    assert empty.samples == 0 and empty.duration_s == 0.0 and empty.rtt_ms_p50 is None


def test_render_line() -> None:
    sample = QualitySample(
        t=3, interval_s=1, rtt_ms=12.4, jitter_ms=3.2, fraction_lost=0.0,
        bitrate_in_kbps=41.2, bitrate_out_kbps=39.6, mos=4.404, bars=5,
    )  # fmt: skip
    assert render_line(sample) == (
        "RTT 12 ms  jitter 3 ms  loss 0.0 %  in 41 kbps  out 40 kbps  MOS 4.4 ▮▮▮▮▮"
    )
    lossy = QualitySample(t=3, interval_s=1, fraction_lost=0.125, mos=3.31, bars=2)
    assert render_line(lossy, ascii_only=True) == (
        "RTT –  jitter –  loss 12.5 %  in –  out –  MOS 3.3 ##..."
    )


def test_render_line_says_relay_or_direct() -> None:
    relayed = QualitySample(t=1, interval_s=1, candidate_type="host", remote_candidate_type="relay")
    assert render_line(relayed).endswith("  relay")
    direct = QualitySample(t=1, interval_s=1, candidate_type="srflx", remote_candidate_type="host")
    assert render_line(direct).endswith("  direct")
    assert path_word(QualitySample(t=1, interval_s=1)) is None


def test_render_bars() -> None:
    assert render_bars(3) == "▮▮▮▯▯"
    assert render_bars(None) == "▯▯▯▯▯"
    assert render_bars(9) == "▮▮▮▮▮"


def test_sample_json_round_trip() -> None:
    sample = QualitySample(t=1.0000000001, interval_s=1.0, rtt_ms=0.1 + 0.2, codec="opus/48000/2")
    data = json.loads(json.dumps(sample.to_json()))
    assert data["rtt_ms"] == 0.3 and data["t"] == 1.0 and data["video_fps"] is None
    data["added_by_a_newer_version"] = 1
    back = QualitySample.from_json(data)
    assert back.codec == "opus/48000/2" and back.rtt_ms == 0.3
    assert QualitySample.from_json(sample.to_json()) == QualitySample.from_json(data)


def test_a_bare_sample_knows_only_counters_at_zero() -> None:
    """Defaults: counters start at 0, everything measured is unknown (None), never 0."""
    data = QualitySample(t=1.0, interval_s=1.0).to_json()
    zeros = {"packets_received", "packets_lost", "packets_lost_interval", "fraction_lost",
             "bytes_received", "bytes_sent", "packets_recovered",
             "effective_fraction_lost"}  # fmt: skip
    assert {k for k, v in data.items() if v == 0 and not isinstance(v, bool)} == zeros
    assert all(data[k] == 0 for k in zeros)
    assert data["network_type"] == "unknown"
    known = zeros | {"t", "interval_s", "network_type"}
    assert all(v is None for k, v in data.items() if k not in known)


def test_a_sample_is_a_keyword_only_value() -> None:
    import dataclasses

    sample = QualitySample(t=1.0, interval_s=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.t = 2.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        QualitySample(1.0, 1.0)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "written"),
    [(0.1234564, 0.123456), (0.1234565001, 0.123457), (12.0, 12.0), (1e-7, 0.0)],
)
def test_json_floats_are_rounded_to_six_decimals(value: float, written: float) -> None:
    assert QualitySample(t=value, interval_s=1.0).to_json()["t"] == written


HUNDRED = [float(v) for v in range(1, 101)]


@pytest.mark.parametrize(
    ("p", "value"),
    [
        (5e-324, 1.0),  # the tiniest p (p/100 underflows to 0) is still rank 1
        (0.5, 1.0),
        (1, 1.0),
        (49, 49.0),
        (50, 50.0),
        (50.4, 51.0),  # rank ceil(50.4) = 51: nearest rank rounds up
        (95, 95.0),
        (99.5, 100.0),
        (100, 100.0),
    ],
)
def test_percentile_ranks_of_a_hundred(p: float, value: float) -> None:
    assert percentile(HUNDRED, p) == value


@pytest.mark.parametrize("p", [0, -1, 100.5, 101])
def test_percentile_outside_0_100_is_refused(p: float) -> None:
    with pytest.raises(ValueError, match=r"percentile must be in \(0, 100\]"):
        percentile(HUNDRED, p)


def test_summary_percentiles_of_a_hundred_samples() -> None:
    """100 distinct values per metric: p50 and p95 are exactly the 50th and 95th."""
    samples = [
        QualitySample(
            t=float(i),
            interval_s=1.0,
            rtt_ms=float(i),
            jitter_ms=float(101 - i),
            fraction_lost=i / 1000,
        )
        for i in range(1, 101)
    ]
    s = summarize(samples, outcome="completed")
    assert (s.rtt_ms_p50, s.rtt_ms_p95) == (50.0, 95.0)
    assert (s.jitter_ms_p50, s.jitter_ms_p95) == (50.0, 95.0)
    assert (s.fraction_lost_p50, s.fraction_lost_p95) == (0.05, 0.095)


def test_summary_defaults_and_the_empty_call() -> None:
    import dataclasses

    bare = CallQualitySummary(duration_s=0.0, outcome="failed")
    assert (bare.samples, bare.packets_lost, bare.packets_received) == (0, 0, 0)
    assert bare.reason == "" and bare.network_type == "unknown" and bare.mos_mean is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        bare.samples = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        CallQualitySummary(0.0, "failed")  # type: ignore[misc]
    empty = summarize([], outcome="failed")
    assert (empty.packets_lost, empty.packets_received, empty.codec) == (0, 0, None)
    assert empty.network_type == "unknown" and empty.candidate_type is None
