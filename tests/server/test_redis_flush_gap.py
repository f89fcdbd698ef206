"""``HELLO_REDIS_FLUSH_GAP_US``: at most one batch written on the hot connection
per gap, so commands queued in several loop turns soon after a write leave
together; every command still gets its own reply, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hello_tui.server.store.redis import RedisStore
from tests.services.redis import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


async def _batches(url: str, gap_us: str, monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    monkeypatch.setenv("HELLO_REDIS_FLUSH_GAP_US", gap_us)
    prefix = f"g{time.monotonic_ns()}:"
    store = RedisStore(url, prefix=prefix)
    try:
        assert await store._cmd("PING") == b"PONG"  # connected
        assert await store._cmd("SET", f"{prefix}k0", "v0") == b"OK"  # a batch just written
        assert store._resp is not None
        batches: list[list[Any]] = []
        submit = store._resp.submit

        def counting(batch: Any) -> None:
            batches.append([c for c, _ in batch])
            submit(batch)

        store._resp.submit = counting  # type: ignore[method-assign]
        futures = []
        for i in (1, 2):  # two loop turns: without a gap the first leaves alone
            futures.append(store._cmd("SET", f"{prefix}k{i}", f"v{i}"))
            await asyncio.sleep(0)
        futures.append(store._cmd("MGET", *(f"{prefix}k{i}" for i in range(3))))
        replies = await asyncio.gather(*futures)
        assert replies == [b"OK", b"OK", [b"v0", b"v1", b"v2"]]
        return batches
    finally:
        await store.close()


async def test_commands_after_a_write_share_a_batch(
    redis_srv: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(await _batches(redis_srv.url, "0", monkeypatch)) >= 2  # the default
    batches = await _batches(redis_srv.url, "200000", monkeypatch)
    assert [len(b) for b in batches] == [3]
