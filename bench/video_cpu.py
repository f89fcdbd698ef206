#!/usr/bin/env python3
"""CPU and peak RSS of one side of a video echo call (320×240 @ 15 fps, VP8).

Processes (real CLI commands, loopback only, ICE on 127.0.0.1):
``hello-tui serve --port 0`` (the server and the echo peer, which decodes
and re-encodes what it receives) and ``hello-tui call echo --video=pattern:
--audio-in sine:440 --audio-out null: --duration S``. The caller encodes its
pattern, decodes the echoed video (kept in a FrameSink, not drawn), and does
the same for audio. CPU = utime+stime from ``/proc/PID/stat`` from just after
``media-flowing`` to just before the hang-up, over wall time; peak RSS =
``VmHWM`` at the end. ``--audio-only`` runs the same call without video.

    .venv/bin/python bench/video_cpu.py [--seconds 30] [--runs 3] [--audio-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from procs import cpu_seconds, hello_cmd, hwm_mib, isolated_env, stop_all, tree, tree_cpu


def one_call(seconds: float, video: bool, tmp: Path) -> dict[str, tuple[float, float]]:
    server = subprocess.Popen(
        hello_cmd("serve", "--port", "0", "--data-dir", str(tmp / "srv")),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=isolated_env(tmp / "s"),
    )  # fmt: skip
    procs = [server]
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" ", 1)[1].strip()
        extra = ["--video=pattern:"] if video else []
        caller = subprocess.Popen(
            hello_cmd("call", *extra, "echo", "--server", url, "--audio-in", "sine:440",
                 "--audio-out", "null:", "--duration", str(seconds + 1), "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=isolated_env(tmp / "a"),
        )  # fmt: skip
        procs.append(caller)
        assert caller.stdout is not None
        for line in caller.stdout:
            if json.loads(line)["kind"] == "media-flowing":
                break
        time.sleep(0.5)
        t0 = time.monotonic()
        c0, s0 = cpu_seconds(caller.pid), tree_cpu(server.pid)
        time.sleep(seconds - 0.5)
        wall = time.monotonic() - t0
        if caller.poll() is not None:
            raise AssertionError(f"the call ended early: {caller.stdout.read()[-600:]}")
        rss = max(hwm_mib(p) for p in tree(server.pid))
        out = {
            "caller": (100 * (cpu_seconds(caller.pid) - c0) / wall, hwm_mib(caller.pid)),
            "echo+server": (100 * (tree_cpu(server.pid) - s0) / wall, rss),
        }
        stats = [json.loads(x) for x in caller.stdout]
        caller.wait(30)
        frames = next((s.get("video_frames_received", 0) for s in stats if s["kind"] == "stats"), 0)
        out["frames"] = (frames / (seconds + 1), 0.0)
        return out
    finally:
        stop_all(procs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--audio-only", action="store_true")
    args = ap.parse_args()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(one_call(args.seconds, not args.audio_only, Path(tmp)))
    label = "audio only" if args.audio_only else "video 320x240@15"
    print(f"{label}: received video ≈ {statistics.median(r['frames'][0] for r in runs):.1f} fps")
    for side in ("caller", "echo+server"):
        cpu = [r[side][0] for r in runs]
        rss = max(r[side][1] for r in runs)
        each = ", ".join(f"{c:.1f}" for c in cpu)
        print(f"  {side:<12} CPU % of a core: {each} (median {statistics.median(cpu):.1f}); "
              f"peak RSS {rss:.1f} MiB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
