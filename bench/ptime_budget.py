"""The packet duration's share of mouth-to-ear, offline: capture wait + playout residence.

A sample captured at time t leaves in the packet that ends after it (the packet's
duration minus its place in it: 10 or 20 ms for the packet's first sample, 0 for its
last), crosses a network with ``--jitter`` ms of uniform lateness, and waits in the far
end's real playout buffer (``sinks.NATIVE_DEVICE_PLAYOUT``: adaptive, the C speaker's
2 ms margin, accelerate; the C buffer, pinned bit for bit to the Python one, or the
Python one with ``--python``) until the card's 10 ms pull takes it. Per arm, over the
last 20 s of the run: a sample's mean capture wait (half a packet), its mean lateness
on the network, its mean residence in the buffer (the time-averaged depth: Little's
law), their total; the mean target and the silence played. The card's buffer, the
processing stage and the network's own delay are the same in every arm and left out.

    .venv/bin/python bench/ptime_budget.py [--jitter 1.0] [--seconds 30] [--python]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hello_tui.media import playout_native, sinks
from hello_tui.media.playout import PlayoutBuffer

RATE = 48_000
PULL = 480


def run(packet: int, floor_ms: float, seconds: float, jitter_ms: float, python: bool) -> dict:
    config = dataclasses.replace(sinks.NATIVE_DEVICE_PLAYOUT, min_target_ms=floor_ms)
    buf = PlayoutBuffer(config) if python else playout_native.NativePlayout(config)
    rng = random.Random(1)
    src = np.sin(2 * np.pi * 440 * np.arange(int(RATE * (seconds + 1))) / RATE) * 8000 + 9000
    src = src.astype(np.int16)  # never 0: silence is countable
    n_packets = int(seconds * RATE / packet)
    arrivals, last, late = [], 0.0, []
    for k in range(n_packets):  # a packet leaves when its last sample is captured
        lateness = rng.uniform(0, jitter_ms) / 1000
        at = max(last, (k + 1) * packet / RATE + lateness)
        late.append(at - (k + 1) * packet / RATE)
        last = at
        arrivals.append(at)
    # The buffer's depth integrated over time from `since` on: by Little's law, with
    # samples leaving at one per sample time, its mean is a sample's mean residence.
    since = seconds - 20
    k, j, silence, area, prev_t, prev_depth, targets = 0, 0, 0, 0.0, since, 0, []
    while True:
        t_pull = 0.0025 + j * PULL / RATE
        if t_pull >= seconds:
            break
        if k < n_packets and arrivals[k] <= t_pull:
            t, _ = arrivals[k], buf.push(src[k * packet : (k + 1) * packet], now=arrivals[k])
            k += 1
        else:
            t = t_pull
            out = buf.pull(PULL)
            if t >= since:
                silence += PULL - int(np.count_nonzero(out))
                targets.append(buf.target)
            j += 1
        if t >= since:
            area += prev_depth * (t - prev_t)
            prev_t = t
        prev_depth = buf.depth
    residence = area / (seconds - since) / RATE * 1000
    wait = packet / 2 / RATE * 1000  # a sample's mean wait for its packet to end
    network = float(np.mean(late[int(n_packets * since / seconds) :])) * 1000
    return {
        "total_ms": wait + network + residence,
        "capture_wait_ms": wait,
        "network_late_ms": network,
        "residence_ms": residence,
        "target_ms": float(np.mean(targets)) * 1000 / RATE,
        "silence_ms": silence * 1000 / RATE,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jitter", type=float, default=1.0, help="uniform lateness, ms")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--python", action="store_true", help="the Python buffer, not C's")
    args = parser.parse_args()
    arms = [("20 ms / floor 20", 960, 20.0), ("10 ms / floor 20", 480, 20.0),
            ("20 ms / floor 10", 960, 10.0), ("10 ms / floor 10", 480, 10.0)]  # fmt: skip
    print(f"jitter 0-{args.jitter:g} ms, {'Python' if args.python else 'C'} playout buffer, "
          f"margin {sinks.NATIVE_DEVICE_PLAYOUT.margin_ms:g} ms")  # fmt: skip
    keys = ["total_ms", "capture_wait_ms", "network_late_ms", "residence_ms", "target_ms",
            "silence_ms"]  # fmt: skip
    print(f"{'':>18} " + " ".join(f"{k:>15}" for k in keys))
    for name, packet, floor in arms:
        r = run(packet, floor, args.seconds, args.jitter, args.python)
        print(f"{name:>18} " + " ".join(f"{r[k]:>15.2f}" for k in keys))


if __name__ == "__main__":
    main()
