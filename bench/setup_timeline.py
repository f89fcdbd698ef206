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


if __name__ == "__main__":
    main()
