"""Repeat a simultaneous two-pair A/B of ``server_load.py``, the arms swapped
between the pairs every run, and summarise the instances' CPU per exchange.

Both pairs of instances run at once on one Redis (``--python-ab``,
``--env-ab``, ``--code-ab``), so they share whatever else loads the machine;
but the pairs are not alike (the second pair has read lower in every session
that looked), so each arm takes each position in turn. The figure is A + B
CPU ms per exchange; the summary gives each arm's median and range and the
per-run ratio variant ÷ baseline with its median (docs/benchmarks.md,
session 11).

Run: ``.venv/bin/python bench/server_pair_ab.py --runs 8 --other-python
.venv3deb/bin/python`` (or ``--other-env KEY=VALUE``…, ``--other-code DIR``;
the rest of ``server_load.py``'s A/B command is ``--idle 0 --calls 8000
--rates 1000 --concurrency 128 --no-pin``, changed with ``--calls``,
``--rate``, ``--concurrency``). Exits 1 if a run lost or misrouted anything.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_ROW = re.compile(
    r"^(this|other) pair, open loop \S+ \(of \d+\)\s+\d+\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)",
    re.M,
)
_CPU = re.compile(r"^- (this|other) pair.*CPU ms per exchange A ([\d.]+), B ([\d.]+)", re.M)
_LOST = re.compile(r"^- (this|other) pair.*?(\d+) lost, (\d+) misrouted", re.M)


@dataclass
class Pair:
    """One pair's figures in one run."""

    rate: int
    p50: float
    p99: float
    a: float
    b: float
    bad: int  # lost + misrouted

    @property
    def ab(self) -> float:
        return self.a + self.b


def parse(out: str) -> dict[str, Pair]:
    """``this`` and ``other`` from one ``server_load.py`` A/B run's output."""
    rows = {m[1]: m for m in _ROW.finditer(out)}
    cpu = {m[1]: m for m in _CPU.finditer(out)}
    lost = {m[1]: m for m in _LOST.finditer(out)}
    pairs = {}
    for pos in ("this", "other"):
        if pos not in rows or pos not in cpu or pos not in lost:
            raise ValueError(f"no {pos} pair in the output:\n{out[-2000:]}")
        r, c, lo = rows[pos], cpu[pos], lost[pos]
        pairs[pos] = Pair(
            int(r[2]), float(r[3]), float(r[5]), float(c[2]), float(c[3]), int(lo[2]) + int(lo[3])
        )
    return pairs


def command(args: argparse.Namespace, variant_first: bool) -> tuple[list[str], dict[str, str]]:
    """The ``server_load.py`` run with the variant as the first pair or the second."""
    env = {**os.environ}
    base_python = args.python or sys.executable
    other_python = args.other_python or base_python
    variant_env = dict(kv.split("=", 1) for kv in args.other_env)
    # The baseline's value of each key the variant sets (empty when unset there).
    base_env = {k: os.environ.get(k, "") for k in variant_env}
    this_root, other_root = ROOT, (args.other_code or ROOT)
    this_python, python_ab, env_ab = base_python, other_python, variant_env
    if variant_first:
        this_root, other_root = other_root, this_root
        this_python, python_ab, env_ab = other_python, base_python, base_env
        env.update(variant_env)
    env["PYTHONPATH"] = str(this_root)
    cmd = [
        sys.executable, str(this_root / "bench" / "server_load.py"),
        "--idle", "0", "--calls", str(args.calls), "--rates", str(args.rate),
        "--concurrency", str(args.concurrency), "--no-pin",
    ]  # fmt: skip
    # (Only when needed: a checkout from before session 11 lacks these options.)
    if this_python != sys.executable:
        cmd += ["--server-python", this_python]
    if python_ab != this_python:
        cmd += ["--python-ab", python_ab]
    if other_root != this_root:
        cmd += ["--code-ab", str(other_root)]
    for key, value in env_ab.items():
        cmd += ["--env-ab", f"{key}={value}"]
    return cmd, env


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=8, help="runs, the arms swapped each (8)")
    ap.add_argument("--python", help="the baseline's interpreter (default: this one)")
    ap.add_argument("--other-python", help="the variant's interpreter")
    ap.add_argument("--other-env", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--other-code", type=Path, metavar="DIR", help="the variant's checkout")
    ap.add_argument("--calls", type=int, default=8000, help="exchanges per run, both pairs (8000)")
    ap.add_argument("--rate", type=int, default=1000, help="exchanges/s, both pairs (1000)")
    ap.add_argument("--concurrency", type=int, default=128, help="pairs of clients, both (128)")
    args = ap.parse_args(argv)
    if not (args.other_python or args.other_env or args.other_code):
        ap.error("nothing to compare: give --other-python, --other-env or --other-code")
    if args.other_code:
        args.other_code = args.other_code.resolve()
    runs: list[tuple[Pair, Pair]] = []  # (baseline, variant)
    bad = 0
    for i in range(args.runs):
        variant_first = i % 2 == 1
        cmd, env = command(args, variant_first)
        load = Path("/proc/loadavg").read_text().split()[0]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False).stdout
        pairs = parse(out)
        base, variant = (
            (pairs["other"], pairs["this"]) if variant_first else (pairs["this"], pairs["other"])
        )
        runs.append((base, variant))
        bad += base.bad + variant.bad
        where = "first" if variant_first else "second"
        print(
            f"{time.strftime('%H:%M:%S')} load {load} variant {where}: baseline A+B "
            f"{base.ab:.3f} (A {base.a:.3f}, B {base.b:.3f}, p99 {base.p99:g} ms) | variant "
            f"{variant.ab:.3f} (A {variant.a:.3f}, B {variant.b:.3f}, p99 {variant.p99:g} ms) | "
            f"{variant.ab / base.ab - 1:+.1%} | lost+misrouted {base.bad + variant.bad}",
            flush=True,
        )
    for name, k in (("baseline", 0), ("variant", 1)):
        ab = [r[k].ab for r in runs]
        print(f"{name}: A+B median {statistics.median(ab):.3f} ({min(ab):.3f}-{max(ab):.3f})")
    ratios = [v.ab / b.ab - 1 for b, v in runs]
    print(
        f"variant ÷ baseline per run: {', '.join(f'{r:+.1%}' for r in ratios)}; "
        f"median {statistics.median(ratios):+.1%}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
