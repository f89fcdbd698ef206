"""Summarise an A/B side-by-side run made with ``bench/ab_hello.sh``: per arm and
tree, the medians (and each call) of dial → ringing, → connected, and → first
remote audio at the caller and at the callee, in ms from the caller's dial.

    python bench/setup_ab.py $SBS_WORK/results.json $AB_STATE/ab.log [--trace HT_TRACE_DIR]

With ``--trace`` (the run made with ``HT_TRACE=DIR``, one hello arm), also the
path from each side's connect to the far side's first audio, per direction and
tree (medians): connect → the first frame on the loop (and how many microphone
callbacks it waited for), → the sender's ``recv``, → its next ``recv`` (encode
and send, and whatever else ran), → the far side's first decoded frame.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

FIELDS = ("ringing_a_ms", "connected_a_ms", "media_flowing_a_ms", "media_flowing_b_ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path, help="the harness's results.json")
    ap.add_argument("ab_log", type=Path, help="ab_hello.sh's ab.log (call number, tree)")
    ap.add_argument("--trace", type=Path, help="the HT_TRACE folder of the same run")
    opts = ap.parse_args()
    results = json.loads(opts.results.read_text())["results"]
    trees = [line.split()[1] for line in opts.ab_log.read_text().splitlines() if line.strip()]
    hello = [r for r in results if str(r.get("arm", "")).startswith("hello")]
    table: dict[tuple[str, str], dict[str, list[float]]] = {}
    for result, tree in zip(hello, trees, strict=False):
        if "error" in result:
            print(f"FAILED {tree} {result['arm']}: {result['error'][:200]}")
            continue
        row = table.setdefault((result["arm"], tree), {})
        for field in FIELDS:
            if result.get(field) is not None:
                row.setdefault(field, []).append(float(result[field]))
    for (arm, tree), row in sorted(table.items()):
        cells = [
            f"{f.removesuffix('_ms')} {statistics.median(v):.0f} {[round(x) for x in v]}"
            for f, v in row.items()
        ]
        print(f"{arm:13} {tree:5} " + "; ".join(cells))
    if opts.trace:
        after_connect(opts.trace, trees)


def _marks(path: Path) -> list[tuple[float, str]]:
    lines = [ln.split(" ", 4) for ln in path.read_text().splitlines() if ln.startswith("SETUP")]
    return [(float(x[1]) * 1000, x[4].strip()) for x in lines]


def _at(marks: list[tuple[float, str]], label: str, after: float = float("-inf")) -> float:
    return next(t for t, text in marks if t >= after and text.startswith(label))


def after_connect(trace: Path, trees: list[str]) -> None:
    """Connect → far side's first audio, step by step (bench/setup_trace marks)."""
    by_age = sorted(trace.glob("call-*.trace"), key=lambda p: p.stat().st_mtime)
    answers = sorted(trace.glob("answer-*.trace"), key=lambda p: p.stat().st_mtime)
    steps = ("connect → frame on loop", "→ recv", "→ next recv", "→ far side decoded")
    table: dict[tuple[str, str], list[list[float]]] = {}
    for caller, callee, tree in zip(by_age, answers, trees, strict=False):
        a, b = _marks(caller), _marks(callee)
        for direction, (tx, rx) in {"caller → callee": (a, b), "callee → caller": (b, a)}.items():
            try:
                connect = _at(tx, "media connected: mic kept >")
                frame = _at(tx, "mic block on the loop >", connect)
                recv = _at(tx, "mic recv <", frame)
                sent = _at(tx, "mic recv >", recv)
                decoded = _at(rx, "first frame decoded >")
            except StopIteration:
                continue
            callback = "mic callback (PortAudio thread) >"
            # the callbacks after the connect, the one that completed the frame included
            waited = sum(1 for t, text in tx if connect <= t < frame and text == callback)
            row = [frame - connect, recv - frame, sent - recv, decoded - sent, float(waited)]
            table.setdefault((direction, tree), []).append(row)
    for (direction, tree), rows in sorted(table.items()):
        cols = list(zip(*rows, strict=True))
        cells = [f"{s} {statistics.median(c):.1f}" for s, c in zip(steps, cols, strict=False)]
        waits = [int(x) for x in cols[-1]]
        print(f"{direction:16} {tree:5} " + "; ".join(cells) + f"; callbacks waited {waits}")


if __name__ == "__main__":
    main()
