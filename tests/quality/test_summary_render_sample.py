"""End-of-call summary (exact nearest-rank percentiles), the CLI line, JSON round trip."""

from __future__ import annotations

import json

import pytest

from hello_tui.quality.render import render_bars, render_line
from hello_tui.quality.sample import QualitySample
from hello_tui.quality.summary import percentile, summarize


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
