"""Prometheus text exposition, hand-written: counters and gauges only.

Only aggregates live here (P7): no label ever carries an identity, an address
or a call id, just reason and error codes from closed sets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Metrics:
    """Process-wide counters of one server instance."""

    connections: int = 0
    connections_total: int = 0
    calls_active: int = 0
    calls_total: int = 0
    rooms_created_total: int = 0
    messages_in: int = 0
    messages_out: int = 0
    calls_ended: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def call_started(self) -> None:
        self.calls_active += 1
        self.calls_total += 1

    def call_ended(self, reason: str) -> None:
        self.calls_active = max(0, self.calls_active - 1)
        self.calls_ended[reason] += 1

    def render(self) -> str:
        """The ``/metrics`` body (text format 0.0.4)."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: dict[str, int]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} {kind}")
            for labels, value in samples.items():
                lines.append(f"{name}{labels} {value}")

        metric("hello_connections", "gauge", "Open WebSocket connections.", {"": self.connections})
        metric(
            "hello_connections_total",
            "counter",
            "WebSocket connections accepted.",
            {"": self.connections_total},
        )
        metric("hello_calls_active", "gauge", "Calls in progress.", {"": self.calls_active})
        metric("hello_calls_total", "counter", "Calls created.", {"": self.calls_total})
        metric(
            "hello_calls_ended_total",
            "counter",
            "Calls ended, by reason.",
            {f'{{reason="{r}"}}': n for r, n in sorted(self.calls_ended.items())},
        )
        metric(
            "hello_rooms_created_total", "counter", "Rooms created.", {"": self.rooms_created_total}
        )
        metric("hello_messages_in_total", "counter", "Frames received.", {"": self.messages_in})
        metric("hello_messages_out_total", "counter", "Messages sent.", {"": self.messages_out})
        metric(
            "hello_errors_total",
            "counter",
            "Error replies, by code.",
            {f'{{code="{c}"}}': n for c, n in sorted(self.errors.items())},
        )
        return "\n".join(lines) + "\n"
