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
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``serve`` runs the echo peer in a child)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for kid in kids:
            out += tree(int(kid))
    return out


def tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in tree(pid))


def hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        (home / var).mkdir(parents=True, exist_ok=True)
        env[var] = str(home / var)
    env["HELLO_TUI_ICE_HOSTS"] = "127.0.0.1"
    env.pop("HELLO_TUI_CONFIG", None)
    return env


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "hello_tui", *args]


def one_call(seconds: float, video: bool, tmp: Path) -> dict[str, tuple[float, float]]:
    server = subprocess.Popen(
        _cmd("serve", "--port", "0", "--data-dir", str(tmp / "srv")),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(tmp / "s"),
    )  # fmt: skip
    procs = [server]
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" ", 1)[1].strip()
        extra = ["--video=pattern:"] if video else []
        caller = subprocess.Popen(
            _cmd("call", *extra, "echo", "--server", url, "--audio-in", "sine:440",
                 "--audio-out", "null:", "--duration", str(seconds + 1), "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=_env(tmp / "a"),
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
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()


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
