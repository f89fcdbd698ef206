"""``bench/aec.py`` with a per-block trace of the echo canceller's pairing, per call.

For each call with echo cancellation, per second: the far end's clock offset (each
block's play time minus its sample count, as ``CaptureProcessor.feed_far`` gets it)
and the near end's (capture time minus count), both relative to the call's start
(median, [min, max]), the blocks flagged as after an underrun / overflow, and the
pairing lag; then the echo delay in what AEC3 was given per 0.5 s (cross-correlation
peak, its height). A steady call has flat offsets and one echo delay; a far offset
that steps with no flag is a pairing move the speaker's timing caused (session 9:
docs/benchmarks.md, "the pulse speaker's timing").

    HELLO_TUI_AUDIO_BACKEND=pulse PYTHONPATH=. python bench/aec_pairing_trace.py --calls 2
(any bench/aec.py options; the trace follows each call's own lines).
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hello_tui.media import audio_processing as ap

RATE = 48_000
_feed, _process, _stats = (
    ap.CaptureProcessor.feed_far, ap.CaptureProcessor.process, ap.CaptureProcessor.stats
)  # fmt: skip


def _trace(proc: Any) -> dict[str, list[Any]]:
    if not hasattr(proc, "_trace"):
        proc._trace = {"far": [], "near": [], "pairs": []}
    return proc._trace  # type: ignore[no-any-return]


def feed_far(
    self: Any, samples: Any, play_time: float | None = None, underflow: bool = False
) -> None:
    _trace(self)["far"].append((time.monotonic(), play_time, underflow, self._far_count))
    _feed(self, samples, play_time, underflow)


def process(self: Any, near: Any, capture_time: float | None = None, overflow: bool = False) -> Any:
    tr = _trace(self)
    tap = self.tap
    if tap is not None and not getattr(tap, "traced", False):

        def traced(n: Any, f: Any, tap: Any = tap) -> None:
            tr["pairs"].append((n.copy(), f.copy()))
            tap(n, f)

        traced.traced = True  # type: ignore[attr-defined]
        self.tap = traced
    start = self._near_count
    out = _process(self, near, capture_time, overflow)
    tr["near"].append((time.monotonic(), capture_time, overflow, start, self._lag or 0))
    return out


def stats(self: Any) -> Any:
    """bench/aec.py asks for the stats once per call, after it: print the trace then."""
    summary(_trace(self))
    self._trace = {"far": [], "near": [], "pairs": []}
    return _stats(self)


def summary(tr: dict[str, list[Any]]) -> None:
    far = [(t, pt - n / RATE, u) for t, pt, u, n in tr["far"] if pt is not None]
    near = [(t, ct - n / RATE, o, lag) for t, ct, o, n, lag in tr["near"] if ct is not None]
    if not far or not near:
        return
    t0 = near[0][0]
    f0 = float(np.median([o for _, o, _ in far[:50]]))
    n0 = float(np.median([o for _, o, _, _ in near[:50]]))
    end = max(far[-1][0], near[-1][0]) - t0
    for s in np.arange(0.0, end, 1.0):
        fs = [(o - f0) * 1000 for t, o, _ in far if s <= t - t0 < s + 1]
        ns = [(o - n0) * 1000 for t, o, _, _ in near if s <= t - t0 < s + 1]
        if not fs or not ns:
            continue
        uf = sum(u for t, _, u in far if s <= t - t0 < s + 1)
        ov = sum(o for t, _, o, _ in near if s <= t - t0 < s + 1)
        lag = np.median([lg for t, _, _, lg in near if s <= t - t0 < s + 1]) * 1000 / RATE
        print(f"      t={s:3.0f} s  far {np.median(fs):+7.1f} [{min(fs):+6.1f},{max(fs):+6.1f}] "
              f"flagged {uf}  near {np.median(ns):+7.1f} [{min(ns):+6.1f},{max(ns):+6.1f}] "
              f"overflow {ov}  lag {lag:6.1f} ms")  # fmt: skip
    if tr["pairs"]:
        n = np.concatenate([p[0] for p in tr["pairs"]]).astype(np.float64)
        f = np.concatenate([p[1] for p in tr["pairs"]]).astype(np.float64)
        cells, size = [], RATE // 2
        for s in range(0, len(n) - size + 1, size):
            fw, nw = f[s : s + size], n[s : s + size]
            if np.std(fw) < 50:
                cells.append("-")
                continue
            k = 1 << int(np.ceil(np.log2(2 * size)))
            xc = np.fft.irfft(np.fft.rfft(nw, k) * np.conj(np.fft.rfft(fw, k)), k)
            xc = np.abs(xc[: RATE // 4])
            peak = xc.max() / (np.linalg.norm(fw) * np.linalg.norm(nw) + 1e-9)
            cells.append(f"{np.argmax(xc) * 1000 / RATE:.0f}({peak:.2f})")
        print("      echo delay per 0.5 s, ms (peak):", " ".join(cells))


ap.CaptureProcessor.feed_far = feed_far  # type: ignore[method-assign]
ap.CaptureProcessor.process = process  # type: ignore[method-assign]
ap.CaptureProcessor.stats = stats  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = [str(Path(__file__).with_name("aec.py")), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
