"""TUI bench: launch to an interactive main screen, and event-loop lag during a call.

    .venv/bin/python bench/tui_bench.py [--runs 7] [--call-seconds 10]

1. Launch: a fresh subprocess per run (cold imports, like a user typing
   ``hello-tui``) runs the app headless under Pilot (80×24) and reports the
   time from interpreter start to the first idle main screen with its contacts
   list mounted (the embedded server is still starting in a worker then, as
   it is for a user). Median of ``--runs``.
2. Responsiveness: an echo call through the embedded server (``sine:440`` in,
   ``null:`` out) for ``--call-seconds`` with the quality panel updating every
   second; a timer samples event-loop lag every 20 ms (how late it fires);
   reports median / p99 / max lag, and the process CPU share during the call.

Runs in temporary XDG directories: never the user's profile.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

LAUNCH = r"""
import time, asyncio, sys
t0 = float(sys.argv[1])
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.main import MainScreen
async def main():
    app = HelloApp()
    async with app.run_test(size=(80, 24)) as pilot:
        while not (isinstance(app.screen, MainScreen) and app.screen.query("#contacts")):
            await pilot.pause(0.005)
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()
        print(time.time() - t0)
asyncio.run(main())
"""

CALL = r"""
import asyncio, json, os, sys, time
seconds = float(sys.argv[1])
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.widgets.quality import QualityPanel
async def main():
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), 20)
        await pilot.press("e")
        while not (isinstance(app.screen, CallScreen) and app.screen.state == "connected"):
            await pilot.pause(0.01)
        loop = asyncio.get_running_loop()
        lags = []
        cpu0, w0 = time.process_time(), time.perf_counter()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = loop.time()
            await asyncio.sleep(0.02)
            lags.append((loop.time() - t - 0.02) * 1000)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - w0)
        samples = app.screen.query_one(QualityPanel).samples
        await pilot.press("h")
        print(json.dumps({"lags": lags, "cpu": cpu, "samples": samples}))
asyncio.run(main())
"""


def env(tmp: str) -> dict[str, str]:
    e = dict(os.environ)
    for var in ("CONFIG", "DATA", "STATE", "CACHE"):
        e[f"XDG_{var}_HOME"] = os.path.join(tmp, var.lower())
    os.makedirs(os.path.join(tmp, "config", "hello-tui"), exist_ok=True)
    with open(os.path.join(tmp, "config", "hello-tui", "config.toml"), "w") as f:
        f.write('[audio]\ninput = "sine:440"\noutput = "null:"\n')
    return e


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--call-seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        e = env(tmp)
        launches = []
        for _ in range(args.runs):
            t0 = time.time()
            out = subprocess.run(
                [sys.executable, "-c", LAUNCH, str(t0)], env=e, capture_output=True, text=True
            )
            launches.append(float(out.stdout.strip().splitlines()[-1]))
        print(
            f"launch to interactive main screen: median {statistics.median(launches):.3f} s"
            f" (min {min(launches):.3f}, max {max(launches):.3f}, n={len(launches)})"
        )
        out = subprocess.run(
            [sys.executable, "-c", CALL, str(args.call_seconds)],
            env=e,
            capture_output=True,
            text=True,
        )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        lags = data["lags"]
        print(
            f"event-loop lag during a {args.call_seconds:.0f} s echo call "
            f"({data['samples']} quality samples shown): median {statistics.median(lags):.2f} ms,"
            f" p99 {pct(lags, 99):.2f} ms, max {max(lags):.2f} ms (n={len(lags)});"
            f" process CPU {data['cpu'] * 100:.1f} % of a core"
        )


if __name__ == "__main__":
    main()
