"""The table of bench/pulse_backend.sh: per backend, medians over its runs of the
hello-tui device: call's figures and their ratio to the same run's baresip call.

    python bench/pulse_backend_table.py OUT_DIR   (OUT_DIR/<backend>-<round>/results.json)
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def figures(r: dict[str, Any]) -> dict[str, float]:
    """Per side (caller a, callee b, averaged): CPU %, peak RSS MiB; mouth-to-ear ms both
    ways; dial -> first remote audio per side."""
    window = r.get("window_s") or 20.0
    cpu = [r["cpu_call_s"][s] / window * 100 for s in ("a", "b")]
    rss = [r["mem_kb"][s]["VmHWM"] / 1024 for s in ("a", "b")]
    out = {"cpu %": statistics.mean(cpu), "peak RSS MiB": statistics.mean(rss)}
    groups = r.get("cpu_groups_per_20s") or {}
    if all(s in groups for s in ("a", "b")):  # per thread group (the harness's split)
        for key, group in (("cpu main thread %", "main"), ("cpu audio threads %", "audio_io")):
            out[key] = statistics.mean(groups[s][group] * 5 for s in ("a", "b"))
    lat = r.get("latency") or {}
    ways = [lat[d]["median_ms"] for d in ("a_to_b", "b_to_a") if lat.get(d, {}).get("median_ms")]
    if ways:
        out["mouth-to-ear ms"] = statistics.mean(ways)
    for side, key in (("caller", "media_flowing_a_ms"), ("callee", "media_flowing_b_ms")):
        if r.get(key) is not None:
            out[f"first audio {side} ms"] = float(r[key])
    drops = [lat[d].get("dropout_ms", 0) for d in ("a_to_b", "b_to_a") if d in lat]
    if drops:
        out["dropouts ms"] = float(sum(drops))
    return out


def main(out_dir: Path) -> None:
    rows: dict[str, dict[str, list[float]]] = {}
    loads: dict[str, list[str]] = {}
    for path in sorted(out_dir.glob("*-*/results.json")):
        backend = path.parent.name.rsplit("-", 1)[0]
        data = json.loads(path.read_text())
        by_arm = {r.get("arm"): r for r in data["results"] if "error" not in r}
        if "hello-device" not in by_arm:
            continue
        mine = figures(by_arm["hello-device"])
        base = figures(by_arm["baresip"]) if "baresip" in by_arm else {}
        cell = rows.setdefault(backend, {})
        for key, value in mine.items():
            cell.setdefault(key, []).append(value)
            if base.get(key):
                cell.setdefault(f"{key} / baresip", []).append(value / base[key])
        loads.setdefault(backend, []).append(by_arm["hello-device"].get("loadavg_before", "?"))
    keys = sorted({k for cell in rows.values() for k in cell})
    backends = sorted(rows)
    print(f"{'median over runs':34}" + "".join(f"{b:>16}" for b in backends))
    for key in keys:
        cells = []
        for b in backends:
            values = rows[b].get(key, [])
            cells.append(f"{statistics.median(values):16.2f}" if values else f"{'-':>16}")
        print(f"{key:34}" + "".join(cells))
    for b in backends:
        print(f"{b}: {len(loads[b])} run(s); 1-min load before each hello-tui call: "
              + ", ".join(load.split()[0] for load in loads[b]))  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]))
