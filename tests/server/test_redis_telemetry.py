"""Telemetry aggregates shared through Redis: two instances count one open period.

Reports reach two real instances (in process) from six loopback /24s
(127.0.N.1: a different truncated network each). Across instances a network
still adds at most three reports to a bucket, nothing is published while the
period is open, either instance publishes it once it is over, and both then
serve the same sums. Redis holds no address, only salted hashes under TTLs,
and nothing of the period once it is published. Exact counts: noise off
through the constructor, as in test_telemetry.py.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp import web

from hello_tui.server.app import create_app, runner_options
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore
from hello_tui.server.telemetry_shared import SharedTelemetry
from tests.server.test_telemetry import TOKEN, Clock, body, report
from tests.services.redis import RedisServer, redis_server

PERIOD = 3600


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


class Two:
    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.prefix = f"t{time.monotonic_ns()}:"
        # Real time (Redis expires keys by its own clock), early in a period.
        self.clock = Clock(time.time() // PERIOD * PERIOD + 60)
        self.runners: list[web.AppRunner] = []
        self.urls: list[str] = []

    async def start(self) -> None:
        for _ in range(2):
            settings = ServerSettings(rate=0.0, admin_token=TOKEN.encode(), shared_secret=True)
            store = RedisStore(self.redis_url, prefix=self.prefix)
            telemetry = SharedTelemetry(store, clock=self.clock, epsilon=math.inf, period=PERIOD)
            app = create_app(settings, store, telemetry=telemetry)
            runner = web.AppRunner(app, **runner_options(settings))
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            host, port = runner.addresses[0][:2]
            self.runners.append(runner)
            self.urls.append(f"http://{host}:{port}")

    async def post(self, i: int, network: int, data: bytes) -> None:
        """POST a report to instance ``i`` from 127.0.``network``.1."""
        connector = aiohttp.TCPConnector(local_addr=(f"127.0.{network}.1", 0))
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.post(self.urls[i] + "/telemetry", data=data,
                      headers={"Content-Type": "application/json"}) as resp,
        ):  # fmt: skip
            assert resp.status == 202, await resp.text()

    async def stats(self, i: int) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.urls[i] + "/stats", headers=headers) as resp,
        ):
            assert resp.status == 200
            return dict(json.loads(await resp.text()))

    async def contents(self) -> dict[str, tuple[bytes, int]]:
        r = aioredis.Redis.from_url(self.redis_url)
        try:
            out = {}
            async for raw in r.scan_iter(match=self.prefix + "*"):
                key = raw.decode()
                out[key] = (await r.dump(key) or b"", await r.pttl(key))
            return out
        finally:
            await r.aclose()

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


@pytest.fixture
async def two(redis_srv: RedisServer) -> AsyncIterator[Two]:
    pair = Two(redis_srv.url)
    await pair.start()
    yield pair
    await pair.close()


async def test_two_instances_count_one_period(two: Two) -> None:
    for n in range(1, 7):  # six networks, six users, alternating instances
        await two.post(n % 2, n, body(report(n)))
    for i in range(4):  # network 1 again, on both instances: 3 reports at most in all
        await two.post(i % 2, 1, body(report(1)))
    for i in (0, 1):
        assert (await two.stats(i))["calls"]["outcome"] == {}  # the open period: nothing

    contents = await two.contents()
    blob = b"".join(k.encode() + v for k, (v, _) in contents.items())
    for n in range(1, 7):
        for form in (f"127.0.{n}.1", f"127.0.{n}.0/24", f"127.0.{n}.0"):
            assert form.encode() not in blob, f"Redis holds {form}"
    period_keys = {k: ttl for k, (_, ttl) in contents.items() if "{tel:" in k}
    assert period_keys and all(0 < ttl <= 2 * PERIOD * 1000 for ttl in period_keys.values())
    assert all(ttl > 0 for _, ttl in contents.values())

    two.clock.now += PERIOD  # the period is over
    stats = await two.stats(1)
    assert stats["calls"]["outcome"] == {"completed": 6 - 1 + 3}
    assert list(stats["users"]["daily"].values()) == [6]
    assert stats["published_through"] is not None
    assert await two.stats(0) == stats  # the other instance serves the same sums
    two.clock.now += 1
    assert await two.stats(0) == stats  # published once: no second close

    left = await two.contents()
    # Salt, sets and counts are gone; the "closed" marks stay (no second close).
    assert all(k.endswith("}closed") for k in left if "{tel:" in k)
    others = sorted(k.removeprefix(two.prefix) for k in left if "{tel:" not in k)
    # ("alive": the instances' beats, server/reaper.py: not telemetry's.)
    assert [k for k in others if k != "alive"] == [
        "telemetry:daily", "telemetry:published", "telemetry:through"
    ]  # fmt: skip
    assert all(ttl > 0 for _, ttl in left.values())


async def test_a_small_bucket_stays_hidden_across_instances(two: Two) -> None:
    for n in range(1, 5):  # four networks: under the threshold of five
        await two.post(n % 2, n, body(report(n)))
    two.clock.now += PERIOD
    stats = await two.stats(0)
    assert stats["calls"]["outcome"] == {}
    assert stats["users"]["daily"] == {}
