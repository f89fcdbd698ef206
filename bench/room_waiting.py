#!/usr/bin/env python3
"""room-waiting latency: a visitor's ``room-join`` sent → the owner's devices hold
the ``room-waiting`` event.

Bar: ≤ 500 ms (issue 15), the worst of the owner's devices, every join.

One process: the embedded server (the real aiohttp app on 127.0.0.1), an
account signed in on two devices (two ``SignalingClient`` connections), a
room it owns, and an anonymous visitor that joins with a display name, is
announced, leaves, and joins again (paced under the server's rate limit).
Signaling only: no media.

    .venv/bin/python bench/room_waiting.py [--joins 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hello_tui.session.embedded import embedded_server
from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key

BAR_MS = 500.0


async def _client(url: str) -> SignalingClient:
    client = SignalingClient(reconnect=None)
    await client.connect(url)
    return client


async def _waiting(device: SignalingClient) -> float:
    while True:
        event = await device.next_event(5.0)
        if isinstance(event, p.RoomWaiting):
            return time.perf_counter()


async def run(joins: int) -> list[float]:
    async with embedded_server(echo=False) as server:
        phone, laptop = await _client(server.url), await _client(server.url)
        key = generate_key()
        await phone.register("olive", key)
        for device in (phone, laptop):
            await device.login("olive", key)
        token = (await phone.room_create("Y2lwaGVydGV4dA")).room.token
        visitor = await _client(server.url)
        visitor.display_name = "Visitor"
        latencies: list[float] = []
        for _ in range(joins):
            heard = [asyncio.create_task(_waiting(d)) for d in (phone, laptop)]
            sent = time.perf_counter()
            await visitor.room_join(token)
            arrived = await asyncio.gather(*heard)
            latencies.append((max(arrived) - sent) * 1000)
            await visitor.room_leave(token)
            await asyncio.sleep(0.15)  # under the server's per-connection rate limit (20/s)
        for client in (visitor, phone, laptop):
            await client.close()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--joins", type=int, default=200)
    args = parser.parse_args()
    ms = sorted(asyncio.run(run(args.joins)))
    p95 = ms[int(0.95 * (len(ms) - 1))]
    print(
        f"room-waiting over {len(ms)} joins, worst of 2 owner devices: "
        f"median {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms "
        f"(bar {BAR_MS:.0f} ms)"
    )
    return 0 if ms[-1] <= BAR_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
