"""One call's setup timeline per side, from a side-by-side harness run traced with
``bench/setup_trace`` (``HT_TRACE=DIR``) (docs/media.md, "Where setup time goes").

    HT_TRACE=1 HT_BIN=<wrapper> ... side-by-side.sh 1 6 --arms hello-device
    python bench/setup_timeline.py WORK/logs/hello-device-call1 TRACE_DIR

Prints each ``SETUP`` line of the caller (a) and the callee (b) in time order, in
ms from the caller's ``dialing`` event (its ``--json`` line), side by side, and
the two sides' ``media-flowing``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def traced(trace_dir: Path, command: str, near: float) -> list[tuple[float, str]]:
    """The SETUP lines of the ``command`` process whose trace spans ``near``."""
    for path in sorted(trace_dir.glob(f"{command}-*.trace")):
        lines = [ln.split(" ", 4) for ln in path.read_text().splitlines() if ln.startswith("SETUP")]
        stamps = [float(x[1]) for x in lines]
        if stamps and min(stamps) - 15 <= near <= max(stamps) + 1:
            return [(float(t), f"{label}  [cpu {cpu}]") for _, t, _pid, cpu, label in lines]
    return []


def events(path: Path) -> list[tuple[float, str]]:
    """(time.time(), text) of one side's --json events."""
    out: list[tuple[float, str]] = []
    log = path.with_suffix(".log")
    for line in log.read_text(errors="replace").splitlines() if log.exists() else ():
        try:
            msg = json.loads(line.split(" ", 1)[1])
        except (IndexError, ValueError):
            continue
        if isinstance(msg, dict) and "t" in msg and msg.get("kind") not in ("quality",):
            out.append((float(msg["t"]), f"EVENT {msg['kind']}"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("logdir", type=Path, help="a call's log folder (a.log, b.log)")
    ap.add_argument("trace_dir", type=Path, help="HELLO_TUI_SETUP_TRACE's folder")
    opts = ap.parse_args()
    a, b = events(opts.logdir / "a"), events(opts.logdir / "b")
    t0 = next(t for t, text in a if text == "EVENT dialing")
    a += traced(opts.trace_dir, "call", t0)
    b += traced(opts.trace_dir, "answer", t0)
    rows = sorted([(t, "caller", x) for t, x in a] + [(t, "callee", x) for t, x in b])
    for t, side, text in rows:
        ms = (t - t0) * 1000
        if -50 <= ms <= 2000:
            pad = "" if side == "caller" else " " * 44
            print(f"{ms:8.1f}  {pad}{text}")
    # The CPU each process spent from the call's start (dial / incoming) to its first
    # remote audio: the work on the setup path, which the machine's load does not inflate.
    for side, rows_ in (("caller", sorted(a)), ("callee", sorted(b))):
        start = "dial >" if side == "caller" else "incoming >"
        print(f"CPU {side}: {cpu_between(rows_, start, 'EVENT media-flowing')} ms")


def cpu_between(rows: list[tuple[float, str]], start: str, end: str) -> str:
    """Process CPU ms from the traced line ``start`` to the last traced line before ``end``."""
    first = next((i for i, (_, x) in enumerate(rows) if x.startswith(start)), None)
    last = next((i for i, (_, x) in enumerate(rows) if x == end), None)
    if first is None or last is None:
        return "?"
    cpus = [float(x.rsplit("[cpu ", 1)[1].rstrip("]")) for _, x in rows[first:last] if "[cpu " in x]
    return f"{cpus[-1] - cpus[0]:.1f}" if cpus else "?"


if __name__ == "__main__":
    main()
