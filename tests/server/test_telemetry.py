"""The server's telemetry: strict intake, truncated IPs, aggregates only, small
buckets hidden, a daily salt that rotates (P6, P7). Real app on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp.test_utils import TestServer

from hello_tui.server.app import TELEMETRY, create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.server.telemetry import TelemetryAggregator, bucket
from hello_tui.signaling import protocol as p

DAY = 24 * 3600


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


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, TelemetryAggregator]]:
    aggregator = TelemetryAggregator()
    app = create_app(ServerSettings(rate=0.0), telemetry=aggregator)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    assert app[TELEMETRY] is aggregator
    yield str(srv.make_url("")).rstrip("/"), aggregator
    await srv.close()


async def post(url: str, data: bytes, path: str = "/telemetry") -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.post(url + path, data=data) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def get(url: str, path: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url + path) as resp:
        assert resp.status == 200
        return await resp.text()


async def test_a_report_is_counted(server: tuple[str, TelemetryAggregator]) -> None:
    url, agg = server
    status, reply = await post(url, body(report()))
    assert (status, reply) == (202, {"status": "ok"})
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
async def test_bad_input_is_a_400_with_one_line(
    server: tuple[str, TelemetryAggregator], data: bytes
) -> None:
    url, agg = server
    status, reply = await post(url, data)
    assert status == 400
    assert set(reply) == {"error"} and "\n" not in reply["error"]
    assert sum(agg.calls["outcome"].values()) == 0


async def test_oversized_body_is_refused(server: tuple[str, TelemetryAggregator]) -> None:
    url, _ = server
    status, reply = await post(url, b"{" + b" " * p.MAX_TELEMETRY_BYTES + b"}")
    assert status == 413 and "error" in reply


async def test_small_buckets_are_hidden_until_five(
    server: tuple[str, TelemetryAggregator],
) -> None:
    url, _ = server
    for i in range(3):
        assert (await post(url, body(report(i))))[0] == 202
    await post(url, body(report(99, outcome="failed", reason="media-fail", stage="connecting")))
    stats = json.loads(await get(url, "/stats"))  # 3 completed, 1 failed, 4 users
    assert stats["min_bucket"] == 5
    assert stats["calls"]["outcome"] == {}
    assert stats["users"]["daily"] == {} and stats["users"]["os"] == {}
    metrics = await get(url, "/metrics")
    assert "hello_telemetry_calls_outcome{" not in metrics
    assert "hello_calls_total" in metrics  # the server's own metrics are still there

    await post(url, body(report(3)))  # 4 completed, 5 users
    stats = json.loads(await get(url, "/stats"))
    assert stats["calls"]["outcome"] == {}
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    assert stats["users"]["daily"] == {day: 5}

    await post(url, body(report(4)))  # 5 completed
    stats = json.loads(await get(url, "/stats"))
    assert stats["calls"]["outcome"] == {"completed": 5}  # "failed" (1) stays hidden
    assert stats["calls"]["network_type"] == {"wifi": 6}
    assert stats["calls"]["failed_stage"] == {}
    assert stats["quality"]["mos_mean"] == {"4.3+": 6}
    assert stats["users"]["daily"] == {day: 6}
    assert stats["users"]["os"] == {"linux": 6}
    assert stats["users"]["client_version"] == {"0.1.0": 6}
    assert stats["users"]["country"] == {}  # no GeoIP database configured
    metrics = await get(url, "/metrics")
    assert 'hello_telemetry_calls_outcome{outcome="completed"} 5' in metrics
    assert 'outcome="failed"' not in metrics
    assert 'hello_telemetry_quality_mos_mean{bucket="4.3+"} 6' in metrics
    assert f'hello_telemetry_users_daily{{day="{day}"}} 6' in metrics


async def test_feedback_and_crashes_are_aggregated(
    server: tuple[str, TelemetryAggregator], caplog: pytest.LogCaptureFixture
) -> None:
    url, agg = server
    fb = p.FeedbackReport(rating="sad", reasons=["audio-quality"], client_version="0.1.0",
                          os="linux", hour="2026-11-26T04")  # fmt: skip
    for _ in range(5):
        assert (await post(url, body(fb), "/feedback"))[0] == 202
    bad = body(fb).replace(b'"audio-quality"', b'"my neighbour is loud"')
    assert (await post(url, bad, "/feedback"))[0] == 400
    crash = p.CrashReport(client_version="0.1.0", os="linux", python="3.12.1",
                          hour="2026-11-26T04", error="KeyError", traceback="Tb")  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert (await post(url, body(crash), "/crash"))[0] == 202
    stats = json.loads(await get(url, "/stats"))
    assert stats["feedback"] == {"rating": {"sad": 5}, "reason": {"audio-quality": 5}}
    assert stats["crashes"]["error"] == {}  # one crash: hidden
    assert agg.crashes["error"] == {"KeyError": 1}
    assert any("crash report: KeyError" in r.getMessage() for r in caplog.records)


async def test_ip_is_truncated_before_anything_is_kept_or_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def country_of(address: str) -> str | None:
        seen.append(address)
        return "FR"

    aggregator = TelemetryAggregator(country_of=country_of)
    app = create_app(ServerSettings(rate=0.0), telemetry=aggregator)
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
            stats = await get(url, "/stats")
            await get(url, "/metrics")
    finally:
        await srv.close()
    assert seen == ["127.0.0.0"] * 5  # the GeoIP hook only ever sees the /24
    assert json.loads(stats)["users"]["country"] == {"FR": 5}
    assert caplog.records  # the access log did log these requests...
    for record in caplog.records:
        assert "127.0.0.1" not in record.getMessage()  # ...with the address truncated
    state = repr(vars(aggregator)) + repr(aggregator.stats())
    assert "127.0.0.1" not in state and "127.0.0.0" not in state
    assert f"{0:032x}" not in state  # daily ids are hashed, never kept


def test_ipv6_networks_reach_the_geoip_hook_as_48s() -> None:
    seen: list[str] = []
    agg = TelemetryAggregator(country_of=lambda a: seen.append(a) or None)
    agg.add_call(report(), "2001:db8:abcd::/48")
    assert seen == ["2001:db8:abcd::"]


def test_daily_salt_rotates_and_the_day_becomes_a_count() -> None:
    day1 = datetime(2026, 11, 26, 23, 0, tzinfo=UTC).timestamp()
    clock = Clock(day1)
    agg = TelemetryAggregator(clock=clock)
    for i in range(6):
        agg.add_call(report(i), "192.0.2.0/24")
    agg.add_call(report(0), "192.0.2.0/24")  # the same user again: not counted twice
    salt1, hashes1 = agg._salt, set(agg._today)
    assert len(hashes1) == 6
    assert agg.stats()["users"]["daily"] == {"2026-11-26": 6}

    clock.now = day1 + 2 * 3600  # past midnight UTC
    for i in range(5):
        agg.add_call(report(i), "192.0.2.0/24")  # same ids (a real client's change daily)
    assert agg._salt != salt1  # a new salt; the old one is gone
    assert not (set(agg._today) & hashes1)  # the same keys hash differently
    assert agg.stats()["users"]["daily"] == {"2026-11-26": 6, "2026-11-27": 5}
    assert "salt1" not in repr(vars(agg)) and salt1 not in vars(agg).values()


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
