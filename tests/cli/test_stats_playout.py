"""The ``stats`` line's ``playout``: a device sink's buffer at the end, null for the others
(bench/turn_mouth_to_ear.py reads it to tell buffer growth from path delay)."""

from __future__ import annotations

from hello_tui.cli.call_cmd import _playout
from hello_tui.media.sinks import SinkStats


def test_a_device_sink_reports_its_playout_and_a_null_sink_none() -> None:
    device = SinkStats(frames=50, samples=48000, level_dbfs=-20.0, level=0.1, buffer_ms=42.0,
                       underruns=1, card_underruns=2, latency_ms=20.0, target_ms=35.0)  # fmt: skip
    assert _playout(device) == {
        "buffer_ms": 42.0, "target_ms": 35.0, "card_ms": 20.0, "underruns": 1,
        "card_underruns": 2,
    }  # fmt: skip
    assert _playout(SinkStats(frames=50, samples=48000, level_dbfs=-20.0, level=0.1)) is None
    assert _playout(None) is None
