#!/usr/bin/env python3
"""CPU per arm of a side-by-side run driven by ``bench/ab_env.sh``.

    .venv/bin/python bench/ab_env_table.py RESULTS_JSON AB_LOG

Per call and side: the process, its main thread (the event loop) and its
audio-device threads, in % of one core (the harness's /proc figures); then the
median per arm.
"""

from __future__ import annotations

import json
import statistics
import sys


def main(results_path: str, log_path: str) -> None:
    with open(results_path) as f:
        results = json.load(f)["results"]
    with open(log_path) as f:
        arm_of = dict(line.split() for line in f if line.strip())
    calls = [r for r in results if r.get("client") == "hello-tui"]
    arms: dict[str, dict[str, list[float]]] = {}
    for n, r in enumerate(calls, 1):
        arm = arm_of.get(str(n), "?")
        if "cpu_per_20s" not in r:
            print(f"call {n} ({arm}): failed: {r.get('error')}")
            continue
        row = arms.setdefault(arm, {"process": [], "main": [], "audio": []})
        for side in "ab":
            row["process"].append(r["cpu_per_20s"][side] * 5)
            row["main"].append(r["cpu_groups_per_20s"][side]["main"] * 5)
            row["audio"].append(r["cpu_groups_per_20s"][side]["audio_io"] * 5)
        print(
            f"call {n} ({arm}): process {r['cpu_per_20s']['a'] * 5:.2f} / "
            f"{r['cpu_per_20s']['b'] * 5:.2f}, main "
            f"{r['cpu_groups_per_20s']['a']['main'] * 5:.2f} / "
            f"{r['cpu_groups_per_20s']['b']['main'] * 5:.2f}, load {r.get('loadavg_before')}"
        )
    for arm, row in sorted(arms.items()):
        process = statistics.median(row["process"])
        print(
            f"arm {arm}: {len(row['process'])} sides: process {process:.2f}"
            f", main thread {statistics.median(row['main']):.2f}"
            f", audio threads {statistics.median(row['audio']):.2f} (% of one core, medians)"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
