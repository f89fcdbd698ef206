"""Per-stage mouth-to-ear budget of device calls, from bench/m2e_trace/ event files.

    # the side-by-side harness with the trace on (HT_BIN: a hello-tui command)
    HELLO_TUI_M2E_TRACE=/tmp/m2e-trace PYTHONPATH=bench/m2e_trace:$PWD \\
        HT_BIN=... bash ../shared/peers/side-by-side.sh 2 10 --arms hello-device
    python bench/mouth_to_ear_budget.py /tmp/m2e-trace [SBS_WORK/results.json]
    python bench/mouth_to_ear_budget.py --processing   # the processing stage's own delay

Each stage is the median over a direction's frames of the time its first sample
spends there (bench/m2e_trace/sitecustomize.py says how each is taken); the sum
is ADC to DAC as PortAudio reports them. With the harness's results.json, the
measured mouth-to-ear less that sum is what lies outside the processes (the
PulseAudio null sinks, remaps and recorders of the measurement chain) and the delay
inside the processed samples themselves, which no timestamp sees: ``--processing``
measures that one offline (white noise through ``CaptureProcessor``, the lag of the
cross-correlation's peak, stage by stage, and fed in 10 ms blocks as a call feeds it).
"""

from __future__ import annotations

import argparse
import bisect
import glob
import json
import os
import statistics
import sys
from collections import defaultdict
from typing import Any


def load(path: str) -> dict[str, list[list[float]]]:
    ev: dict[str, list[list[float]]] = defaultdict(list)
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                try:
                    ev[parts[0]].append([float(x) for x in parts[1:]])
                except ValueError:
                    continue
    for rows in ev.values():
        rows.sort(key=lambda r: r[0])
    return ev


def after(prev: list[float], times: list[float]) -> list[float]:
    """For each time, how long after the latest ``prev`` time before it."""
    out = []
    for t in times:
        i = bisect.bisect_right(prev, t)
        if i:
            out.append(t - prev[i - 1])
    return out


def ms(xs: list[float]) -> float | None:
    return round(statistics.median(xs) * 1000, 1) if xs else None


def direction(tx: dict[str, list[list[float]]], rx: dict[str, list[list[float]]]) -> dict:
    c = [r[0] for r in tx["C"]]
    p = [r[0] for r in tx["P"]]
    r_ = [r[0] for r in tx["R"]]
    s = [r[0] for r in tx["S"]]
    k = [r[0] for r in rx["K"]]
    i_ = [r[0] for r in rx["I"]]
    sent = {(int(x[1]), int(x[2])): x[0] for x in tx["S"]}
    net = [x[0] - sent[(int(x[1]), int(x[2]))] for x in rx["I"] if (int(x[1]), int(x[2])) in sent]
    age = [x[1] for x in tx["C"] if x[1] >= 0]
    proc = [x[2] for x in tx["C"]]
    out = [x for x in rx["O"]]
    stages = {
        "capture: block (20 ms) + input latency (ADC → callback)": ms(age),
        "  of which the processing stage's CPU in the callback": ms(proc),
        "callback → event loop (processing + call_soon_threadsafe hop)": ms(after(c, p)),
        "event loop → sender's recv() (queue)": ms(after(p, r_)),
        "recv() → RTP sent (encode, packetize, SRTP)": ms(after(r_, s)),
        "network (loopback UDP, both event loops)": ms(net),
        "RTP in → playout buffer (jitter buffer, decode, sink task)": ms(after(i_, k)),
        "playout buffer residence": ms([x[1] for x in out]),
        "speaker's card buffer (callback → DAC)": ms([x[2] for x in out if x[2] >= 0]),
    }
    total = sum(v for key, v in stages.items() if v is not None and not key.startswith("  "))
    stages["sum: ADC → DAC"] = round(total, 1)
    stages["(playout depth before a pull / target, ms)"] = (
        f"{ms([x[3] / 1000 for x in out])} / {ms([x[4] / 1000 for x in out])}"
    )
    return stages


def _lag_ms(x: Any, out: Any) -> float:
    """The lag of ``out`` behind ``x`` (white noise), to a tenth of a sample: the peak of
    their cross-correlation over the middle second, refined by a parabola."""
    import numpy as np

    a, b = x[48_000:96_000].astype(float), out[48_000:96_000].astype(float)
    c = np.abs(np.correlate(b, a[: len(a) - 2000], "valid"))
    k = int(np.argmax(c))
    if 0 < k < len(c) - 1:
        y0, y1, y2 = c[k - 1], c[k], c[k + 1]
        k += 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)
    return k * 1000 / 48_000


def processing_delays() -> None:
    """The processing stage's own delay, stage by stage, and what our feeding adds.

    Every stage runs on WebRTC's split bands (3 × 16 kHz at 48 kHz): the band split
    and merge are in every row ("high-pass only"); each stage's own share is its row
    less that one. Then the whole chain fed as a call feeds it (10 ms blocks, each
    processed as it arrives) and in 20 ms frames: the samples' delay must be the same
    (our rechunking adds no delay of its own); the time a 20 ms frame waits for its
    processing after its last sample is captured is one 10 ms block's CPU, not two."""
    import time

    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from hello_tui.media.audio_processing import CaptureProcessor, ProcessingConfig

    rng = np.random.default_rng(1)
    x = (rng.standard_normal(48_000 * 3) * 3000).astype(np.int16)

    def run(aec: bool, ns: bool, agc: bool, block: int = 960) -> tuple[float, float]:
        cfg = ProcessingConfig(aec=aec, noise_suppression=ns, auto_gain=agc)
        proc = CaptureProcessor(cfg, echo_cancellation=cfg.aec)
        t0 = time.thread_time()
        out = np.concatenate([proc.process(x[i : i + block]) for i in range(0, len(x), block)])
        cpu = (time.thread_time() - t0) * 1000 / (len(x) // block)
        return _lag_ms(x, out), cpu

    print("processing stage: delay in its output, ms (offline, white noise, 20 ms frames)")
    split, _ = run(False, False, False)
    print(f"  {'high-pass only (= band split + merge)':<42} {split:5.2f}")
    for name, flags in (("aec (AEC3)", (1, 0, 0)), ("ns", (0, 1, 0)), ("agc (AGC2)", (0, 0, 1))):
        lag, _ = run(*map(bool, flags))
        print(f"  {name:<42} {lag:5.2f}   its own: {lag - split:5.2f}")
    lag20, cpu20 = run(True, True, True, 960)
    lag10, cpu10 = run(True, True, True, 480)
    print(f"  {'aec+ns+agc, 20 ms frames':<42} {lag20:5.2f}   CPU per frame {cpu20:.2f} ms")
    print(
        f"  {'aec+ns+agc, 10 ms blocks (as in a call)':<42} {lag10:5.2f}"
        f"   CPU per block {cpu10:.2f} ms"
    )


def main() -> None:
    if "--processing" in sys.argv:
        processing_delays()
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("trace_dir")
    ap.add_argument("results", nargs="?", help="the harness's results.json")
    a = ap.parse_args()
    calls = sorted(glob.glob(os.path.join(a.trace_dir, "call-*.m2e")), key=os.path.getmtime)
    answers = sorted(glob.glob(os.path.join(a.trace_dir, "answer-*.m2e")), key=os.path.getmtime)
    rows: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for cf, af in zip(calls, answers, strict=False):
        ca, an = load(cf), load(af)
        for d, (tx, rx) in {"A→B": (ca, an), "B→A": (an, ca)}.items():
            for key, v in direction(tx, rx).items():
                rows[key][d].append(v)
    measured: dict[str, list[float]] = defaultdict(list)
    if a.results:
        with open(a.results) as f:
            for r in json.load(f)["results"]:
                if r.get("arm") == "hello-device" and "latency" in r:
                    measured["A→B"].append(r["latency"]["a_to_b"]["median_ms"])
                    measured["B→A"].append(r["latency"]["b_to_a"]["median_ms"])
    print(f"{len(calls)} calls; cells: per-call medians, listed per call")
    for key, per in rows.items():
        print(f"  {key:<66} " + "  ".join(f"{d}: {per[d]}" for d in ("A→B", "B→A")))
    if measured:
        print(
            f"  {'mouth-to-ear measured by the harness':<66} "
            + "  ".join(f"{d}: {measured[d]}" for d in ("A→B", "B→A"))
        )


if __name__ == "__main__":
    main()
