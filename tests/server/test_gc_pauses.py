"""The server's GC pause meter: every collection is timed in its generation,
shown on /metrics, and the start-up heap is frozen out of later collections
(unless ``HELLO_GC=default`` asks for the collector as Python sets it)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hello_tui.server import gcpauses
from hello_tui.server.metrics import Metrics


@pytest.fixture
def pauses() -> Iterator[gcpauses.GcPauses]:
    meter = gcpauses.GcPauses()
    meter.install()
    meter.install()  # twice: still one hook
    try:
        yield meter
    finally:
        meter.uninstall()
    assert meter._callback not in gc.callbacks


def test_every_collection_is_timed_in_its_generation(pauses: gcpauses.GcPauses) -> None:
    gc.collect(0)
    gc.collect(2)
    gc.collect(2)
    n0, s0, _ = pauses.by_generation[0]
    n2, s2, worst2 = pauses.by_generation[2]
    assert n0 >= 1 and n2 >= 2  # others may run too, never fewer
    assert s0 > 0 and s2 >= worst2 > 0
    pauses.reset()
    assert pauses.by_generation == [[0.0, 0.0, 0.0]] * 3


def test_metrics_show_the_process_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = gcpauses.GcPauses()
    meter.by_generation[2] = [3.0, 0.03, 0.02]
    monkeypatch.setattr("hello_tui.server.metrics.PAUSES", meter)
    text = Metrics().render()[0].decode()
    assert 'hello_gc_pauses_total{generation="2"} 3.0' in text
    assert 'hello_gc_pause_seconds_total{generation="2"} 0.03' in text
    assert 'hello_gc_pause_max_seconds{generation="2"} 0.02' in text
    assert 'hello_gc_pauses_total{generation="0"} 0.0' in text


def test_tuning_freezes_the_heap_unless_asked_not_to(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()  # whatever froze before in this process
    try:
        monkeypatch.setenv(gcpauses.ENV, "default")
        gcpauses.gc_tuning()
        assert gc.get_freeze_count() == 0
        monkeypatch.delenv(gcpauses.ENV)
        gcpauses.gc_tuning()
        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
