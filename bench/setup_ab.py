"""Summarise an A/B side-by-side run made with ``bench/ab_hello.sh``: per arm and
tree, the medians (and each call) of dial → ringing, → connected, and → first
remote audio at the caller and at the callee, in ms from the caller's dial.

    python bench/setup_ab.py $SBS_WORK/results.json $AB_STATE/ab.log
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


if __name__ == "__main__":
    main()
