#!/usr/bin/env python3
"""CPU per side of a ``device:`` call with the receive path in C or in Python
(``HELLO_TUI_NATIVE_RECV``), each side its own CLI process, no harness.

A throwaway PulseAudio (tests/pulse.py) with its one null sink: both sides play into it
and record its monitor (``device:`` both ways, the pulse backend, audio processing on
as by default). ``hello-tui serve``, ``answer --auto --once`` as bob, ``call bob`` as
alice; calls alternate between the arms (on, off, on, ...), so both share the machine's
noise. Per side and window (from 1 s after media flows, ``--seconds`` long): the main
thread's CPU (``/proc/PID/task/PID/stat``) and the process's, in % of one core.

    PYTHONPATH=. .venv/bin/python bench/recv_cpu.py [--calls 6] [--seconds 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procs import cpu_seconds, hello_cmd, isolated_env, signed_in_call, stop_all

CLK_TCK = os.sysconf("SC_CLK_TCK")
KNOB = "HELLO_TUI_NATIVE_RECV"


def main_thread_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def one_call(
    arm: str, seconds: float, tmp: Path, pulse_env: dict[str, str]
) -> dict[str, tuple[float, float, int]]:
    def env(home: str) -> dict[str, str]:
        extra = {"HELLO_TUI_AUDIO_BACKEND": "pulse", KNOB: arm}
        return isolated_env(tmp / home, **pulse_env, **extra)

    server = subprocess.Popen(
        hello_cmd("serve", "--port", "0", "--ephemeral", "--no-echo"),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env("s"),
    )  # fmt: skip
    procs = [server]
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" ", 1)[1].strip()
        alice, bob = signed_in_call(
            url, (env("a"), env("b")), ("device:", "device:", "device:"), seconds + 2, procs
        )
        time.sleep(1.0)
        t0 = time.monotonic()
        start = {p.pid: (main_thread_cpu(p.pid), cpu_seconds(p.pid)) for p in (alice, bob)}
        time.sleep(seconds)
        wall = time.monotonic() - t0
        if alice.poll() is not None or bob.poll() is not None:
            raise RuntimeError("a side ended before the window did (media-fail?)")
        out = {}
        for side, p in (("caller", alice), ("callee", bob)):
            m0, c0 = start[p.pid]
            out[side] = (100 * (main_thread_cpu(p.pid) - m0) / wall,
                         100 * (cpu_seconds(p.pid) - c0) / wall,
                         len(os.listdir(f"/proc/{p.pid}/task")))  # fmt: skip
        alice.wait(30)
        bob.wait(30)
        return out
    finally:
        stop_all(procs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=6, help="calls in all, arms alternated")
    ap.add_argument("--seconds", type=float, default=15.0)
    args = ap.parse_args()
    from tests.pulse import PulseDaemon

    results: dict[str, list[tuple[float, float]]] = {"1": [], "0": []}
    with tempfile.TemporaryDirectory() as root:
        daemon = PulseDaemon(Path(root) / "pulse")
        daemon.start()
        try:
            for i in range(args.calls):
                arm = "1" if i % 2 == 0 else "0"
                with tempfile.TemporaryDirectory(dir=root) as tmp:
                    r = one_call(arm, args.seconds, Path(tmp), daemon.env)
                load = os.getloadavg()[0]
                print(f"call {i + 1} {KNOB}={arm}: " + ", ".join(
                    f"{s} main {m:.2f} % process {c:.2f} % ({n} threads)"
                    for s, (m, c, n) in r.items()
                ) + f" (load {load:.1f})", flush=True)  # fmt: skip
                results[arm].extend((m, c) for m, c, _ in r.values())
        finally:
            daemon.stop()
    for arm, name in (("1", "C"), ("0", "Python")):
        rows = results[arm]
        if rows:
            print(f"{KNOB}={arm} ({name}), median of {len(rows)} sides: main thread "
                  f"{statistics.median(m for m, _ in rows):.2f} %, process "
                  f"{statistics.median(c for _, c in rows):.2f} % of one core")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
