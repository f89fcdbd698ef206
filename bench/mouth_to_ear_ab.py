"""Mouth-to-ear A/B of latency settings, side by side, arms alternated run by run.

    python bench/mouth_to_ear_ab.py --rounds 3 --call-s 10 \\
        --arm base= --arm card10=sinks.SPEAKER_LATENCY=0.01

Each arm is ``NAME=SETTINGS`` (``HELLO_TUI_M2E_SET``, see bench/m2e_trace/sitecustomize.py;
empty: the defaults). Each round runs ``../shared/peers/side-by-side.sh 1 CALL_S --arms
hello-device [--no-calibrate]`` once per arm, in turn, with this worktree's code and the
per-stage trace on, so the arms share the machine's noise. The table: per arm, the
medians over calls of the harness's mouth-to-ear (both directions), its far-end
dropouts per call, the trace's stages, and the 1-min load average before each call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import mouth_to_ear_budget as budget  # noqa: E402


def wrapper(work: str) -> str:
    """A hello-tui command running a snapshot of this checkout (edits made while the
    runs go on do not leak into them) with the trace folder first on the path."""
    snap = os.path.join(work, "code")
    shutil.copytree(os.path.join(ROOT, "hello_tui"), os.path.join(snap, "hello_tui"))
    shutil.copytree(os.path.join(HERE, "m2e_trace"), os.path.join(snap, "m2e_trace"))
    path = os.path.join(work, "hello-tui")
    exe = os.path.join(os.path.dirname(sys.executable), "hello-tui")
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexport PYTHONPATH={snap}/m2e_trace:{snap}\nexec {exe} "$@"\n')
    os.chmod(path, 0o755)
    return path


def run(arm: str, settings: str, rnd: int, opts: argparse.Namespace, cmd: str) -> dict:
    work = os.path.join(opts.work, f"{arm}-{rnd}")
    trace = os.path.join(work, "trace")
    os.makedirs(trace, exist_ok=True)
    env = dict(os.environ)
    env.update(
        HT_BIN=cmd,
        SBS_WORK=os.path.join(work, "sbs"),
        HT_HOME_PREFIX=os.path.join(work, "home-"),
        HELLO_TUI_M2E_TRACE=trace,
        HELLO_TUI_M2E_SET=settings,
    )
    args = ["bash", opts.harness, "1", str(opts.call_s), "--arms", "hello-device"]
    if not opts.calibrate:
        args.append("--no-calibrate")
    with open(os.path.join(work, "harness.out"), "w") as out:
        subprocess.run(args, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    res: dict = {"arm": arm}
    try:
        with open(os.path.join(work, "sbs", "results.json")) as f:
            r = json.load(f)["results"][0]
        res["load"] = float(r["loadavg_before"].split()[0])
        for d in ("a_to_b", "b_to_a"):
            res[d] = r["latency"][d]["median_ms"]
        res["dropouts"] = sum(r["latency"][d]["dropout_ms"] for d in ("a_to_b", "b_to_a"))
    except (OSError, KeyError, IndexError, ValueError) as exc:
        res["error"] = repr(exc)
        return res
    calls = [os.path.join(trace, f) for f in os.listdir(trace) if f.startswith("call-")]
    answers = [os.path.join(trace, f) for f in os.listdir(trace) if f.startswith("answer-")]
    if calls and answers:
        ca, an = budget.load(calls[0]), budget.load(answers[0])
        res["stages"] = {"A→B": budget.direction(ca, an), "B→A": budget.direction(an, ca)}
    return res


def med(xs: list) -> str:
    xs = [x for x in xs if x is not None]
    return f"{statistics.median(xs):.1f}" if xs else "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--arm", action="append", required=True, help="NAME=SETTINGS")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--call-s", type=float, default=10.0)
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--work", default=tempfile.mkdtemp(prefix="m2e-ab-"))
    ap.add_argument(
        "--harness",
        default=os.path.join(ROOT, "..", "..", "shared", "peers", "side-by-side.sh"),
    )
    opts = ap.parse_args()
    if not os.path.exists(opts.harness):
        opts.harness = "/work/shared/peers/side-by-side.sh"
    arms = [a.partition("=")[::2] for a in opts.arm]
    cmd = wrapper(opts.work)
    results: dict[str, list[dict]] = defaultdict(list)
    for rnd in range(1, opts.rounds + 1):
        for name, settings in arms:
            r = run(name, settings, rnd, opts, cmd)
            results[name].append(r)
            print(json.dumps({k: v for k, v in r.items() if k != "stages"}), flush=True)
    keys = [
        "capture: block (20 ms) + input latency (ADC → callback)",
        "playout buffer residence",
        "speaker's card buffer (callback → DAC)",
        "sum: ADC → DAC",
    ]
    print(
        f"\nmouth-to-ear A/B, {opts.rounds} rounds x {opts.call_s:.0f} s; medians over calls"
        f" (work: {opts.work})"
    )
    print("  arm             A→B    B→A   dropouts/call  capture  playout  card   ADC→DAC  load")
    for name, settings in arms:
        rs = [r for r in results[name] if "error" not in r]
        st = [r["stages"][d] for r in rs if "stages" in r for d in ("A→B", "B→A")]
        cols = [med([s[k] for s in st]) for k in keys]
        print(
            f"  {name:<14} {med([r['a_to_b'] for r in rs]):>6} {med([r['b_to_a'] for r in rs]):>6}"
            f"  {med([r['dropouts'] for r in rs]):>13}  {cols[0]:>7}  {cols[1]:>7}  {cols[2]:>5}"
            f"  {cols[3]:>7}  {' '.join(str(r['load']) for r in rs)}"
            f"   [{settings or 'defaults'}]"
            + (f"  ({len(results[name]) - len(rs)} failed)" if len(rs) < len(results[name]) else "")
        )


if __name__ == "__main__":
    main()
