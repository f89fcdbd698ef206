#!/usr/bin/env python3
"""CPU cost of the audio media layer: sine -> device sink + device source -> null sink.

Bar (PRODUCT.md): a whole audio call <= 10 % of one core per side; this is
only the media part (no Opus, no SRTP, no ICE). Runs on a throwaway
PulseAudio null sink (tests/pulse.py) unless --current-server is given.
CPU is process time (user + system, all threads including PortAudio's
callback threads) from getrusage, divided by wall time.

    .venv/bin/python bench/audio_bench.py [--seconds 20] [--parts] [--current-server]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hello_tui.media.sinks import open_audio_sink  # noqa: E402
from hello_tui.media.sources import DeviceSource, open_audio_source  # noqa: E402

Row = dict[str, object]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def measure(seconds: float, body: Callable[[], Awaitable[Callable[[], Row]]]) -> Row:
    finish = await body()  # set up and start the chain; returns its teardown
    await asyncio.sleep(0.5)  # settle: stream start-up is not steady state
    c0, t0 = cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    c1, t1 = cpu_seconds(), time.monotonic()
    row = finish()
    row["cpu %"] = round(100 * (c1 - c0) / (t1 - t0), 2)
    return row


async def play_chain() -> tuple[Callable[[], None], Callable[[], Row]]:
    tone = open_audio_source("sine:440")
    speaker = open_audio_sink("device:")
    if speaker.notice:
        raise SystemExit(f"audio_bench: {speaker.notice}")
    await speaker.start(tone)
    depths: list[float] = []

    def sample() -> None:
        depths.append(speaker.stats().buffer_ms)

    def report() -> Row:
        s = speaker.stats()
        return {
            "frames played": s.frames,
            "underruns": s.underruns,
            "drops": s.drops,
            "buffer ms min/mean/max": (
                f"{min(depths):.0f}/{statistics.fmean(depths):.0f}/{max(depths):.0f}"
                if depths
                else "-"
            ),
            "_stop": (tone, speaker),
        }

    return sample, report


async def record_chain() -> Callable[[], Row]:
    mic = open_audio_source("device:")
    if not isinstance(mic, DeviceSource):
        raise SystemExit(f"audio_bench: {mic.notice}")
    sink = open_audio_sink("null:")
    await sink.start(mic)

    def report() -> Row:
        return {
            "frames recorded": sink.stats().frames,
            "mic dropped": mic.dropped,
            "_stop": (mic, sink),
        }

    return report


async def stop_all(row: Row) -> None:
    for item in row.pop("_stop", ()):  # type: ignore[union-attr]
        if hasattr(item, "start"):
            await item.stop()
        else:
            item.stop()


async def run(seconds: float, parts: bool) -> list[tuple[str, Row]]:
    results: list[tuple[str, Row]] = []
    sampler: list[Callable[[], None]] = []

    async def sample_loop() -> None:
        while True:
            await asyncio.sleep(0.1)
            for fn in sampler:
                fn()

    loop_task = asyncio.create_task(sample_loop())

    async def idle() -> Callable[[], Row]:
        return dict

    async def play() -> Callable[[], Row]:
        sample, report = await play_chain()
        sampler.append(sample)
        return report

    async def both() -> Callable[[], Row]:
        sample, play_report = await play_chain()
        sampler.append(sample)
        rec_report = await record_chain()

        def report() -> Row:
            a, b = play_report(), rec_report()
            return {**a, **b, "_stop": (*a["_stop"], *b["_stop"])}  # type: ignore[misc]

        return report

    plan: list[tuple[str, Callable[[], Awaitable[Callable[[], Row]]]]] = [("idle loop", idle)]
    if parts:
        plan += [("sine -> device sink", play), ("device source -> null", record_chain)]
    plan.append(("sine -> device sink + device source -> null", both))
    for name, body in plan:
        sampler.clear()
        row = await measure(seconds, body)
        await stop_all(row)
        results.append((name, row))
    loop_task.cancel()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--parts", action="store_true", help="also measure each chain alone")
    ap.add_argument("--current-server", action="store_true", help="use the audio setup as is")
    args = ap.parse_args()
    daemon = None
    if not args.current_server:
        from tests.pulse import PulseDaemon

        daemon = PulseDaemon(Path(tempfile.mkdtemp(prefix="hello-bench-pulse-")))
        daemon.start()
        os.environ.update(daemon.env)
    try:
        results = asyncio.run(run(args.seconds, args.parts))
    finally:
        if daemon is not None:
            daemon.stop()
    print(f"audio media layer, {args.seconds:.0f} s per chain, {os.cpu_count()} CPUs")
    keys = ["cpu %", *sorted({k for _, r in results for k in r if k != "cpu %"})]
    width = max(len(n) for n, _ in results)
    print(f"{'chain':<{width}}  " + "  ".join(keys))
    for name, row in results:
        cells = [f"{row.get(k, '-')!s:>{len(k)}}" for k in keys]
        print(f"{name:<{width}}  " + "  ".join(cells))
    print("bar: a whole audio call <= 10 % of one core per side (this is the media part only)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
