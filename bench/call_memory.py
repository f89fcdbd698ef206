#!/usr/bin/env python3
"""Peak RSS and CPU of an audio-only CLI call, per side, and where the memory goes.

Bar (issue 17): peak RSS per side ≤ 80 MiB (docs/benchmarks.md).

Processes (real CLI commands, loopback only): ``hello-tui serve --port 0
--no-echo``, ``hello-tui answer --auto --once`` (bob) and ``hello-tui call
bob --duration S`` (alice), each with its own XDG dirs. ``--mode null``:
``sine:`` → ``null:``; ``--mode device``: ``device:`` both ways on a private
PulseAudio daemon (tests/pulse.py; the default sink and its monitor).
Near the end of each call the script reads each side's ``VmHWM`` and
``/proc/PID/smaps`` and, with ``--maps``, prints the resident (and dirty)
memory per component: each Python package's extension modules with the
libraries they bundle, each system library, and the kinds of anonymous memory
(pymalloc arenas, malloc's main and per-thread arenas, thread stacks); with
``--dump DIR``, keeps each side's ``smaps``, ``smaps_rollup`` and ``status``.
Each run also prints the RSS 0.5 s after ``media-flowing`` (the peak is
reached by then). CPU: utime+stime from just after ``media-flowing`` over
wall time. The backend of ``device:`` follows ``HELLO_TUI_AUDIO_BACKEND``.

    python bench/call_memory.py [--mode null|device] [--seconds 8] [--runs 3] [--maps]
        [--dump DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from procs import cpu_seconds, hello_cmd, hwm_mib, isolated_env, signed_in_call, stop_all

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
BAR_MIB = 80.0
DUMP: Path | None = None


def rss_mib(pid: int) -> float:
    """Resident memory now (VmRSS) in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def read_smaps(path: Path) -> list[dict[str, Any]]:
    """Each mapping of an smaps file: name, permissions, size and its kB counters."""
    maps: list[dict[str, Any]] = []
    for line in path.read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            parts = line.split(None, 5)
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
            name = parts[5].strip() if len(parts) > 5 else ""
            maps.append({"name": name, "perm": parts[1], "size": (hi - lo) // 1024})
        else:
            key, _, value = line.partition(":")
            if value.strip().endswith("kB"):
                maps[-1][key] = int(value.split()[0])
    return maps


def component(maps: list[dict[str, Any]], i: int) -> str:
    """What mapping ``i`` holds: a package's or system library's file pages, or
    one kind of anonymous memory (glibc's per-thread malloc arenas are 64 MiB
    reservations, a thread stack 8 MiB after a 4 KiB guard page, pymalloc's
    arenas 1 MiB, the main malloc arena ``[heap]``)."""
    m = maps[i]
    path: str = m["name"]
    if path and not path.startswith("["):
        site = re.search(r"site-packages/([^/]+)", path)
        if site:
            pkg = site.group(1).removesuffix(".libs")
            return "pkg " + (pkg.split(".")[0].split("-")[0].lstrip("_") or pkg)
        base = os.path.basename(path).split(".so")[0]
        if "python3" in path and "lib-dynload" in path:
            return "CPython extension modules"
        return "lib " + base
    if path == "[heap]":
        return "malloc: main arena [heap]"
    if path:
        return path
    nxt = maps[i + 1] if i + 1 < len(maps) else None
    if (
        nxt is not None
        and not nxt["name"]
        and nxt["perm"] == "---p"
        and m["size"] + nxt["size"]
        in (
            65536,
            131072,
        )
    ):
        return "malloc: thread arenas"
    if m["size"] == 8192:
        return "thread stacks (8 MiB each, mostly untouched)"
    if m["size"] % 1024 == 0:
        return "pymalloc arenas (1 MiB each, adjacent ones merge)"
    return "other anonymous (malloc's mmap'd blocks, buffers)"


def rss_by_component(maps: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(Rss, Private_Dirty) kB per :func:`component`."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for i, m in enumerate(maps):
        acc = out[component(maps, i)]
        acc[0] += m.get("Rss", 0)
        acc[1] += m.get("Private_Dirty", 0)
    return {k: (v[0], v[1]) for k, v in out.items()}


def one_call(
    mode: str, seconds: float, tmp: Path, pulse_env: dict[str, str]
) -> dict[str, dict[str, Any]]:
    def env(home: str) -> dict[str, str]:
        return isolated_env(tmp / home, **pulse_env)

    ends = ("sine:440", "null:") if mode == "null" else ("device:", "device:")
    server = subprocess.Popen(
        hello_cmd("serve", "--port", "0", "--ephemeral", "--no-echo"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env("s"),
    )  # fmt: skip
    procs = [server]
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" ", 1)[1].strip()
        alice, bob = signed_in_call(
            url, (env("a"), env("b")), (ends[0], ends[0], ends[1]), seconds, procs
        )
        time.sleep(0.5)
        t0 = time.monotonic()
        c0 = {"caller": cpu_seconds(alice.pid), "callee": cpu_seconds(bob.pid)}
        rss0 = {"caller": rss_mib(alice.pid), "callee": rss_mib(bob.pid)}
        time.sleep(seconds - 0.5)
        wall = time.monotonic() - t0
        out = {}
        for side, p in (("caller", alice), ("callee", bob)):
            out[side] = {
                "cpu": 100 * (cpu_seconds(p.pid) - c0[side]) / wall,
                "hwm": hwm_mib(p.pid),
                "rss0": rss0[side],
                "maps": rss_by_component(read_smaps(Path(f"/proc/{p.pid}/smaps"))),
            }
            if DUMP:
                DUMP.mkdir(parents=True, exist_ok=True)
                for f in ("smaps", "status", "smaps_rollup"):
                    data = Path(f"/proc/{p.pid}/{f}").read_text()
                    (DUMP / f"{mode}-{side}.{f}").write_text(data)
        alice.wait(30)
        bob.wait(30)
        return out
    finally:
        stop_all(procs)


def print_maps(groups: dict[str, tuple[int, int]], top: int) -> None:
    total = sum(rss for rss, _ in groups.values())
    print(f"    {'component':<52} {'RSS MiB':>7} {'dirty':>6}")
    for name, (rss, dirty) in sorted(groups.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"    {name:<52} {rss / 1024:>7.1f} {dirty / 1024:>6.1f}")
    print(f"    {'(total RSS now)':<52} {total / 1024:>7.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("null", "device"), default="null")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--maps", action="store_true", help="RSS per component (last run)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--dump", type=Path, help="copy each side's smaps/status here")
    args = ap.parse_args()
    global DUMP
    DUMP = args.dump
    with tempfile.TemporaryDirectory() as root:
        daemon = None
        pulse_env: dict[str, str] = {}
        if args.mode == "device":
            from tests.pulse import PulseDaemon

            daemon = PulseDaemon(Path(root) / "pulse")
            daemon.start()
            pulse_env = daemon.env
        try:
            runs = []
            for i in range(args.runs):
                with tempfile.TemporaryDirectory(dir=root) as tmp:
                    runs.append(one_call(args.mode, args.seconds, Path(tmp), pulse_env))
                print(f"  run {i + 1}: " + ", ".join(
                    f"{s} {r['cpu']:.1f} % {r['hwm']:.1f} MiB (at flow {r['rss0']:.1f})"
                    for s, r in runs[-1].items()
                ), flush=True)  # fmt: skip
        finally:
            if daemon is not None:
                daemon.stop()
    ok = True
    for side in ("caller", "callee"):
        hwm = statistics.median(r[side]["hwm"] for r in runs)
        cpu = statistics.median(r[side]["cpu"] for r in runs)
        verdict = "PASS" if hwm <= BAR_MIB else "FAIL"
        ok &= verdict == "PASS"
        print(f"{args.mode:<7} {side:<7} peak RSS {hwm:6.1f} MiB (median of {len(runs)}, "
              f"bar ≤ {BAR_MIB:.0f}: {verdict}), CPU {cpu:5.1f} % of a core")  # fmt: skip
        if args.maps:
            print_maps(runs[-1][side]["maps"], args.top)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
