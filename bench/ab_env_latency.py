#!/usr/bin/env python3
"""Mouth-to-ear, dropouts and the far end's jitter per arm of a side-by-side run
driven by ``bench/ab_env.sh`` (``bench/ab_env_table.py`` gives the CPU).

    .venv/bin/python bench/ab_env_latency.py SBS_WORK AB_LOG

SBS_WORK: the harness's work folder (``results.json``, ``logs/``). Per arm: the
harness's per-call, per-direction mouth-to-ear medians; the dropouts per call
(both directions); and the receiver's RFC 3550 jitter of the quality samples
both sides logged (one a second, from 3 s on), which is the other side's send
timing plus the network and this side's loop.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def main(work: str, log_path: str) -> None:
    base = Path(work)
    results = json.loads((base / "results.json").read_text())["results"]
    with open(log_path) as f:
        arm_of = dict(line.split() for line in f if line.strip())
    calls = [r for r in results if r.get("client") == "hello-tui"]
    arms: dict[str, dict[str, list[float]]] = {}
    for n, r in enumerate(calls, 1):
        arm = arm_of.get(str(n), "?")
        row = arms.setdefault(arm, {"m2e": [], "dropouts": [], "jitter": []})
        latency = r.get("latency")
        if latency:
            row["m2e"] += [latency[d]["median_ms"] for d in ("a_to_b", "b_to_a")]
            row["dropouts"].append(sum(latency[d]["dropout_ms"] for d in ("a_to_b", "b_to_a")))
        for side in ("a", "b"):
            log = base / "logs" / f"hello-device-call{r['call']}" / f"{side}.log"
            if not log.is_file():
                continue
            for line in log.read_text().splitlines():
                if '"kind": "quality"' not in line:
                    continue
                sample = json.loads(line.split(" ", 1)[1])["sample"]
                if sample.get("t", 0) >= 3 and sample.get("jitter_ms") is not None:
                    row["jitter"].append(sample["jitter_ms"])
    for arm, row in sorted(arms.items()):
        m2e, drops, jit = row["m2e"], row["dropouts"], sorted(row["jitter"])
        parts = [f"arm {arm}:"]
        if m2e:
            parts.append(f"mouth-to-ear {statistics.median(m2e):.1f} ms "
                         f"[{min(m2e):.1f}-{max(m2e):.1f}] (n={len(m2e)});")  # fmt: skip
            parts.append(f"dropouts per call {statistics.median(drops):.0f} ms "
                         f"[{min(drops):.0f}-{max(drops):.0f}];")  # fmt: skip
        if jit:
            parts.append(f"far end's jitter {statistics.median(jit):.2f} ms "
                         f"(p90 {jit[int(0.9 * len(jit))]:.2f}, n={len(jit)})")  # fmt: skip
        print(" ".join(parts))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
