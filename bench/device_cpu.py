#!/usr/bin/env python3
"""CPU of a call's device path per thread, without the network: the speaker's and the
microphone's streams, the processing stage (AEC3 fed by the speaker, NS, AGC2) and
the hand-off of each captured frame to the event loop, as in a ``device:`` call.

A sine track plays into the speaker (``DeviceSink``, its far end feeding the
processor), the microphone (``DeviceSource`` with the processor) records the
speaker's null-sink monitor (an echo path), and a null sink reads it on the loop
as the sender would. Runs on a throwaway PulseAudio (tests/pulse.py), the pulse
backend by default (``HELLO_TUI_AUDIO_BACKEND`` as set). Prints per window the CPU,
in % of one core, of the main thread, the speaker's thread, the microphone's
thread, and the whole process.

    PYTHONPATH=. .venv/bin/python bench/device_cpu.py [--windows 6] [--seconds 4]

Two checkouts (or two settings) at once, windows paired in time:
bench/device_cpu_pair.sh.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
SRC = Path(__file__).resolve().parent.parent  # tests/pulse.py: this checkout's


def thread_cpu() -> dict[int, float]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def process_cpu() -> float:
    t = os.times()
    return t.user + t.system


def new_threads(before: set[int]) -> list[int]:
    return sorted(set(thread_cpu()) - before)


async def spin(share: float) -> None:
    """Python work on the loop for ``share`` of every 20 ms (a call's loop holds the GIL
    ~8 % of the time: the device threads then wait for it as in a call)."""
    while True:
        end = time.thread_time() + 0.020 * share
        while time.thread_time() < end:
            sum(range(200))
        await asyncio.sleep(0.020 * (1 - share))


async def run(windows: int, seconds: float, processing: bool, loop_load: float) -> None:
    from hello_tui.media.audio_processing import DEFAULT, attach_processing
    from hello_tui.media.sinks import DeviceSink, open_audio_sink
    from hello_tui.media.sources import DeviceSource, SineSource, open_audio_source

    main = os.getpid()
    before = set(thread_cpu())
    speaker = open_audio_sink("device:")
    out_threads = new_threads(before)  # a pulse stream's mainloop thread starts at open
    before = set(thread_cpu())
    mic = open_audio_source("device:")
    in_threads = new_threads(before)
    if not isinstance(speaker, DeviceSink) or not isinstance(mic, DeviceSource):
        raise SystemExit(f"device_cpu: no device ({speaker.notice or mic.notice})")
    notice = attach_processing(mic, speaker, DEFAULT, ask_headset=False) if processing else None
    if notice:
        print(f"device_cpu: {notice}", file=sys.stderr)
    speaker.warm()
    mic.warm()
    await speaker.start(SineSource("sine:440", 440.0))
    sink = open_audio_sink("null:")
    await sink.start(mic)
    busy = asyncio.create_task(spin(loop_load)) if loop_load else None
    await asyncio.sleep(1.0)
    rows = []
    for i in range(windows):
        t0, c0, p0 = time.monotonic(), thread_cpu(), process_cpu()
        await asyncio.sleep(seconds)
        t1, c1, p1 = time.monotonic(), thread_cpu(), process_cpu()
        wall = t1 - t0

        def pct(
            tids: list[int],
            c0: dict[int, float] = c0,
            c1: dict[int, float] = c1,
            wall: float = wall,
        ) -> float:
            return float(sum(c1.get(t, 0.0) - c0.get(t, 0.0) for t in tids) / wall * 100)

        row = (pct([main]), pct(out_threads), pct(in_threads), (p1 - p0) / wall * 100)
        rows.append(row)
        load = Path("/proc/loadavg").read_text().split()[0]
        print(f"window {i} main {row[0]:.2f} speaker {row[1]:.2f} mic {row[2]:.2f} "
              f"process {row[3]:.2f} load {load}", flush=True)  # fmt: skip
    processed = mic.processor.stats() if mic.processor else None
    print(f"median main {statistics.median(r[0] for r in rows):.2f} "
          f"speaker {statistics.median(r[1] for r in rows):.2f} "
          f"mic {statistics.median(r[2] for r in rows):.2f} "
          f"process {statistics.median(r[3] for r in rows):.2f}; "
          f"frames sent {mic.frames_sent}, mic dropped {mic.dropped}, "
          f"speaker underruns {speaker.stats().underruns}, card {speaker.card_underflows}, "
          f"processed {processed.frames if processed else 0}, "
          f"far missing {processed.far_missing if processed else 0}")  # fmt: skip
    if busy is not None:
        busy.cancel()
    mic.stop()
    await sink.stop()
    await speaker.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--no-processing", action="store_true", help="no AEC3/NS/AGC2 stage")
    ap.add_argument("--loop-load", type=float, default=0.0,  # (a call's loop: ~0.08)
                    help="share of each 20 ms spent in Python on the loop")  # fmt: skip
    args = ap.parse_args()
    os.environ.setdefault("HELLO_TUI_AUDIO_BACKEND", "pulse")
    sys.path.append(str(SRC))  # after PYTHONPATH: the hello_tui measured is the one it names
    from tests.pulse import PulseDaemon

    daemon = PulseDaemon(Path(tempfile.mkdtemp(prefix="hello-devcpu-pulse-")))
    daemon.start()
    os.environ.update(daemon.env)
    try:
        asyncio.run(run(args.windows, args.seconds, not args.no_processing, args.loop_load))
    finally:
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
