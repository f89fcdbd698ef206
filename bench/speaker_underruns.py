"""The speaker's stream alone, pulse against PortAudio, with the GIL contended: gaps heard.

A private PulseAudio with a null sink (tests/pulse.py); per arm, a speaker stream
(10 ms blocks, "low") plays a constant tone while a thread keeps the GIL busy the way a
call's event loop does (bursts of pure Python), and ``parec`` records the sink's
monitor. Gaps (runs of silence >= 2 ms after the first sound) are what a listener
hears as dropouts; PortAudio never sees the server's underruns, the recording does.
Arms alternate so both share the machine's load.

    PYTHONPATH=. python bench/speaker_underruns.py [ROUNDS [SECONDS]] [ARM ...]

An arm is ``portaudio`` or ``pulse`` (this checkout's settings), optionally with
environment overrides: ``pulse:HELLO_TUI_PULSE_LOW_MS=80``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pulse import SINK, PulseDaemon

RATE = 48_000
BLOCK = 480


def hog(stop: threading.Event, busy_ms: float, idle_ms: float) -> None:
    """Hold the GIL in pure-Python bursts of ``busy_ms``, then sleep ``idle_ms``."""
    while not stop.is_set():
        end = time.perf_counter() + busy_ms / 1000
        while time.perf_counter() < end:
            sum(i * i for i in range(200))
        time.sleep(idle_ms / 1000)


def gaps(samples: np.ndarray[Any, Any]) -> tuple[int, float]:
    """(count, total ms) of silent runs >= 2 ms after the first sound and before the last."""
    loud = np.abs(samples.astype(np.int32)) > 200
    idx = np.flatnonzero(loud)
    if len(idx) < 2:
        return 0, 0.0
    body = loud[idx[0] : idx[-1]]
    # the tone crosses zero: a run of quiet samples shorter than ~1 ms is not a gap
    edges = np.diff(np.concatenate(([1], body.astype(np.int8), [1])))
    starts, ends = np.flatnonzero(edges == -1), np.flatnonzero(edges == 1)
    runs = ends - starts
    long = runs[runs >= RATE // 500]
    return len(long), float(long.sum()) / RATE * 1000


def one(arm: str, seconds: float, daemon: PulseDaemon, work: Path) -> dict[str, Any]:
    backend, _, overrides = arm.partition(":")
    saved = dict(os.environ)
    for item in filter(None, overrides.split(",")):
        key, _, value = item.partition("=")
        os.environ[key] = value
    os.environ["HELLO_TUI_AUDIO_BACKEND"] = backend
    from hello_tui.media import devices

    tone = (np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE) * 8000).astype(np.int16)
    pos = [0]
    flagged = [0]
    card: list[float] = []  # each block's wait in the card: DAC time minus callback time

    def callback(out: Any, frames: int, when: Any, status: Any) -> None:
        if status.output_underflow:
            flagged[0] += 1
        if when.outputBufferDacTime:
            card.append(when.outputBufferDacTime - when.currentTime)
        i = pos[0]
        out[:, 0] = np.take(tone, np.arange(i, i + frames), mode="wrap")
        pos[0] = (i + frames) % RATE

    raw = work / f"{arm.replace(':', '_').replace('=', '-')}-{time.time_ns()}.raw"
    rec = subprocess.Popen(
        ["parec", "--raw", "--format=s16le", "--rate=48000", "--channels=1",
         "--latency-msec=20", "-d", f"{SINK}.monitor", str(raw)],
        env={**os.environ, **daemon.env},
    )  # fmt: skip
    stop = threading.Event()
    hogs = [threading.Thread(target=hog, args=(stop, 8.0, 12.0), daemon=True)]
    stream, _ = devices.open_stream(
        "output", "default", callback, samplerate=RATE, blocksize=BLOCK, latency="low"
    )
    cpu0 = time.process_time()
    devices.start_stream(stream)
    for t in hogs:
        t.start()
    time.sleep(seconds)
    stop.set()
    devices.close_stream(stream)
    cpu = time.process_time() - cpu0
    time.sleep(0.3)
    rec.terminate()
    rec.wait()
    os.environ.clear()
    os.environ.update(saved)
    samples = np.frombuffer(raw.read_bytes(), np.int16)
    raw.unlink()
    count, ms = gaps(samples)
    server = getattr(stream, "underflows", None)
    latency = getattr(stream, "latency", 0.0) * 1000
    return {"arm": arm, "gaps": count, "gap_ms": round(ms, 1), "flagged": flagged[0],
            "server_underflows": server, "latency_ms": round(latency, 1),
            "card_ms": round(float(np.median(card)) * 1000, 1) if card else None,
            "cpu_s": round(cpu, 2), "load": os.getloadavg()[0]}  # fmt: skip


def main() -> None:
    args = sys.argv[1:]
    rounds = int(args.pop(0)) if args and args[0].isdigit() else 3
    seconds = float(args.pop(0)) if args and args[0].replace(".", "").isdigit() else 10.0
    arms = args or ["pulse", "portaudio"]
    with tempfile.TemporaryDirectory(prefix="spk-under-") as tmp:
        daemon = PulseDaemon(Path(tmp))
        daemon.start()
        os.environ.update(daemon.env)
        try:
            results = []
            for r in range(rounds):
                for arm in arms:
                    res = one(arm, seconds, daemon, Path(tmp))
                    print(r, res, flush=True)
                    results.append(res)
            print("\narm: gaps per run, ms of gaps per run (load)")
            for arm in arms:
                mine = [x for x in results if x["arm"] == arm]
                print(f"{arm}: gaps {[x['gaps'] for x in mine]}, "
                      f"ms {[x['gap_ms'] for x in mine]}, "
                      f"card ms {[x['card_ms'] for x in mine]}, "
                      f"load {[round(x['load'], 1) for x in mine]}")  # fmt: skip
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
