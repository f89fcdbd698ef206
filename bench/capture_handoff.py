#!/usr/bin/env python3
"""The event loop's share of the C capture path's hand-off, per 20 ms frame (issue 17).

Feeds a ``NativeCapture`` two 10 ms chunks per frame through its binding (what
libpulse's read callback does in C) and times, in this thread's CPU, what the
event loop does per eventfd wake-up in ``DeviceSource._on_frames``: the eventfd
read, ``take()`` (the frames and counters in one call into C) and the frames'
iteration. Needs the AEC3 shim built with capture_path.cpp.

    PYTHONPATH=. .venv/bin/python bench/capture_handoff.py [--frames 5000]

A 1-point difference of a side's main thread would be 200 µs a frame.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hello_tui.media import capture_native


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=5000)
    n = ap.parse_args().frames
    capture = capture_native.NativeCapture(0.5, -40.0)
    capture.listen()
    binding = capture.bind(0, 480, 0.01)
    chunk = (np.random.default_rng(1).standard_normal(480) * 2000).astype(np.int16)
    feed = read = 0.0
    at = 1.0
    for _ in range(n):
        t0 = time.thread_time()
        binding.chunk(chunk, at)
        binding.chunk(chunk, at + 0.01)
        at += 0.02
        t1 = time.thread_time()
        capture.drain_wake()
        while True:
            frames, _counters = capture.take()
            for _frame in frames:
                pass
            if len(frames) < capture_native.TAKE:
                break
        t2 = time.thread_time()
        feed += t1 - t0
        read += t2 - t1
    binding.unbind()
    print(
        f"per frame: C feed (2 blocks) {feed / n * 1e6:.1f} µs, loop read {read / n * 1e6:.1f} µs"
        f" ({read / n / 0.02 * 100:.3f} % of a core)"
    )


if __name__ == "__main__":
    main()
