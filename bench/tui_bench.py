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
        await asyncio.sleep(1.0)  # a separate server's echo peer logs in just after it listens
        video = len(sys.argv) > 2 and sys.argv[2] == "video"
        if video:
            app.action_echo_video()
        else:
            await pilot.press("e")
        while not (isinstance(app.screen, CallScreen) and app.screen.state == "connected"):
            await pilot.pause(0.01)
        loop = asyncio.get_running_loop()
        lags = []
        drawn = {}
        if video:
            from hello_tui.tui.widgets.video import VideoView
            await asyncio.sleep(2.0)  # the first pictures, then measure steady drawing
            drawn = {v: v.frames_drawn for v in app.screen.query(VideoView)}
        cpu0, w0 = time.process_time(), time.perf_counter()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = loop.time()
            await asyncio.sleep(0.02)
            lags.append((loop.time() - t - 0.02) * 1000)
        wall = time.perf_counter() - w0
        cpu = (time.process_time() - cpu0) / wall
        fps = [(v.frames_drawn - d0) / wall for v, d0 in drawn.items()]
        samples = app.screen.query_one(QualityPanel).samples
        await pilot.press("h")
        print(json.dumps({"lags": lags, "cpu": cpu, "samples": samples, "fps": fps}))
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


SEARCH = r"""
import json, sys, time, asyncio, random
from hello_tui.config.paths import resolve_paths
from hello_tui.contacts import Contact, open_store
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.main import MainScreen
n, backend = int(sys.argv[1]), sys.argv[2]
paths = resolve_paths()
rng = random.Random(7)
first = ["Élodie", "Zoë", "François", "Ana", "Bob", "Chloé", "Dmitri", "Eva", "Jürgen", "Mei"]
last = ["Martin", "Dubois", "Lima", "Novak", "Schmidt", "Okafor", "Rossi", "Tanaka"]
if backend == "sqlite":
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[contacts]" + chr(10) + "backend = 'sqlite'" + chr(10))
store = open_store(backend, paths.contacts_file(backend))
if store.count() == 0:
    store.save_many(
        Contact(name=f"{rng.choice(first)} {rng.choice(last)} {i}",
                emails=[f"user{i}@example.org"], favourite=i % 97 == 0)
        for i in range(n)
    )
store.close()
handler = []
original = MainScreen.refresh_contacts
def timed(self, *a, **k):
    t0 = time.perf_counter()
    try:
        return original(self, *a, **k)
    finally:
        handler.append((time.perf_counter() - t0) * 1000)
MainScreen.refresh_contacts = timed
async def main():
    app = HelloApp(connect=False)
    times = []
    async with app.run_test(size=(80, 24)) as pilot:
        while not (isinstance(app.screen, MainScreen) and app.screen.query("#contacts")):
            await pilot.pause(0.005)
        for query in ("élo", "fran", "mar", "zo", "user12"):
            await pilot.press("/")
            await pilot.press("ctrl+u")
            await pilot.pause()
            for ch in query:
                t0 = time.perf_counter()
                await pilot.press(ch)
                await pilot.pause()
                times.append((time.perf_counter() - t0) * 1000)
            await pilot.press("escape")
    print(json.dumps({"roundtrip": times, "handler": handler[-len(times):]}))
asyncio.run(main())
"""


def search_bench(e: dict[str, str], n: int, backend: str) -> dict[str, list[float]]:
    """Per keystroke (ms): ``handler`` is our work (search + list + details);
    ``roundtrip`` is Pilot's press-to-idle, an upper bound that includes Textual's
    own per-key rendering and Pilot's waiting (about 110 ms even with 1 contact)."""
    out = subprocess.run(
        [sys.executable, "-c", SEARCH, str(n), backend], env=e, capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--call-seconds", type=float, default=10.0)
    ap.add_argument("--contacts", type=int, default=10_000, help="for the search bench")
    ap.add_argument("--only-search", action="store_true")
    ap.add_argument("--video", action="store_true", help="a video echo call (pattern:)")
    ap.add_argument(
        "--separate-server",
        action="store_true",
        help="run the server and echo peer in their own processes (the TUI CPU bar)",
    )
    args = ap.parse_args()
    for backend in ("toml", "sqlite"):
        with tempfile.TemporaryDirectory() as tmp:
            res = search_bench(env(tmp), args.contacts, backend)
            keys, rt = res["handler"], res["roundtrip"]
            print(
                f"search as you type, {args.contacts} contacts ({backend}): handler median "
                f"{statistics.median(keys):.1f} ms, p95 {pct(keys, 95):.1f} ms, max "
                f"{max(keys):.1f} ms per keystroke (n={len(keys)}; bar < 50 ms); Pilot "
                f"press-to-idle median {statistics.median(rt):.0f} ms"
            )
    if args.only_search:
        return
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
        if args.video:
            with open(os.path.join(tmp, "config", "hello-tui", "config.toml"), "a") as f:
                f.write('[video]\nsource = "pattern:"\n')
        server = None
        if args.separate_server:
            # The server and the echo peer in their own processes: the TUI process
            # then holds the TUI and one side of the call, as for a real user.
            e["HELLO_TUI_ICE_HOSTS"] = "127.0.0.1"
            server = subprocess.Popen(
                [sys.executable, "-m", "hello_tui", "serve", "--port", "0", "--ephemeral"],
                env=e, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            assert server.stdout is not None
            url = server.stdout.readline().rsplit(" ", 1)[1].strip()
            with open(os.path.join(tmp, "config", "hello-tui", "config.toml"), "a") as f:
                f.write(f'[server]\nurl = "{url}"\n')
        try:
            out = subprocess.run(
                [sys.executable, "-c", CALL, str(args.call_seconds)]
                + (["video"] if args.video else []),
                env=e,
                capture_output=True,
                text=True,
            )
        finally:
            if server is not None:
                server.terminate()
                server.wait(20)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        lags = data["lags"]
        print(
            f"event-loop lag during a {args.call_seconds:.0f} s echo call "
            f"({data['samples']} quality samples shown): median {statistics.median(lags):.2f} ms,"
            f" p99 {pct(lags, 99):.2f} ms, max {max(lags):.2f} ms (n={len(lags)});"
            f" process CPU {data['cpu'] * 100:.1f} % of a core"
            + (
                f"; video drawn at {', '.join(f'{x:.1f}' for x in data['fps'])} fps per view"
                if data.get("fps")
                else ""
            )
        )


if __name__ == "__main__":
    main()
