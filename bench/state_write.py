"""Does saving the server's state stall the event loop? (bar: never > 5 ms at 40k rooms)

A loop-lag probe ticks every 1 ms (``asyncio.sleep(0.001)``; lag = how late
the tick wakes up) while a :class:`PersistentMemoryStore` holding 40,000
rooms and 1,000 accounts saves:

* **steady**: 200 room changes a second (as joins would make) for 5 s: one
  flush a second of ~200 dirty rows;
* **bulk**: every one of the 40,000 rooms changes (in steps of 100, as a
  burst of messages would), then one flush writes all 40,000 rows.

The load itself runs in small steps, so what the probe sees beyond ~1 ms is
the store. For comparison, ``before`` is the previous design: one msgpack
snapshot of everything, written atomically on the event loop (how long one
such save blocks the loop at 40k rooms).

Run: ``.venv/bin/python bench/state_write.py [--runs 5] [--rooms 40000]``.
Prints medians over the runs of each phase's max and p99 lag; exits 1 if a
median max lag is over the bar.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import msgspec

from hello_tui.server.records import AccountRecord, RoomRecord
from hello_tui.server.store.persistent import SLICE, PersistentMemoryStore
from hello_tui.util.atomic import atomic_write_bytes

BAR_MS = 5.0
TICK = 0.001
STEP = 20  # changes per loop step in the load


class Probe:
    """Lag of a 1 ms ticker, in ms, while running."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(TICK)
            self.lags.append((loop.time() - start - TICK) * 1000)

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> tuple[float, float]:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        lags = sorted(self.lags)
        return lags[-1], lags[int(len(lags) * 0.99)]


def room(i: int, now: float) -> RoomRecord:
    # A typical encrypted name: a short name pads to 32 bytes → 82 characters.
    return RoomRecord(
        token=secrets.token_urlsafe(16),
        name=secrets.token_urlsafe(61)[:82],
        owner=f"a:{i % 1000:064x}",
        created=int(now),
        expires=int(now) + 8 * 7 * 86400,
        ttl=8 * 7 * 86400,
        until=now + 8 * 7 * 86400 + 3600,
    )


async def settled(store: PersistentMemoryStore) -> None:
    while store._dirty or store._timer is not None or store._flush_task is not None:
        await asyncio.sleep(0.01)


async def touch(store: PersistentMemoryStore, tokens: list[str], now: float) -> None:
    def later(r: RoomRecord | None) -> RoomRecord | None:
        assert r is not None
        return msgspec.structs.replace(r, expires=r.expires + 1, until=r.until + 1)

    for token in tokens:
        await store.update_room(token, later)


async def one_run(rooms: int, tmp: Path) -> dict[str, float]:
    path = tmp / "state"
    store = PersistentMemoryStore(path)
    now = time.time()
    for i in range(1000):
        await store.create_account(
            f"{i:064x}", AccountRecord(public_key="k" * 43, created=int(now), until=now + 1e7)
        )
    tokens: list[str] = []
    for start in range(0, rooms, STEP):
        for i in range(start, min(start + STEP, rooms)):
            record = room(i, now)
            tokens.append(record.token)
            await store.put_room(record)
        await asyncio.sleep(0)
    await settled(store)  # the initial fill is written
    out: dict[str, float] = {}
    probe = Probe()
    # The store's own steps on the loop (encoding a slice of dirty rows), timed.
    slice_ms: list[float] = []
    slice_cpu_ms: list[float] = []
    encode = store._slice

    def timed(keys: Iterable[str]) -> tuple[bytes, bytes]:
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return encode(keys)
        finally:
            slice_ms.append((time.perf_counter() - start) * 1000)
            slice_cpu_ms.append((time.thread_time() - cpu) * 1000)

    store._slice = timed  # type: ignore[method-assign]

    # idle: the noise floor of this machine (nothing happens)
    probe.start()
    await asyncio.sleep(3.0)
    out["idle_max"], out["idle_p99"] = await probe.stop()

    # steady: 200 changes a second, in steps of 10 every 50 ms, for 5 s
    probe.start()
    end = time.monotonic() + 5.0
    while time.monotonic() < end:
        await touch(store, [secrets.choice(tokens) for _ in range(10)], now)
        await asyncio.sleep(0.05)
    await settled(store)
    out["steady_max"], out["steady_p99"] = await probe.stop()

    # bulk: every room changes, then one flush of all of them
    probe.start()
    for start in range(0, len(tokens), STEP):
        await touch(store, tokens[start : start + STEP], now)
        await asyncio.sleep(0)
    flush_start = time.monotonic()
    await settled(store)
    out["bulk_flush_s"] = time.monotonic() - flush_start
    out["bulk_max"], out["bulk_p99"] = await probe.stop()
    out["slice_max"] = max(slice_ms)
    out["slice_cpu_max"] = max(slice_cpu_ms)
    await store.close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM records").fetchone()[0] == rooms + 1000
    db.close()

    # before: the previous design's save (snapshot + atomic write, on the loop)
    snapshot = [msgspec.msgpack.decode(data) for _, data in store._records.values()]
    start = time.perf_counter()
    atomic_write_bytes(tmp / "legacy-state", msgspec.msgpack.encode(snapshot))
    out["before_ms"] = (time.perf_counter() - start) * 1000
    return out


async def main_async(runs: int, rooms: int) -> int:
    results: list[dict[str, float]] = []
    for run in range(runs):
        with tempfile.TemporaryDirectory(prefix="state-bench-") as tmp:
            result = await one_run(rooms, Path(tmp))
        results.append(result)
        shown = "  ".join(f"{k}={v:.2f}" for k, v in result.items())
        print(f"run {run + 1}: {shown}", flush=True)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    print(
        f"\nmachine: {os.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )
    print(f"{rooms} rooms + 1000 accounts, {runs} runs, medians:")
    print("| phase | max lag ms | p99 lag ms | bar |")
    print("|---|---|---|---|")
    ok = True
    print(f"| idle (noise floor) | {med('idle_max'):.2f} | {med('idle_p99'):.2f} | – |")
    for phase in ("steady", "bulk"):
        passed = med(f"{phase}_max") <= BAR_MS
        ok &= passed
        verdict = "pass" if passed else "over"
        print(f"| {phase} | {med(f'{phase}_max'):.2f} | {med(f'{phase}_p99'):.2f} | {verdict} |")
    print(
        f"longest store step on the loop (encoding a slice of {SLICE}): "
        f"{med('slice_max'):.2f} ms wall, {med('slice_cpu_max'):.2f} ms CPU"
    )
    print(f"bulk flush of {rooms} rows (worker thread): {med('bulk_flush_s'):.2f} s")
    print(f"before (snapshot on the loop): one save blocks {med('before_ms'):.0f} ms")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rooms", type=int, default=40_000)
    args = ap.parse_args(argv)
    return asyncio.run(main_async(args.runs, args.rooms))


if __name__ == "__main__":
    sys.exit(main())
