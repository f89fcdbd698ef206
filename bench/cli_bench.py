#!/usr/bin/env python3
"""Start-up time of the CLI: `hello-tui --help` and a contacts listing.

Bar: `hello-tui --help` median under 200 ms wall on this machine.
Runs the real console script in a fresh process each time (after warm-up,
so the OS file cache is warm, as it is for a user typing commands).

    .venv/bin/python bench/cli_bench.py [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _time(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    for _ in range(3):  # warm-up
        subprocess.run(cmd, env=env, capture_output=True, check=True)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, capture_output=True, check=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    exe = shutil.which("hello-tui", path=str(Path(sys.executable).parent)) or "hello-tui"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_CONFIG_HOME": f"{home}/c", "XDG_DATA_HOME": f"{home}/d"}
        subprocess.run([exe, "contacts", "add", "Alice", "--email", "a@example.org"], env=env,
                       capture_output=True, check=True)  # fmt: skip
        rows = [
            ("python -c pass (floor)", [sys.executable, "-c", "pass"], None),
            ("hello-tui --help", [exe, "--help"], 200.0),
            ("hello-tui contacts list", [exe, "contacts", "list"], None),
        ]
        print(f"{'what':<28} {'runs':>5} {'median ms':>10} {'p95 ms':>8} {'bar ms':>7}  result")
        ok = True
        for name, cmd, bar in rows:
            samples = sorted(_time(cmd, env, args.runs))
            med = statistics.median(samples)
            p95 = samples[min(len(samples) - 1, int(0.95 * len(samples)))]
            verdict = "" if bar is None else ("PASS" if med < bar else "FAIL")
            ok &= verdict != "FAIL"
            bar_s = "" if bar is None else f"{bar:.0f}"
            print(f"{name:<28} {args.runs:>5} {med:>10.1f} {p95:>8.1f} {bar_s:>7}  {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
