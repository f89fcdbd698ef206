"""Telemetry on the server: reports in, noisy aggregates of closed periods out (P6, P7).

``POST /telemetry`` (a ``protocol.CallReport``), ``POST /feedback``
(``FeedbackReport``) and ``POST /crash`` (``CrashReport``): JSON only,
size-capped, decoded strictly (bad input → 400 ``{"error": "..."}``). The
sender's address is truncated (IPv4 /24, IPv6 /48) *first*, in the route,
and only the truncated network ever reaches this module or a log line.

Reports are counted in *periods* (one UTC day by default). While a period is
open, nothing of it is visible anywhere. For each bucket (``calls.outcome =
completed``, ``quality.mos_mean = 4.0-4.3``, ...) the open period keeps the
number of reports and the set of distinct *reporters*, a reporter being
``HMAC(salt of the period, truncated network)`` -- not the client's
``daily_id``, which a sender chooses freely. One reporter adds at most
:data:`PER_REPORTER` reports to a bucket per period, so four fake reports
from one network are one reporter and at most three reports.

When the period closes (the first report or read after its end), each
bucket is published only if its distinct-reporter count plus Laplace noise
reaches :data:`MIN_BUCKET` (noisy thresholding), and what is published is
its report count plus Laplace noise (scale ``PER_REPORTER / epsilon``),
rounded and clamped at 0. The published values are added to running sums,
fixed from then on (reading ``/stats`` again draws no new noise, so nothing
averages out); the salt, the reporter sets and the counts are dropped.

Daily users: during the period, a set of ``HMAC(salt, daily_id)`` (at most
:data:`PER_REPORTER` new users per network); at close, the noisy number of
users, if the noisy number of networks they came from reaches the
threshold. Each new user-day also counts its OS family and client version
(and country, when the operator plugged in a GeoIP lookup: ``country_of``).
See docs/telemetry.md and docs/security.md, "Telemetry that resists differencing".
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import itertools
import math
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from hello_tui.server.noise import laplace, noise_scale, noisy_count
from hello_tui.server.privacy import escape_log, log
from hello_tui.signaling import protocol as p

MIN_BUCKET = 5  # k: a bucket needs this many distinct reporters (after noise) to be published
DAYS_KEPT = 31  # closed periods' user counts kept (the counts, not the hashes)
DAY = 24 * 3600
PERIOD = DAY  # reports are published once their period (a UTC day by default) has closed
EPSILON = 1.0  # privacy budget of one published count
PER_REPORTER = 3  # reports one network adds to one bucket per period, at most
# Memory bounds of the open period: distinct buckets (labels of patterned
# fields such as client_version are open-ended), and (bucket, reporter) pairs
# plus users. Beyond them new ones are not counted until the period closes.
MAX_BUCKETS = 4096
MAX_ENTRIES = 500_000

# Histogram edges: a value v falls in the bucket "lo-hi" with lo <= v < hi; the last is "lo+".
BUCKETS: dict[str, tuple[float, ...]] = {
    "mos_mean": (1.0, 2.0, 3.0, 3.5, 4.0, 4.3),
    "rtt_ms_p50": (0, 50, 100, 200, 400, 800),
    "jitter_ms_p95": (0, 10, 20, 50, 100),
    "fraction_lost_p95": (0, 0.01, 0.03, 0.05, 0.1, 0.2),
    "duration_s": (0, 10, 60, 300, 1800, 3600),
    "setup_ms": (0, 100, 250, 500, 1000, 3000),
    "shared_s": (0, 10, 60, 300, 1800, 3600),
}
GROUPS: dict[str, tuple[str, ...]] = {
    "calls": ("outcome", "reason", "failed_stage", "network_type", "candidate_type",
              "direction", "codec", "shared"),
    "quality": tuple(BUCKETS),
    "users": ("os", "client_version", "country"),
    "feedback": ("rating", "reason"),
    "crashes": ("error", "client_version"),
}  # fmt: skip
COUNTRY = re.compile(r"^[A-Z]{2}$")

Key = tuple[str, str, str]  # (group, name, label), e.g. ("calls", "outcome", "completed")


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


def call_keys(report: p.CallReport) -> list[Key]:
    """The buckets one call report counts in (its user's, if new, aside)."""
    q = report.quality
    keys: list[Key] = [
        ("calls", "outcome", report.outcome),
        ("calls", "reason", report.reason),
        ("calls", "direction", report.direction),
        ("calls", "network_type", report.network_type),
    ]
    if report.outcome in ("failed", "dropped"):
        keys.append(("calls", "failed_stage", report.stage))
    if q.candidate_type:
        keys.append(("calls", "candidate_type", q.candidate_type))
    if q.codec:
        keys.append(("calls", "codec", q.codec))
    if report.shared_s is not None:  # version 2: a terminal was shared, and how long
        keys.append(("calls", "shared", "terminal"))
    values = {
        "mos_mean": q.mos_mean,
        "rtt_ms_p50": q.rtt_ms_p50,
        "jitter_ms_p95": q.jitter_ms_p95,
        "fraction_lost_p95": q.fraction_lost_p95,
        "duration_s": report.duration_s if report.stage == "connected" else None,
        "setup_ms": report.setup_ms,
        "shared_s": report.shared_s,
    }
    for name, value in values.items():
        if value is not None:
            keys.append(("quality", name, bucket(value, BUCKETS[name])))
    return keys


def feedback_keys(feedback: p.FeedbackReport) -> list[Key]:
    return [("feedback", "rating", feedback.rating)] + [
        ("feedback", "reason", reason) for reason in feedback.reasons
    ]


def crash_keys(crash: p.CrashReport) -> list[Key]:
    return [("crashes", "error", crash.error), ("crashes", "client_version", crash.client_version)]


def user_keys(report_os: str, version: str, country: str | None) -> list[Key]:
    """The buckets a new user-day counts in."""
    keys: list[Key] = [("users", "os", report_os), ("users", "client_version", version)]
    return keys + ([("users", "country", country)] if country else [])


class TelemetryAggregator:
    """The open period's counts and reporter sets, and the published sums of closed ones.

    ``clock`` gives Unix time (tests inject one to close periods);
    ``country_of(network_address)`` is the GeoIP hook: given the truncated
    network's first address (``203.0.113.0``), return an ISO 3166 alpha-2 code
    or None. No database ships with hello-tui (docs/telemetry.md).

    ``period`` (seconds, aligned on the Unix epoch: a UTC day by default),
    ``epsilon`` (privacy budget of each published count) and ``per_reporter``
    (the cap on one network's reports per bucket per period, which bounds the
    noise's sensitivity) set the privacy rule. ``rng`` draws the noise: the
    OS's CSPRNG unless a test passes a seeded ``random.Random``. Only here,
    never from the command line, can ``epsilon=math.inf`` turn the noise off
    (tests that check exact counts).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        country_of: Callable[[str], str | None] | None = None,
        min_bucket: int = MIN_BUCKET,
        period: int = PERIOD,
        epsilon: float = EPSILON,
        per_reporter: int = PER_REPORTER,
        rng: random.Random | None = None,
    ) -> None:
        if period < 60:
            raise ValueError("telemetry period: at least 60 seconds")
        if not epsilon > 0:
            raise ValueError("telemetry epsilon: must be positive")
        if per_reporter < 1:
            raise ValueError("telemetry per_reporter: at least 1")
        self.clock = clock
        self.country_of = country_of
        self.min_bucket = min_bucket
        self.period = int(period)
        self.epsilon = epsilon
        self.per_reporter = per_reporter
        self.rng = rng if rng is not None else random.SystemRandom()
        # Published: running sums of the closed periods' noisy values, and users per period.
        self.published: dict[str, dict[str, Counter[str]]] = {
            group: {name: Counter() for name in names} for group, names in GROUPS.items()
        }
        self.daily_users: dict[str, int] = {}
        self.closed_through = ""  # label of the last period closed
        # The open period: forgotten when it closes.
        self._index: int | None = None  # floor(time / period)
        self._salt = b""
        self._buckets: dict[Key, Counter[bytes]] = {}  # bucket → reporter → reports (≤ cap)
        self._users: set[bytes] = set()  # HMAC(salt, daily_id) of this period's users
        self._users_by: Counter[bytes] = Counter()  # reporter → new users it brought (≤ cap)
        self._entries = 0
        self._rotate()

    # ------------------------------------------------------------ the period
    @property
    def scale(self) -> float:
        """The Laplace scale of every noisy count: ``per_reporter / epsilon``."""
        return noise_scale(self.per_reporter, self.epsilon)

    def label(self, index: int) -> str:
        """A period's name: its first UTC day (``2026-11-26``), or minute if periods are shorter."""
        start = datetime.fromtimestamp(index * self.period, UTC)
        return start.strftime("%Y-%m-%d" if self.period % DAY == 0 else "%Y-%m-%dT%H:%MZ")

    def _rotate(self) -> None:
        """Close the open period if the clock has passed its end, and open the next:
        a new random salt, empty sets (the old ones, and the old salt, are gone)."""
        index = int(self.clock() // self.period)
        if self._index is not None and index <= self._index:
            return
        if self._index is not None:
            self._close(self.label(self._index))
        self._index = index
        self._salt = secrets.token_bytes(32)
        self._buckets = {}
        self._users = set()
        self._users_by = Counter()
        self._entries = 0

    def _shown(self, reporters: int) -> bool:
        """Noisy thresholding: whether a bucket is published is itself noisy."""
        return reporters + laplace(self.rng, self.scale) >= self.min_bucket

    def _close(self, label: str) -> None:
        """Publish the open period once, with noise, into the running sums."""
        buckets = {key: sum(r.values()) for key, r in self._buckets.items() if r}
        reporters = {key: len(r) for key, r in self._buckets.items()}
        self.publish(label, buckets, reporters, len(self._users), len(self._users_by))

    def publish(
        self,
        label: str,
        reports: dict[Key, int],
        reporters: dict[Key, int],
        users: int,
        user_networks: int,
    ) -> tuple[dict[Key, int], int]:
        """Add one closed period's noisy values to the running sums: each bucket's
        report count, if its distinct reporters (plus noise) reach the threshold,
        and the number of users, if the networks they came from do. Returns what
        was added (a shared store adds the same to its sums)."""
        added: dict[Key, int] = {}
        for key in sorted(reports):
            if not self._shown(reporters.get(key, 0)):
                continue
            value = noisy_count(self.rng, reports[key], self.scale)
            if value:
                group, name, bucket_label = key
                self.published[group][name][bucket_label] += value
                added[key] = value
        shown_users = 0
        if user_networks and self._shown(user_networks):
            shown_users = noisy_count(self.rng, users, self.scale)
            if shown_users:
                self.daily_users[label] = shown_users
                for old in sorted(self.daily_users)[:-DAYS_KEPT]:
                    del self.daily_users[old]
        self.closed_through = label
        return added, shown_users

    # ------------------------------------------------------------ counting
    def _digest(self, value: str) -> bytes:
        return hmac.new(self._salt, value.encode(), hashlib.sha256).digest()[:16]

    def _count(self, key: Key, reporter: bytes) -> None:
        reporters = self._buckets.get(key)
        if reporters is None:
            if len(self._buckets) >= MAX_BUCKETS:
                return
            reporters = self._buckets[key] = Counter()
        n = reporters.get(reporter, 0)
        if n >= self.per_reporter:
            return  # this network has had its say in this bucket this period
        if n == 0:
            if self._entries >= MAX_ENTRIES:
                return
            self._entries += 1
        reporters[reporter] = n + 1

    def _user(self, key: str, report_os: str, version: str, network: str, who: bytes) -> None:
        digest = self._digest(key)
        if digest in self._users:
            return
        if self._users_by[who] >= self.per_reporter or self._entries >= MAX_ENTRIES:
            return
        self._users.add(digest)
        self._users_by[who] += 1
        self._entries += 1
        for bucket_key in user_keys(report_os, version, self._country(network)):
            self._count(bucket_key, who)

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
        who = self._digest(network)
        for key in call_keys(report):
            self._count(key, who)
        self._user(report.daily_id or network, report.os, report.client_version, network, who)

    def add_feedback(self, feedback: p.FeedbackReport, network: str) -> None:
        self._rotate()
        who = self._digest(network)
        for key in feedback_keys(feedback):
            self._count(key, who)

    def add_crash(self, crash: p.CrashReport, network: str) -> None:
        self._rotate()
        who = self._digest(network)
        for key in crash_keys(crash):
            self._count(key, who)

    # ------------------------------------------------------------ async seam
    # The app goes through these two, so an aggregator kept in a shared store
    # (server/telemetry_shared.py) can do its I/O; here they are the plain calls.
    async def ingest(self, report: p.CallReport | p.FeedbackReport | p.CrashReport,
                     network: str) -> None:  # fmt: skip
        """Count one report of any kind; ``network`` is the *truncated* address."""
        if isinstance(report, p.CallReport):
            self.add_call(report, network)
        elif isinstance(report, p.FeedbackReport):
            self.add_feedback(report, network)
        else:
            self.add_crash(report, network)

    async def refresh(self) -> None:
        """Bring :attr:`published` up to date (before :meth:`stats` or :meth:`collect`)."""

    # ------------------------------------------------------------ the open period
    def received(self, group: str) -> dict[str, Counter[str]]:
        """The open period's report counts (per-reporter cap applied) in ``group``.

        For tests and debugging in-process only: never published, never served."""
        out: dict[str, Counter[str]] = {name: Counter() for name in GROUPS[group]}
        for (g, name, label), reporters in self._buckets.items():
            if g == group:
                out[name][label] += sum(reporters.values())
        return out

    @property
    def calls(self) -> dict[str, Counter[str]]:
        return self.received("calls")

    @property
    def quality(self) -> dict[str, Counter[str]]:
        return self.received("quality")

    @property
    def users(self) -> dict[str, Counter[str]]:
        return self.received("users")

    @property
    def feedback(self) -> dict[str, Counter[str]]:
        return self.received("feedback")

    @property
    def crashes(self) -> dict[str, Counter[str]]:
        return self.received("crashes")

    # ------------------------------------------------------------ exposure
    def stats(self) -> dict[str, Any]:
        """``GET /stats``: the published sums of closed periods (never the open one)."""
        self._rotate()

        def show(group: str) -> dict[str, dict[str, int]]:
            return {name: dict(sorted(c.items())) for name, c in self.published[group].items()}

        return {
            "period_s": self.period,
            "published_through": self.closed_through or None,
            "min_bucket": self.min_bucket,
            "epsilon": None if math.isinf(self.epsilon) else self.epsilon,
            "reports_per_reporter": self.per_reporter,
            "calls": show("calls"),
            "quality": show("quality"),
            "users": {"daily": dict(sorted(self.daily_users.items())), **show("users")},
            "feedback": show("feedback"),
            "crashes": show("crashes"),
        }

    def collect(self) -> Iterator[Metric]:
        """Metric families for ``/metrics`` (a ``prometheus_client`` collector):
        the same published values as :meth:`stats`, as gauges."""
        stats = self.stats()
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
                family = GaugeMetricFamily(
                    f"{prefix}_{name}",
                    f"Telemetry {group} by {name}: sums over closed periods, noised "
                    "(small buckets hidden).",
                    labels=[label],
                )
                for key, value in values.items():
                    family.add_metric([key], value)
                yield family


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


__all__ = [
    "BUCKETS",
    "EPSILON",
    "MIN_BUCKET",
    "PERIOD",
    "PER_REPORTER",
    "TelemetryAggregator",
    "bucket",
    "log_crash",
]
