"""The pulse speaker's block times against where the sink really played each block.

The echo canceller's reference is a timeline of the speaker's blocks by their DAC times
(docs/media.md, "Audio processing"); an underrun moves it, by the length the speaker's
timing says. Here a private PulseAudio with a null sink (tests/pulse.py) plays blocks
whose samples are the block's number (block ``i`` is the constant ``1000 + i``), the
callback is stuck 250 ms once (block 40: the server's buffer runs dry), and ``parec``
records the sink's monitor. For each block found there, its DAC time minus its place in
the recording is the timeline's error up to a constant: the figure is how far that
error moved across the underrun (median of blocks 5-39 against blocks 60 on), per run.
0 means the reference after the gap is where the speaker played it. Arms alternate:
``raw`` (each block's time from the server's timing report, the default) and
``smoothed`` (libpulse's ``pa_stream_get_latency``: ``HELLO_TUI_PULSE_TIMING=smoothed``).

    PYTHONPATH=. python bench/pulse_timing.py [ROUNDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hello_tui.media import devices
from tests.pulse import SINK, PulseDaemon

RATE = 48_000
STALL_AT = 40


class Marks:
    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, out: Any, frames: int, when: Any, status: Any) -> None:
        out[:, 0] = 1000 + len(self.times)
        self.times.append(when.outputBufferDacTime)
        if len(self.times) == STALL_AT:
            time.sleep(0.25)


def run(daemon: PulseDaemon) -> tuple[float | None, int]:
    """How far the timeline's error moved across the stall (ms), and the underflows."""
    recorder = subprocess.Popen(
        ["parec", "--raw", "--format=s16le", "--rate=48000", "--channels=1",
         "--latency-msec=100", "-d", f"{SINK}.monitor"],
        env={**os.environ, **daemon.env}, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    marks = Marks()
    try:
        time.sleep(0.3)
        speaker, _ = devices.open_stream("output", SINK, marks, samplerate=RATE, blocksize=480)
        try:
            devices.start_stream(speaker)
            time.sleep(1.6)
        finally:
            devices.close_stream(speaker)
        time.sleep(0.5)
    finally:
        recorder.terminate()
        data, _ = recorder.communicate(timeout=10)
    monitor = np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)
    offsets = {}
    for i, dac in enumerate(marks.times[:-5]):
        at = np.flatnonzero(monitor == 1000 + i)
        if len(at) >= 240:
            offsets[i] = (dac - at[0] / RATE) * 1000
    before = [v for i, v in offsets.items() if 5 <= i < STALL_AT]
    after = [v for i, v in offsets.items() if i >= 60]
    if len(before) < 5 or len(after) < 5:
        return None, speaker.underflows  # the recorder lost blocks (a loaded machine)
    return statistics.median(after) - statistics.median(before), speaker.underflows


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    work = Path(tempfile.mkdtemp(prefix="pulse-timing-"))
    daemon = PulseDaemon(work / "pulse")
    daemon.start()
    os.environ.update({**daemon.env, devices.BACKEND_ENV: "pulse"})
    moved: dict[str, list[float]] = {"raw": [], "smoothed": []}
    try:
        for r in range(rounds):
            for arm in moved:
                os.environ["HELLO_TUI_PULSE_TIMING"] = arm
                got, underflows = run(daemon)
                load = os.getloadavg()[0]
                text = "recorder lost blocks" if got is None else f"{got:+.1f} ms"
                print(f"round {r + 1} {arm}: moved {text}, underflows {underflows}, "
                      f"load {load:.1f}", flush=True)  # fmt: skip
                if got is not None:
                    moved[arm].append(abs(got))
    finally:
        daemon.stop()
    for arm, values in moved.items():
        if values:
            print(f"{arm}: |moved| median {statistics.median(values):.1f} ms "
                  f"({', '.join(f'{v:.1f}' for v in values)})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
