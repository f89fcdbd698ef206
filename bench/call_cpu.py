#!/usr/bin/env python3
"""CPU and peak RSS of an audio call, per side, each side its own process.

Bar: ≤ 10 % of one core per side (docs/benchmarks.md).

Processes (all real CLI commands, loopback only, ICE on 127.0.0.1):
``hello-tui serve --port 0`` (the server, echo peer included but idle),
``hello-tui answer --auto --once`` as ``bob`` (``sine:660`` → ``null:``) and
``hello-tui call bob`` (``sine:440`` → ``null:``, ``--duration S``). Each
side gets its own XDG dirs. CPU = utime+stime from ``/proc/PID/stat``
(children included, from just after ``media-flowing`` to just before the
hang-up: start-up and imports are excluded) over wall time; peak RSS =
``VmHWM`` from ``/proc/PID/status`` at the end of the call.

    .venv/bin/python bench/call_cpu.py [--seconds 60] [--runs 3] [--no-adapter | --both]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from procs import cpu_seconds, hello_cmd, hwm_mib, isolated_env, signed_in_call, stop_all

BAR = 10.0


def _flag(adapter: bool) -> str:
    return "1" if adapter else "0"


def one_call(seconds: float, adapter: bool, tmp: Path) -> dict[str, tuple[float, float]]:
    server = subprocess.Popen(
        hello_cmd("serve", "--port", "0", "--data-dir", str(tmp / "srv")),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=isolated_env(tmp / "s", HELLO_TUI_AIORTC_ADAPTER=_flag(adapter)),
    )  # fmt: skip
    procs = [server]
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" ", 1)[1].strip()
        env_b, env_a = (
            isolated_env(tmp / "b", HELLO_TUI_AIORTC_ADAPTER=_flag(adapter)),
            isolated_env(tmp / "a", HELLO_TUI_AIORTC_ADAPTER=_flag(adapter)),
        )
        alice, bob = signed_in_call(
            url, (env_a, env_b), ("sine:440", "sine:660", "null:"), seconds, procs
        )
        time.sleep(0.5)  # past the first frames
        t0 = time.monotonic()
        c0 = {"caller": cpu_seconds(alice.pid), "callee": cpu_seconds(bob.pid)}
        time.sleep(seconds - 0.5)
        wall = time.monotonic() - t0
        out = {
            "caller": (100 * (cpu_seconds(alice.pid) - c0["caller"]) / wall, hwm_mib(alice.pid)),
            "callee": (100 * (cpu_seconds(bob.pid) - c0["callee"]) / wall, hwm_mib(bob.pid)),
        }
        alice.wait(30)
        bob.wait(30)
        return out
    finally:
        stop_all(procs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-adapter", action="store_true")
    ap.add_argument("--both", action="store_true")
    args = ap.parse_args()
    configs = [True, False] if args.both else [not args.no_adapter]
    ok = True
    print(f"{'configuration':<14} {'side':<7} {'CPU % of a core (runs)':<30} {'median':>7} "
          f"{'peak RSS MiB':>13}  bar")  # fmt: skip
    for adapter in configs:
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(one_call(args.seconds, adapter, Path(tmp)))
        label = "with adapter" if adapter else "aiortc as is"
        for side in ("caller", "callee"):
            cpu = [r[side][0] for r in runs]
            rss = max(r[side][1] for r in runs)
            med = statistics.median(cpu)
            verdict = "PASS" if med <= BAR else "FAIL"
            ok &= verdict == "PASS" or not adapter
            each = ", ".join(f"{c:.1f}" for c in cpu)
            print(f"{label:<14} {side:<7} {each:<30} {med:>7.1f} {rss:>13.1f}  "
                  f"≤ {BAR:.0f} {verdict}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
