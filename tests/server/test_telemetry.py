"""The server's telemetry: JSON-only strict intake, truncated IPs, aggregates of
closed periods only, small buckets hidden, a salt per period (P6, P7). Real app on
127.0.0.1; exact counts here (noise off through the constructor), the noise and
the differencing attack in test_telemetry_privacy.py."""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from hello_tui.server.app import TELEMETRY, create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.server.telemetry import DAYS_KEPT, MAX_BUCKETS, TelemetryAggregator, bucket
from hello_tui.signaling import protocol as p

DAY = 24 * 3600
TOKEN = "test-admin-token-0123456789"
NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC).timestamp()


def report(i: int = 0, **overrides: Any) -> p.CallReport:
    quality = p.QualityReport(
        samples=10, rtt_ms_p50=12.0, rtt_ms_p95=20.0, jitter_ms_p50=2.0, jitter_ms_p95=5.0,
        fraction_lost_p50=0.0, fraction_lost_p95=0.02, packets_received=500, mos_mean=4.39,
        mos_min=4.2, codec="opus/48000/2", candidate_type="host",
    )  # fmt: skip
    fields: dict[str, Any] = {
        "daily_id": f"{i:032x}",
        "client_version": "0.1.0",
        "os": "linux",
        "hour": "2026-11-26T04",
        "direction": "outgoing",
        "outcome": "completed",
        "reason": "hangup",
        "stage": "connected",
        "duration_s": 42.0,
        "setup_ms": 80.0,
        "network_type": "wifi",
        "quality": quality,
    }
    fields.update(overrides)
    return p.CallReport(**fields)


def body(value: Any) -> bytes:
    return p.encode_body(value)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Server:
    url: str
    agg: TelemetryAggregator
    clock: Clock


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    clock = Clock(NOON)
    aggregator = TelemetryAggregator(clock=clock, epsilon=math.inf)  # exact counts here
    app = create_app(ServerSettings(rate=0.0, admin_token=TOKEN.encode()), telemetry=aggregator)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    assert app[TELEMETRY] is aggregator
    yield Server(str(srv.make_url("")).rstrip("/"), aggregator, clock)
    await srv.close()


async def post(
    url: str,
    data: bytes,
    path: str = "/telemetry",
    content_type: str | None = "application/json",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    sent = {**({"Content-Type": content_type} if content_type else {}), **(headers or {})}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + path, data=data, headers=sent) as resp,
    ):
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def get(url: str, path: str) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http, http.get(url + path, headers=headers) as resp:
        assert resp.status == 200
        return await resp.text()


async def stats_of(url: str) -> dict[str, Any]:
    return json.loads(await get(url, "/stats"))


def net(n: int) -> str:
    """The truncated network of the n-th (simulated) sender."""
    return f"192.0.{n}.0/24"


async def test_a_report_is_counted(server: Server) -> None:
    status, reply = await post(server.url, body(report()))
    assert (status, reply) == (202, {"status": "ok"})
    agg = server.agg  # the open period's counts, in this process only
    assert agg.calls["outcome"] == {"completed": 1}
    assert agg.quality["mos_mean"] == {"4.3+": 1}
    assert agg.quality["rtt_ms_p50"] == {"0-50": 1}


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"{}",
        b'{"v": 1}',
        body(report()).replace(b'"os":"linux"', b'"os":"plan9"'),
        body(report()).replace(b"{", b'{"account":"alice",', 1),  # unknown field
        body(report()).replace(b'"daily_id":"', b'"daily_id":"x', 1),
    ],
)
async def test_bad_input_is_a_400_with_one_line(server: Server, data: bytes) -> None:
    status, reply = await post(server.url, data)
    assert status == 400
    assert set(reply) == {"error"} and "\n" not in reply["error"]
    assert sum(server.agg.calls["outcome"].values()) == 0


async def test_version_1_and_2_reports_are_accepted_sharing_counted(server: Server) -> None:
    old = body(report())  # a version 1 client's bytes: no shared_s
    assert b'"v":1' in old and b"shared_s" not in old
    assert (await post(server.url, old))[0] == 202
    status, _ = await post(server.url, body(report(1, v=2, shared_s=75.5)))
    assert status == 202
    status, _ = await post(server.url, body(report(2, v=2)))  # version 2, nothing shared
    assert status == 202
    agg = server.agg
    assert agg.calls["outcome"] == {"completed": 3}
    assert agg.calls["shared"] == {"terminal": 1}
    assert agg.quality["shared_s"] == {"60-300": 1}
    for bad in (
        old.replace(b"{", b'{"shared_s":3.0,', 1),  # shared_s needs v 2
        old.replace(b'"v":1', b'"v":3'),  # a version this server does not know
        body(report(3, v=2, shared_s=-1.0)),
    ):
        status, reply = await post(server.url, bad)
        assert status == 400 and "\n" not in reply["error"], bad
    assert sum(agg.calls["outcome"].values()) == 3


async def test_oversized_body_is_refused(server: Server) -> None:
    status, reply = await post(server.url, b"{" + b" " * p.MAX_TELEMETRY_BYTES + b"}")
    assert status == 413 and "error" in reply


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",  # <form enctype="text/plain"> or fetch(no-cors): no preflight
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,  # aiohttp then sends application/octet-stream
    ],
)
async def test_intake_is_json_only(server: Server, content_type: str | None) -> None:
    """A cross-site form POST (no CORS preflight) with a valid report is refused."""
    fb = p.FeedbackReport(rating="sad", client_version="0.1.0", os="linux",
                          hour="2026-11-26T04")  # fmt: skip
    crash = p.CrashReport(client_version="0.1.0", os="linux", python="3.12.1",
                          hour="2026-11-26T04", error="KeyError")  # fmt: skip
    evil = {"Origin": "https://evil.example"}
    for path, value in (("/telemetry", report()), ("/feedback", fb), ("/crash", crash)):
        status, reply = await post(server.url, body(value), path, content_type, evil)
        assert status == 415, path
        assert reply == {"error": "Content-Type must be application/json"}
    assert server.agg._buckets == {}  # nothing counted
    json_utf8 = "Application/JSON; charset=utf-8"
    status, _ = await post(server.url, body(report()), content_type=json_utf8)
    assert status == 202  # media types are case-insensitive; parameters are fine


async def test_the_open_period_is_never_published(server: Server) -> None:
    url, agg = server.url, server.agg
    for i in range(3):  # over HTTP: all from 127.0.0.0/24, one reporter
        assert (await post(url, body(report(i))))[0] == 202
    for n in range(1, 5):  # four more networks: five reporters, seven reports
        agg.add_call(report(10 + n), net(n))
    agg.add_call(report(99, outcome="failed", reason="media-fail", stage="connecting"), net(9))
    stats = await stats_of(url)
    assert stats["published_through"] is None
    for group in ("calls", "quality", "feedback", "crashes"):
        assert all(values == {} for values in stats[group].values()), group
    assert all(values == {} for values in stats["users"].values())
    metrics = await get(url, "/metrics")
    assert "hello_telemetry_calls_outcome{" not in metrics
    assert "hello_calls_total" in metrics  # the server's own metrics are still there

    server.clock.now += DAY  # the period (a UTC day) closes
    stats = await stats_of(url)
    assert stats["published_through"] == "2026-11-26"
    assert (stats["period_s"], stats["min_bucket"], stats["epsilon"]) == (DAY, 5, None)
    assert stats["calls"]["outcome"] == {"completed": 7}  # "failed" (1 reporter) stays hidden
    assert stats["calls"]["network_type"] == {"wifi": 8}
    assert stats["calls"]["failed_stage"] == {}
    assert stats["quality"]["mos_mean"] == {"4.3+": 8}
    assert stats["users"]["daily"] == {"2026-11-26": 8}  # 3 daily ids from 127.0.0.0/24 + 5
    assert stats["users"]["os"] == {"linux": 8}
    assert stats["users"]["client_version"] == {"0.1.0": 8}
    assert stats["users"]["country"] == {}  # no GeoIP database configured
    metrics = await get(url, "/metrics")
    assert 'hello_telemetry_calls_outcome{outcome="completed"} 7.0' in metrics
    assert 'outcome="failed"' not in metrics
    assert 'hello_telemetry_quality_mos_mean{bucket="4.3+"} 8.0' in metrics
    assert 'hello_telemetry_users_daily{day="2026-11-26"} 8.0' in metrics

    # What was published is fixed: new reports (the next open period) and
    # further reads change nothing until that period closes too.
    for n in range(10, 20):
        agg.add_call(report(n), net(n))
    assert (await post(url, body(report(50))))[0] == 202
    assert await stats_of(url) == stats
    server.clock.now += DAY
    later = await stats_of(url)
    assert later["calls"]["outcome"] == {"completed": 18}  # a running sum: 7 + 11
    assert later["users"]["daily"] == {"2026-11-26": 8, "2026-11-27": 11}


def test_k_counts_distinct_networks_and_each_adds_at_most_three() -> None:
    clock = Clock(NOON)
    agg = TelemetryAggregator(clock=clock, epsilon=math.inf)
    for i in range(20):  # one network, twenty daily ids: one reporter
        agg.add_call(report(i, network_type="cellular"), net(1))
    key = ("calls", "network_type", "cellular")
    assert len(agg._buckets[key]) == 1 and agg.calls["network_type"] == {"cellular": 3}
    assert len(agg._users) == 3  # new users per network are capped as well
    for n in range(2, 6):  # four more networks with ten reports each
        for i in range(10):
            agg.add_call(report(100 * n + i), net(n))
    clock.now += DAY
    stats = agg.stats()
    assert stats["calls"]["network_type"] == {}  # cellular: 1 reporter, wifi: 4, both hidden
    assert stats["calls"]["outcome"] == {"completed": 15}  # 5 networks x 3
    assert stats["users"]["daily"] == {"2026-11-26": 15}


async def test_feedback_and_crashes_are_aggregated(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    url, agg = server.url, server.agg
    fb = p.FeedbackReport(rating="sad", reasons=["audio-quality"], client_version="0.1.0",
                          os="linux", hour="2026-11-26T04")  # fmt: skip
    assert (await post(url, body(fb), "/feedback"))[0] == 202
    for n in range(1, 5):
        agg.add_feedback(fb, net(n))
    bad = body(fb).replace(b'"audio-quality"', b'"my neighbour is loud"')
    assert (await post(url, bad, "/feedback"))[0] == 400
    crash = p.CrashReport(client_version="0.1.0", os="linux", python="3.12.1",
                          hour="2026-11-26T04", error="KeyError", traceback="Tb")  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert (await post(url, body(crash), "/crash"))[0] == 202
    assert agg.crashes["error"] == {"KeyError": 1}
    assert any("crash report: KeyError" in r.getMessage() for r in caplog.records)
    server.clock.now += DAY
    stats = await stats_of(url)
    assert stats["feedback"] == {"rating": {"sad": 5}, "reason": {"audio-quality": 5}}
    assert stats["crashes"]["error"] == {}  # one crash: hidden
    assert agg.crashes["error"] == {}  # and the closed period's counts are gone


async def test_ip_is_truncated_before_anything_is_kept_or_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def country_of(address: str) -> str | None:
        seen.append(address)
        return "FR"

    clock = Clock(NOON)
    aggregator = TelemetryAggregator(clock=clock, country_of=country_of, epsilon=math.inf)
    app = create_app(ServerSettings(rate=0.0, admin_token=TOKEN.encode()), telemetry=aggregator)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    url = str(srv.make_url("")).rstrip("/")
    try:
        with caplog.at_level(logging.DEBUG):
            for i in range(5):
                await post(url, body(report(i)))
            await post(url, b"garbage")
            crash = p.CrashReport(client_version="0.1.0", os="linux", python="3.12.1",
                                  hour="2026-11-26T04", error="OSError")  # fmt: skip
            await post(url, body(crash), "/crash")
            assert seen == ["127.0.0.0"] * 3  # the GeoIP hook only sees the /24 (3 users max)
            state = repr(vars(aggregator))
            assert "127.0.0.1" not in state and "127.0.0.0" not in state  # reporters: HMACs
            assert f"{0:032x}" not in state  # daily ids are hashed, never kept
            for n in range(1, 5):  # four more networks: the bucket reaches five reporters
                aggregator.add_call(report(10 + n), net(n))
            clock.now += DAY
            stats = await get(url, "/stats")
            await get(url, "/metrics")
    finally:
        await srv.close()
    assert json.loads(stats)["users"]["country"] == {"FR": 7}
    assert caplog.records  # the access log did log these requests...
    for record in caplog.records:
        assert "127.0.0.1" not in record.getMessage()  # ...with the address truncated
    state = repr(vars(aggregator)) + repr(aggregator.stats())
    assert "127.0.0.1" not in state and "127.0.0.0" not in state


def test_ipv6_networks_reach_the_geoip_hook_as_48s() -> None:
    seen: list[str] = []
    agg = TelemetryAggregator(country_of=lambda a: seen.append(a) or None)
    agg.add_call(report(), "2001:db8:abcd::/48")
    assert seen == ["2001:db8:abcd::"]


def test_the_salt_and_the_sets_are_dropped_when_the_period_closes() -> None:
    day1 = datetime(2026, 11, 26, 23, 0, tzinfo=UTC).timestamp()
    clock = Clock(day1)
    agg = TelemetryAggregator(clock=clock, epsilon=math.inf)
    for i in range(6):
        agg.add_call(report(i), net(i))
    agg.add_call(report(0), net(0))  # the same user again: not counted twice
    salt1, users1 = agg._salt, set(agg._users)
    reporters1 = {r for reporters in agg._buckets.values() for r in reporters}
    assert len(users1) == 6 and len(reporters1) == 6
    assert agg.stats()["users"]["daily"] == {}  # the open day is not published

    clock.now = day1 + 2 * 3600  # past midnight UTC
    for i in range(5):
        agg.add_call(report(i), net(i))  # same ids and networks (real clients' ids change daily)
    assert agg._salt != salt1  # a new salt; the old one is gone
    assert not (agg._users & users1)  # the same keys hash differently
    assert not ({r for reporters in agg._buckets.values() for r in reporters} & reporters1)
    assert agg.stats()["users"]["daily"] == {"2026-11-26": 6}
    assert salt1 not in vars(agg).values() and salt1 not in repr(vars(agg)).encode()
    clock.now += DAY
    assert agg.stats()["users"]["daily"] == {"2026-11-26": 6, "2026-11-27": 5}


def test_only_the_last_31_periods_of_users_are_kept() -> None:
    clock = Clock(NOON)
    agg = TelemetryAggregator(clock=clock, epsilon=math.inf)
    for _ in range(40):
        for n in range(5):
            agg.add_call(report(n), net(n))
        clock.now += DAY
    daily = agg.stats()["users"]["daily"]
    assert len(daily) == DAYS_KEPT and min(daily) == "2026-12-05" and set(daily.values()) == {5}


def test_period_and_epsilon_come_from_the_settings() -> None:
    app = create_app(ServerSettings(telemetry_period=3600, telemetry_epsilon=0.5))
    agg = app[TELEMETRY]
    assert (agg.period, agg.epsilon, agg.scale) == (3600, 0.5, 6.0)
    assert isinstance(agg.rng, random.SystemRandom)  # noise from the OS's CSPRNG
    assert agg.label(int(NOON // 3600)) == "2026-11-26T12:00Z"
    with pytest.raises(ValueError):
        TelemetryAggregator(epsilon=0.0)
    with pytest.raises(ValueError):
        TelemetryAggregator(epsilon=math.nan)


def test_the_open_period_is_bounded_in_memory() -> None:
    agg = TelemetryAggregator(epsilon=math.inf)
    for i in range(MAX_BUCKETS + 500):  # client versions are a pattern, not a closed set
        crash = p.CrashReport(client_version=f"1.{i}", os="linux", python="3.12.1",
                              hour="2026-11-26T04", error="KeyError")  # fmt: skip
        agg.add_crash(crash, net(0))
    assert len(agg._buckets) == MAX_BUCKETS


def test_buckets() -> None:
    edges = (0.0, 50.0, 100.0)
    assert [bucket(v, edges) for v in (-1, 0, 49.9, 50, 100, 1e9)] == [
        "<0", "0-50", "0-50", "50-100", "100+", "100+",
    ]  # fmt: skip


def test_reports_cannot_carry_free_text() -> None:
    # Every string field is a closed set or a tight pattern: a name does not fit.
    for field, value in (("client_version", "alice"), ("hour", "alice"), ("codec", "alice")):
        data = msgspec.to_builtins(report())
        target = data["quality"] if field == "codec" else data
        target[field] = value
        with pytest.raises(msgspec.ValidationError):
            msgspec.convert(data, p.CallReport)
