"""rtt_ms comes from the raw per-report RTT when there is one, aiortc's EWMA otherwise."""

from __future__ import annotations

from hello_tui.quality.collector import StatsInterpreter
from tests.quality.test_collector_units import AUDIO, NOW, report


def test_raw_rtt_is_preferred_over_the_smoothed_one() -> None:
    interp = StatsInterpreter(started_at=0.0)
    snapshot = report(received=50, lost=0, jitter=0, sent_bytes=1000, rtt=0.040)
    raw = {AUDIO.remote_inbound_id: 240.0}
    sample = interp.interpret(snapshot, [AUDIO], 1.0, wall=NOW, raw_rtt_ms=raw)
    assert sample.rtt_ms == 240.0
    # MOS uses it: one-way latency 120 ms instead of 20 ms
    assert sample.mos is not None and sample.mos < 4.4


def test_without_a_raw_rtt_aiortcs_value_is_used() -> None:
    interp = StatsInterpreter(started_at=0.0)
    snapshot = report(received=50, lost=0, jitter=0, sent_bytes=1000, rtt=0.040)
    assert interp.interpret(snapshot, [AUDIO], 1.0, wall=NOW).rtt_ms == 40.0
    other = {"remote-inbound-rtp_999": 300.0}  # a stream this call does not have
    assert interp.interpret(snapshot, [AUDIO], 2.0, wall=NOW, raw_rtt_ms=other).rtt_ms == 40.0


def test_a_raw_rtt_counts_even_before_aiortc_has_one() -> None:
    interp = StatsInterpreter(started_at=0.0)
    snapshot = report(received=50, lost=0, jitter=0, sent_bytes=1000, rtt=None)
    assert interp.interpret(snapshot, [AUDIO], 1.0, wall=NOW).rtt_ms is None
    raw = {AUDIO.remote_inbound_id: 12.5}
    assert interp.interpret(snapshot, [AUDIO], 2.0, wall=NOW, raw_rtt_ms=raw).rtt_ms == 12.5
