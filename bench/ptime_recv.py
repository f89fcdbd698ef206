"""What 10 ms packets cost the event loop: one sender in C at 10 or 20 ms, one receiver.

Two adapted peers on loopback in this process (``call.peer.new_peer_connection``, the
real fast path, SRTP and jitter buffer). A's track is a ``device:`` microphone with its
read callback in C whose "card" is a thread feeding a speech-like signal in 10 ms
blocks on the wall clock (``Binding.chunk``, what libpulse's read callback does), so
A's capture thread encodes and sends each packet itself (media/send_path.cpp) and the
event loop only looks at it every 100 ms. B's receiver (all Python today: datagram →
SRTP → jitter buffer → inline decode) hands each decoded frame to a reader task.
So the main thread's CPU is, to within the 100 ms looks, B's receive path: the cost
per second of 100 packets against 50. The feeder thread's CPU is the capture and send
path in C. Arms alternate (20, 10, 20, ...).

    .venv/bin/python bench/ptime_recv.py [--seconds 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import aioice.ice
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hello_tui.call.peer import new_peer_connection
from hello_tui.media import aiortc_adapter as ad
from hello_tui.media import capture_native, native_send, sources
from hello_tui.media.sources import DeviceSource
from hello_tui.media.tracks import GatedTrack, MeteredTrack
from tests.speechlike import voiced

BLOCK = 480


class FakeCard:
    """The pulse stream's stand-in (the feeder thread is its read callback)."""

    native = True
    active = True
    latency = 0.01


async def one_run(ms: int, seconds: float, signal: np.ndarray) -> dict[str, float]:
    os.environ[ad.PTIME_KNOB] = str(ms)
    source = DeviceSource("device:bench", "bench")
    assert source._native is not None
    binding = source._native.bind(0, BLOCK, 0.01)
    a, b = new_peer_connection([]), new_peer_connection([])
    a.addTrack(MeteredTrack(GatedTrack(source)))
    got = [0]
    readers: list[asyncio.Task[None]] = []

    async def read(track: Any) -> None:
        while True:
            frame = await track.recv()
            got[0] += frame.samples

    b.on("track", lambda track: readers.append(asyncio.ensure_future(read(track))))
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    stop = threading.Event()
    feeder_cpu = [0.0]

    def feed() -> None:
        start, i = time.monotonic(), 0
        t0 = time.thread_time()
        while not stop.is_set():
            due = start + i * BLOCK / 48_000
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            at = (i * BLOCK) % (len(signal) - BLOCK)
            binding.chunk(signal[at : at + BLOCK], due)
            i += 1
        feeder_cpu[0] = time.thread_time() - t0

    thread = threading.Thread(target=feed, name="card", daemon=True)
    thread.start()
    try:
        native = None
        async with asyncio.timeout(10):
            while native is None or native.send is None:
                await asyncio.sleep(0.05)
                native = ad.native_sender(a.getSenders()[0])
        await asyncio.sleep(1.0)  # settled
        jitter = b.getReceivers()[0]._RTCRtpReceiver__jitter_buffer
        got0, c0 = got[0], native.frames_in_c()
        cpu0, wall0 = time.thread_time(), time.monotonic()
        await asyncio.sleep(seconds)
        cpu, wall = time.thread_time() - cpu0, time.monotonic() - wall0
        packets = native.frames_in_c() - c0
        received = got[0] - got0
        learnt = jitter._frame
        concealed = jitter.stats.concealed
    finally:
        stop.set()
        thread.join()
        for task in readers:
            task.cancel()
        await a.close()
        await b.close()
        source.stop()
        binding.unbind()
    return {
        "loop_cpu_pct": cpu / wall * 100,
        "loop_us_per_pkt": cpu / max(1, packets) * 1e6,
        "card_thread_pct": feeder_cpu[0] / (wall + 1.0) * 100,
        "packets_per_s": packets / wall,
        "received_s_per_s": received / 48_000 / wall,
        "learnt": learnt,
        "concealed": concealed,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ[capture_native.KNOB] = "1"
    os.environ[native_send.KNOB] = "1"
    sources.open_stream = lambda *a, **k: (FakeCard(), None)  # type: ignore[assignment]
    sources.start_stream = lambda *a, **k: None  # type: ignore[assignment]
    sources.close_stream = lambda *a, **k: None  # type: ignore[assignment]
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]  # type: ignore[assignment]
    signal = voiced(10.0)
    results: dict[int, list[dict[str, float]]] = {10: [], 20: []}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for ms in (20, 10):
            results[ms].append(await one_run(ms, args.seconds, signal))
            loads.append(os.getloadavg()[0])
    print(f"{args.rounds} rounds x {args.seconds:.0f} s per arm, alternated; "
          f"1-min load {min(loads):.2f}-{max(loads):.2f}")  # fmt: skip
    print(f"{'':>18} {'20 ms':>10} {'10 ms':>10}")
    for key in results[20][0]:
        row = [statistics.median(r[key] for r in results[ms]) for ms in (20, 10)]
        print(f"{key:>18} {row[0]:>10.2f} {row[1]:>10.2f}")
    for ms in (20, 10):
        print(ms, "ms, loop % per run:", [round(r["loop_cpu_pct"], 2) for r in results[ms]])


if __name__ == "__main__":
    asyncio.run(main())
