#!/usr/bin/env python3
"""The event loop's CPU per call, A/B: two adapted peer connections in one
process, ``sine:`` → ``null:`` both ways over loopback ICE, and the main
thread's CPU time (``time.thread_time``: the loop, and nothing else) per
second of steady call, in % of one core. Both peers share the loop, so the
figure is two sides' worth; it is printed per side (halved).

Each window is a fresh call; windows alternate between the arms (an
environment variable set before each call's connections are made), so both
arms share the machine's noise; the medians per arm are compared.

    .venv/bin/python bench/loop_cpu.py [--var HELLO_TUI_FAST_RTP] [--off 0] [--on 1]
                                       [--windows 10] [--seconds 5] [--loop uvloop]
                                       [--source sine|thread]

Two runs at once, one per arm (``--off 1 --on 1`` for all windows on), pair
their windows in time: both share the same moment's load, which a loaded
machine needs to see a 5 % difference.

What it leaves out: devices (PortAudio threads; the side-by-side harness in
../shared/peers measures those), signaling, the quality collector. What it
keeps: aiortc/aioice/pylibsrtp per packet, the adapter, Opus encode and
decode, the sources' pacing and the sinks' conversion.

``--source thread`` sends from a ``DeviceSource`` whose "card" is a Python
thread delivering a 10 ms block of tone every 10 ms (the microphone's
hand-off: ``call_soon_threadsafe`` per 20 ms frame, the source's queue, the
sender's task), instead of ``sine:`` (a timer in the loop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HELLO_TUI_ICE_HOSTS", "127.0.0.1")

import threading
from types import SimpleNamespace
from typing import Any

import numpy as np

import hello_tui.media.sources as sources
from hello_tui.call.peer import new_peer_connection
from hello_tui.media.sinks import NullSink
from hello_tui.media.sources import MIC_BLOCK, DeviceSource, SineSource


class ThreadCard:
    """A capture stream for ``DeviceSource``: a thread calls its callback with a
    10 ms block of a tone every 10 ms (absolute deadlines), as PortAudio would."""

    latency = 0.02
    active = True

    def __init__(self, callback: Any, hz: float) -> None:
        self._callback = callback
        n = np.arange(48_000) * 2 * np.pi * hz / 48_000
        self._tone = (np.sin(n) * 8000).astype(np.int16).reshape(-1, 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        status = SimpleNamespace(input_overflow=False)
        at, pos = time.monotonic(), 0
        while not self._stop.is_set():
            at += MIC_BLOCK / 48_000
            self._stop.wait(max(0.0, at - time.monotonic()))
            block = self._tone[pos : pos + MIC_BLOCK]
            pos = (pos + MIC_BLOCK) % (48_000 - MIC_BLOCK)
            when = SimpleNamespace(inputBufferAdcTime=at, currentTime=at)
            self._callback(block, MIC_BLOCK, when, status)


def thread_source(hz: float) -> DeviceSource:
    """A ``DeviceSource`` fed by a :class:`ThreadCard` (the bench's stand-in microphone)."""
    sources.open_stream = lambda kind, name, callback, **kw: (ThreadCard(callback, hz), None)
    sources.start_stream = lambda stream: stream.start()
    sources.close_stream = lambda stream, started=True: stream.close()
    return DeviceSource("device:bench", "bench")


SOURCE_KIND = "sine"


async def one_window(seconds: float, warm: float = 1.0) -> float:
    """Main-thread CPU seconds per second of a steady two-peer call."""
    a, b = new_peer_connection([]), new_peer_connection([])
    sinks = [NullSink("null:"), NullSink("null:")]

    starts: list[asyncio.Task[None]] = []

    def on_track(sink: NullSink):  # type: ignore[no-untyped-def]
        def handler(track):  # type: ignore[no-untyped-def]
            starts.append(asyncio.ensure_future(sink.start(track)))

        return handler

    a.on("track", on_track(sinks[0]))
    b.on("track", on_track(sinks[1]))
    if SOURCE_KIND == "thread":
        a.addTrack(thread_source(440))
        b.addTrack(thread_source(660))
    else:
        a.addTrack(SineSource("sine:440", 440))
        b.addTrack(SineSource("sine:660", 660))
    try:
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        deadline = time.monotonic() + 10
        while min(s.frames for s in sinks) < 10:
            if time.monotonic() > deadline:
                raise RuntimeError("no audio within 10 s")
            await asyncio.sleep(0.05)
        await asyncio.sleep(warm)
        c0, t0 = time.thread_time(), time.monotonic()
        await asyncio.sleep(seconds)
        return (time.thread_time() - c0) / (time.monotonic() - t0)
    finally:
        for sink in sinks:
            await sink.stop()
        await a.close()
        await b.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--var", default="HELLO_TUI_FAST_RTP")
    ap.add_argument("--off", default="0")
    ap.add_argument("--on", default="1")
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    ap.add_argument("--source", choices=("sine", "thread"), default="sine")
    args = ap.parse_args()
    global SOURCE_KIND
    SOURCE_KIND = args.source
    arms: dict[str, list[float]] = {args.off: [], args.on: []}
    print(f"load {os.getloadavg()[0]:.2f}", flush=True)
    for i in range(args.windows):
        value = args.off if i % 2 == 0 else args.on
        os.environ[args.var] = value
        cpu = await one_window(args.seconds) * 100 / 2
        arms[value].append(cpu)
        print(f"window {i + 1}: {args.var}={value}: {cpu:.2f} % of a core per side", flush=True)
    print(f"load {os.getloadavg()[0]:.2f}")
    for value, cpus in arms.items():
        print(
            f"{args.var}={value}: median {statistics.median(cpus):.2f} % per side "
            f"(min {min(cpus):.2f}, max {max(cpus):.2f}, n={len(cpus)})"
        )


if __name__ == "__main__":
    if "uvloop" in sys.argv:  # --loop uvloop: the same windows on uvloop's loop
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
