"""Replay real calls' arrival and pull times through the playout buffer, per setting.

    python bench/playout_replay.py /tmp/m2e-ab [--set NAME=FIELD=V,FIELD=V ...]

The traces (bench/m2e_trace/: ``K`` = a decoded frame pushed, ``Q``/``O`` = the speaker's
callbacks) of every ``*.m2e`` under the folder are replayed through
:class:`~hello_tui.media.playout.PlayoutBuffer` with each setting: the same arrivals and
the same card callbacks for every arm, so the A/B shares the machine's noise exactly
(stalls, bursts, late callbacks). Content is hiss at about -36 dBFS (the side-by-side
harness's stimulus: never quiet, so quiet blocks are never skipped). Per arm: the
first sample of each pull's time in the buffer (median, mean, p95), the silence played
once audio had started (underruns and refills), and what the accelerate splices took.
Traces without ``Q`` lines get their callbacks from the ``O`` lines, gaps filled at 10 ms.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import glob
import os
import statistics
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from hello_tui.media.playout import PlayoutBuffer  # noqa: E402
from hello_tui.media.sinks import DEVICE_PLAYOUT  # noqa: E402

RATE = 48_000


def events(path: str) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    pushes, pulls, outs = [], [], []
    with open(path) as f:
        for line in f:
            p = line.split()
            if p[0] == "K":
                pushes.append((float(p[1]), int(p[2])))
            elif p[0] == "Q":
                pulls.append((float(p[1]), int(p[2])))
            elif p[0] == "O":
                outs.append(float(p[1]))
    if not pulls and outs and pushes:  # older traces: pulls only when not priming
        times: list[float] = []
        t = pushes[0][0] - 0.010
        for o in sorted(outs):
            while o - t > 0.015:
                t += 0.010
                times.append(t)
            times.append(o)
            t = o
        pulls = [(t, 480) for t in times]
    return sorted(pushes), sorted(pulls)


def replay(pushes, pulls, config) -> dict:
    rng = np.random.default_rng(1)
    buf = PlayoutBuffer(config)
    q: collections.deque[tuple[int, int, float]] = collections.deque()
    pushed, resid, silence, started = 0, [], 0, False
    i = 0
    for t, n in pulls:
        while i < len(pushes) and pushes[i][0] <= t:
            tp, m = pushes[i]
            buf.push((rng.standard_normal(m) * 500).astype(np.int16), now=tp)
            q.append((pushed, m, tp))
            pushed += m
            i += 1
        depth, priming = buf.depth, buf._priming
        out = buf.pull(n)
        if priming and buf._priming:
            silence += n if started else 0
            continue
        started = True
        first = pushed - depth
        while q and q[0][0] + q[0][1] <= first:
            q.popleft()
        if q and q[0][0] <= first:
            resid.append(t - q[0][2] - (first - q[0][0]) / RATE)
        if buf._priming:  # starved in this pull: what was missing played as silence
            silence += int(np.count_nonzero(out == 0))
    return {
        "resid": resid,
        "silence_ms": silence * 1000 / RATE,
        "underruns": buf.underruns,
        "accelerated_ms": getattr(buf, "accelerated", 0) * 1000 / RATE,
    }


def parse_set(text: str):
    name, _, fields = text.partition("=")
    values = {}
    for item in filter(None, fields.split(",")):
        k, _, v = item.partition("=")
        values[k] = float(v)
    return name, dataclasses.replace(DEVICE_PLAYOUT, **values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--set", action="append", default=[], help="NAME=FIELD=V,FIELD=V")
    opts = ap.parse_args()
    arms = [("defaults", DEVICE_PLAYOUT)] + [parse_set(s) for s in opts.set]
    files = sorted(glob.glob(os.path.join(opts.folder, "**", "*.m2e"), recursive=True))
    traces = [e for e in (events(f) for f in files) if e[0] and len(e[1]) > 100]
    print(f"{len(traces)} speakers' traces from {opts.folder}")
    print(
        "  arm                 in buffer ms: median  mean   p95   silence ms/trace: median"
        "  mean   underruns/trace  spliced ms/trace"
    )
    for name, cfg in arms:
        runs = [replay(p, q, cfg) for p, q in traces]
        res = [x * 1000 for r in runs for x in r["resid"]]
        sil = [r["silence_ms"] for r in runs]
        underruns = statistics.fmean([r["underruns"] for r in runs])
        print(
            f"  {name:<20} {statistics.median(res):>22.1f} {statistics.fmean(res):>6.1f}"
            f" {np.percentile(res, 95):>5.1f} {statistics.median(sil):>24.0f}"
            f" {statistics.fmean(sil):>6.0f} {underruns:>16.1f}"
            f" {statistics.fmean([r['accelerated_ms'] for r in runs]):>17.0f}"
        )


if __name__ == "__main__":
    main()
