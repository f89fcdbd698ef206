"""``/metrics``: the server's own counters, through ``prometheus_client``.

The hot path keeps plain integers (an increment per message costs nothing);
a collector turns them into metric families when Prometheus scrapes, beside
the process metrics (CPU, memory, file descriptors) and one histogram: how
long the server takes to handle a client message, by message type. That
histogram is plain lists too (``prometheus_client``'s ``labels().observe``
took ~5 % of an instance's CPU under the exchange bench: a lock, a label
lookup and a bucket scan per message).
Each server has its own registry, so several apps in one process (the tests)
never share or clash.

Only aggregates live here (P7): no label ever carries an identity, an address
or a call id, just message types, end reasons and error codes from closed sets.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client import exposition as text_format
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hello_tui.server.gcpauses import PAUSES
from hello_tui.signaling.protocol import EndReason

# Handling a message is mostly sub-millisecond; the tail is what matters.
HANDLE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


@dataclass
class Metrics:
    """Process-wide counters of one server instance, and its registry."""

    connections: int = 0
    connections_total: int = 0
    calls_active: int = 0
    calls_total: int = 0
    rooms_created_total: int = 0
    messages_in: int = 0
    messages_out: int = 0
    calls_ended: Counter[EndReason] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # Per message type: [count per bucket (the last one +Inf)..., sum of seconds].
    handling: dict[str, list[float]] = field(default_factory=dict)
    registry: CollectorRegistry = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_ServerCollector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def call_started(self) -> None:
        self.calls_active += 1
        self.calls_total += 1

    def call_ended(self, reason: EndReason) -> None:
        self.calls_active = max(0, self.calls_active - 1)
        self.calls_ended[reason] += 1

    def observe(self, kind: str, seconds: float) -> None:
        slots = self.handling.get(kind)
        if slots is None:
            slots = self.handling[kind] = [0.0] * (len(HANDLE_BUCKETS) + 2)
        slots[bisect_left(HANDLE_BUCKETS, seconds)] += 1  # le: a bucket holds its bound
        slots[-1] += seconds

    def register(self, collector: Collector) -> None:
        """Add another source of families (the telemetry aggregates)."""
        self.registry.register(collector)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The ``/metrics`` body and its content type: OpenMetrics when the
        scraper asks for it (``Accept``), else the classic text format."""
        if "application/openmetrics-text" in accept:
            return openmetrics.generate_latest(self.registry), openmetrics.CONTENT_TYPE_LATEST
        return text_format.generate_latest(self.registry), text_format.CONTENT_TYPE_LATEST


class _ServerCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.m
        yield GaugeMetricFamily(
            "hello_connections_open", "Open WebSocket connections.", value=m.connections
        )
        yield CounterMetricFamily(
            "hello_connections", "WebSocket connections accepted.", value=m.connections_total
        )
        yield GaugeMetricFamily("hello_calls_active", "Calls in progress.", value=m.calls_active)
        yield CounterMetricFamily("hello_calls", "Calls created.", value=m.calls_total)
        ended = CounterMetricFamily(
            "hello_calls_ended", "Calls ended, by reason.", labels=["reason"]
        )
        for reason, n in sorted(m.calls_ended.items()):
            ended.add_metric([reason], n)
        yield ended
        yield CounterMetricFamily(
            "hello_rooms_created", "Rooms created.", value=m.rooms_created_total
        )
        yield CounterMetricFamily("hello_messages_in", "Frames received.", value=m.messages_in)
        yield CounterMetricFamily("hello_messages_out", "Messages sent.", value=m.messages_out)
        errors = CounterMetricFamily("hello_errors", "Error replies, by code.", labels=["code"])
        for code, n in sorted(m.errors.items()):
            errors.add_metric([code], n)
        yield errors
        handling = HistogramMetricFamily(
            "hello_signaling_handle_seconds",
            "Time to handle one client message, by message type.",
            labels=["type"],
        )
        for kind, slots in sorted(m.handling.items()):
            bounds = [*(floatToGoString(b) for b in HANDLE_BUCKETS), "+Inf"]
            cumulative, buckets = 0.0, []
            for bound, count in zip(bounds, slots[:-1], strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            handling.add_metric([kind], buckets, sum_value=slots[-1])
        yield handling
        yield from _gc_families()


def _gc_families() -> Iterator[Metric]:
    """The collector's pauses in this process (zero until ``serve`` installs the hook)."""
    count = CounterMetricFamily(
        "hello_gc_pauses", "Cyclic GC collections timed, by generation.", labels=["generation"]
    )
    total = CounterMetricFamily(
        "hello_gc_pause_seconds", "Time stopped in cyclic GC, by generation.", labels=["generation"]
    )
    longest = GaugeMetricFamily(
        "hello_gc_pause_max_seconds",
        "Longest cyclic GC pause, by generation.",
        labels=["generation"],
    )
    for gen, (n, seconds, worst) in enumerate(PAUSES.by_generation):
        count.add_metric([str(gen)], n)
        total.add_metric([str(gen)], seconds)
        longest.add_metric([str(gen)], worst)
    yield from (count, total, longest)
