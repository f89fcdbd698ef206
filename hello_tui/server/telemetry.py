"""Telemetry on the server: reports in, aggregates only, small buckets hidden (P6, P7).

``POST /telemetry`` (a ``protocol.CallReport``), ``POST /feedback``
(``FeedbackReport``) and ``POST /crash`` (``CrashReport``): size-capped,
decoded strictly (bad input → 400 ``{"error": "..."}``). The sender's
address is truncated (IPv4 /24, IPv6 /48) *first*, in the route, and only
the truncated network ever reaches this module or a log line.

What is kept (in memory, per instance) is counts, nothing else:

- calls by outcome, by end reason, by the stage where failed calls failed,
  by network type, candidate type and direction;
- quality distributions as histogram buckets (mean MOS, p50 RTT, p95
  jitter, p95 loss, duration, setup time);
- daily users: for the current UTC day, a set of
  ``HMAC-SHA256(salt_of_the_day, daily_id or truncated network)``; the salt
  is random, made when the day starts and discarded when it ends, at which
  point the set becomes one number (users that day). The client's
  ``daily_id`` already changes every day, so nothing links two days. Each
  new user-day also counts its OS family and client version (and country,
  when the operator plugged in a GeoIP lookup: ``country_of``);
- feedback ratings and reasons; crash counts by error type and version
  (the crash's traceback goes to the server log, for the operator).

:meth:`TelemetryAggregator.stats` (``GET /stats``) and :meth:`render` (in
``GET /metrics``) expose only buckets with at least :data:`MIN_BUCKET`
members; smaller ones are left out, and no total is published beside a
breakdown (a total minus the visible buckets would reveal a hidden one).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hello_tui.server.privacy import escape_log, log
from hello_tui.signaling import protocol as p

MIN_BUCKET = 5  # buckets with fewer members are not exposed
DAYS_KEPT = 31  # daily user counts kept (the counts, not the hashes)

# Histogram edges: a value v falls in the bucket "lo-hi" with lo <= v < hi; the last is "lo+".
BUCKETS: dict[str, tuple[float, ...]] = {
    "mos_mean": (1.0, 2.0, 3.0, 3.5, 4.0, 4.3),
    "rtt_ms_p50": (0, 50, 100, 200, 400, 800),
    "jitter_ms_p95": (0, 10, 20, 50, 100),
    "fraction_lost_p95": (0, 0.01, 0.03, 0.05, 0.1, 0.2),
    "duration_s": (0, 10, 60, 300, 1800, 3600),
    "setup_ms": (0, 100, 250, 500, 1000, 3000),
}
COUNTRY = re.compile(r"^[A-Z]{2}$")


def bucket(value: float, edges: tuple[float, ...]) -> str:
    """The label of ``value``'s histogram bucket, e.g. ``4.0-4.3`` or ``800+``."""
    if value < edges[0]:
        return f"<{_fmt(edges[0])}"
    for lo, hi in itertools.pairwise(edges):
        if value < hi:
            return f"{_fmt(lo)}-{_fmt(hi)}"
    return f"{_fmt(edges[-1])}+"


def _fmt(x: float) -> str:
    return f"{x:g}"


def visible(counter: Counter[str], min_bucket: int = MIN_BUCKET) -> dict[str, int]:
    """The buckets with at least ``min_bucket`` members, sorted by label."""
    return {k: n for k, n in sorted(counter.items()) if n >= min_bucket}


class TelemetryAggregator:
    """Counts, and the current day's salted user hashes. Nothing else is kept.

    ``clock`` gives Unix time (tests inject one to cross midnight);
    ``country_of(network_address)`` is the GeoIP hook: given the truncated
    network's first address (``203.0.113.0``), return an ISO 3166 alpha-2 code
    or None. No database ships with hello-tui (docs/telemetry.md).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        country_of: Callable[[str], str | None] | None = None,
        min_bucket: int = MIN_BUCKET,
    ) -> None:
        self.clock = clock
        self.country_of = country_of
        self.min_bucket = min_bucket
        self.calls: dict[str, Counter[str]] = {
            name: Counter()
            for name in ("outcome", "reason", "failed_stage", "network_type", "candidate_type",
                         "direction", "codec")
        }  # fmt: skip
        self.quality: dict[str, Counter[str]] = {name: Counter() for name in BUCKETS}
        self.users: dict[str, Counter[str]] = {
            "os": Counter(), "client_version": Counter(), "country": Counter()
        }  # fmt: skip
        self.daily_users: dict[str, int] = {}  # past UTC days → users that day
        self.feedback: dict[str, Counter[str]] = {"rating": Counter(), "reason": Counter()}
        self.crashes: dict[str, Counter[str]] = {"error": Counter(), "client_version": Counter()}
        self._day = ""
        self._salt = b""
        self._today: set[bytes] = set()  # HMAC(salt, user key) of today's users
        self._rotate()

    # ------------------------------------------------------------ the day
    def _rotate(self) -> None:
        """Start a new day if the clock crossed midnight UTC: the finished day's
        set becomes a count, its salt is replaced (and so forgotten)."""
        day = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y-%m-%d")
        if day == self._day:
            return
        if self._day:
            self.daily_users[self._day] = len(self._today)
            for old in sorted(self.daily_users)[:-DAYS_KEPT]:
                del self.daily_users[old]
        self._day = day
        self._salt = secrets.token_bytes(32)
        self._today = set()

    def _user(self, key: str, report_os: str, version: str, network: str) -> None:
        digest = hmac.new(self._salt, key.encode(), hashlib.sha256).digest()
        if digest in self._today:
            return
        self._today.add(digest)
        self.users["os"][report_os] += 1
        self.users["client_version"][version] += 1
        country = self._country(network)
        if country:
            self.users["country"][country] += 1

    def _country(self, network: str) -> str | None:
        if self.country_of is None:
            return None
        try:
            address = str(ipaddress.ip_network(network, strict=False).network_address)
            code = self.country_of(address)
        except Exception:
            return None
        return code if code and COUNTRY.match(code) else None

    # ------------------------------------------------------------ intake
    def add_call(self, report: p.CallReport, network: str) -> None:
        """Count one call report; ``network`` is the sender's *truncated* address."""
        self._rotate()
        c = self.calls
        c["outcome"][report.outcome] += 1
        c["reason"][report.reason] += 1
        c["direction"][report.direction] += 1
        if report.outcome in ("failed", "dropped"):
            c["failed_stage"][report.stage] += 1
        c["network_type"][report.network_type] += 1
        q = report.quality
        if q.candidate_type:
            c["candidate_type"][q.candidate_type] += 1
        if q.codec:
            c["codec"][q.codec] += 1
        values = {
            "mos_mean": q.mos_mean,
            "rtt_ms_p50": q.rtt_ms_p50,
            "jitter_ms_p95": q.jitter_ms_p95,
            "fraction_lost_p95": q.fraction_lost_p95,
            "duration_s": report.duration_s if report.stage == "connected" else None,
            "setup_ms": report.setup_ms,
        }
        for name, value in values.items():
            if value is not None:
                self.quality[name][bucket(value, BUCKETS[name])] += 1
        self._user(report.daily_id or network, report.os, report.client_version, network)

    def add_feedback(self, feedback: p.FeedbackReport, network: str) -> None:
        self._rotate()
        self.feedback["rating"][feedback.rating] += 1
        for reason in feedback.reasons:
            self.feedback["reason"][reason] += 1

    def add_crash(self, crash: p.CrashReport, network: str) -> None:
        self._rotate()
        self.crashes["error"][crash.error] += 1
        self.crashes["client_version"][crash.client_version] += 1

    # ------------------------------------------------------------ exposure
    def stats(self) -> dict[str, Any]:
        """``GET /stats``: every breakdown, buckets under ``min_bucket`` left out."""
        self._rotate()
        n = self.min_bucket

        def show(group: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
            return {name: visible(counter, n) for name, counter in group.items()}

        daily = {**self.daily_users, self._day: len(self._today)}
        return {
            "min_bucket": n,
            "calls": show(self.calls),
            "quality": show(self.quality),
            "users": {
                "daily": {d: u for d, u in sorted(daily.items()) if u >= n},
                **show(self.users),
            },
            "feedback": show(self.feedback),
            "crashes": show(self.crashes),
        }

    def render(self) -> str:
        """Prometheus text for ``/metrics`` (the same visible buckets as :meth:`stats`)."""
        stats = self.stats()
        lines: list[str] = []

        def family(name: str, help_: str, label: str, values: dict[str, int]) -> None:
            lines.append(f"# HELP {name} {help_}")
            lines.append(f"# TYPE {name} gauge")
            for key, value in values.items():
                lines.append(f'{name}{{{label}="{_escape(key)}"}} {value}')

        for group, prefix in (
            ("calls", "hello_telemetry_calls"),
            ("quality", "hello_telemetry_quality"),
            ("users", "hello_telemetry_users"),
            ("feedback", "hello_telemetry_feedback"),
            ("crashes", "hello_telemetry_crashes"),
        ):
            for name, values in stats[group].items():
                label = "day" if (group, name) == ("users", "daily") else "bucket"
                if group == "calls" or (group == "users" and name != "daily"):
                    label = name
                family(
                    f"{prefix}_{name}",
                    f"Telemetry {group} by {name} (buckets under {stats['min_bucket']} hidden).",
                    label,
                    values,
                )
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


MAX_CRASH_LOG_LINES = 200


def log_crash(crash: p.CrashReport) -> None:
    """The operator sees a crash's traceback in the server log (no address, no name).

    The traceback is the client's text: one record per line, each marked
    ``crash |`` and escaped (``escape_log``), so a newline or ESC in it cannot
    forge a record of the server's own."""
    log.warning(
        "crash report: %s in hello-tui %s (%s, python %s, command %r)",
        crash.error,
        crash.client_version,
        crash.os,
        crash.python,
        crash.command,
    )
    lines = crash.traceback.splitlines()
    for line in lines[:MAX_CRASH_LOG_LINES]:
        log.warning("crash | %s", escape_log(line))
    if len(lines) > MAX_CRASH_LOG_LINES:
        log.warning("crash | (%d more lines)", len(lines) - MAX_CRASH_LOG_LINES)


__all__ = ["BUCKETS", "MIN_BUCKET", "TelemetryAggregator", "bucket", "log_crash", "visible"]
