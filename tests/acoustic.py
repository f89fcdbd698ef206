"""A room between a speaker and a microphone, and speech to play in it (tests and bench).

* :func:`speech` renders a sentence with ``espeak-ng`` (Debian ``espeak-ng``,
  in dev.sh's list) to a WAV file, at test time.
* :func:`echo_impulse` is the room: a delay, an attenuation and a short
  decaying tail (a little reverb), seeded so every run hears the same room.
* :class:`AcousticPath` leaks a PulseAudio sink (the "speaker") into another
  sink whose monitor is the "microphone": ``parec`` reads the speaker's
  monitor, this module (run as ``python -m tests.acoustic``) convolves it with
  the impulse response, ``pacat`` plays the result into the microphone's sink
  (mixed with whatever else is played there, e.g. the near-end talker).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

RATE = 48_000
BLOCK = 480  # 10 ms


def speech(path: Path, text: str, *, voice: str = "en-us", pitch: int = 50) -> Path:
    """``text`` spoken by espeak-ng into ``path`` (a WAV file, 22.05 kHz mono)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is missing (./dev.sh installs it: apt-get install espeak-ng)")
    subprocess.run(
        [exe, "-v", voice, "-p", str(pitch), "-s", "150", "-w", str(path), text],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    return path


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16), w.getframerate()


def resample(samples: np.ndarray, rate: int, to: int = RATE) -> np.ndarray:
    """Linear resampling (good enough for envelopes and energies)."""
    n = int(len(samples) * to / rate)
    return np.interp(np.arange(n) * rate / to, np.arange(len(samples)), samples.astype(np.float64))


def echo_impulse(delay_ms: float = 50.0, gain_db: float = -6.0, seed: int = 7) -> np.ndarray:
    """The room's impulse response: a direct path at ``delay_ms`` and ``gain_db``,
    then 10 ms of exponentially decaying reflections (about -20 dB below it)."""
    rng = np.random.default_rng(seed)
    delay = int(delay_ms * RATE / 1000)
    ir = np.zeros(delay + BLOCK)
    direct = 10 ** (gain_db / 20)
    ir[delay] = direct
    ir[delay + 1 :] += (
        rng.standard_normal(BLOCK - 1) * np.exp(-np.arange(BLOCK - 1) / 96) * direct * 0.1
    )
    return ir


def envelope(samples: np.ndarray, window: int = 480) -> np.ndarray:
    """RMS per ``window`` samples (10 ms)."""
    n = len(samples) // window
    x = samples[: n * window].astype(np.float64).reshape(n, window)
    return np.sqrt(np.mean(x**2, axis=1))


def power_db(samples: np.ndarray) -> float:
    x = samples.astype(np.float64)
    return float(10 * np.log10(np.mean(x**2) + 1e-9)) if len(x) else -90.0


class AcousticPath:
    """``parec`` (speaker monitor) → the room → ``pacat`` (microphone sink); runs until stopped."""

    def __init__(self, env: dict[str, str], speaker: str, mic_sink: str,
                 delay_ms: float = 50.0, gain_db: float = -6.0) -> None:  # fmt: skip
        full = {**os.environ, **env}
        raw = ["--raw", "--format=s16le", f"--rate={RATE}", "--channels=1", "--latency-msec=10"]
        self.procs: list[subprocess.Popen[bytes]] = []
        rec = subprocess.Popen(["parec", "-d", f"{speaker}.monitor", *raw], env=full,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
        self.procs.append(rec)
        room = subprocess.Popen(
            [sys.executable, "-m", "tests.acoustic", "--delay-ms", str(delay_ms),
             "--gain-db", str(gain_db)],
            stdin=rec.stdout, stdout=subprocess.PIPE, env=full,
        )  # fmt: skip
        self.procs.append(room)
        play = subprocess.Popen(["pacat", "-d", mic_sink, *raw], env=full, stdin=room.stdout,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        self.procs.append(play)
        assert rec.stdout is not None and room.stdout is not None
        rec.stdout.close()  # the children hold the pipes now
        room.stdout.close()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _convolve_stream(delay_ms: float, gain_db: float) -> None:
    """stdin → stdout, raw s16 mono, convolved block by block (overlap-add)."""
    ir = echo_impulse(delay_ms, gain_db)
    tail = np.zeros(len(ir) - 1)
    src, dst = sys.stdin.buffer, sys.stdout.buffer
    while True:
        data = src.read(BLOCK * 2)
        if len(data) < BLOCK * 2:
            return
        x = np.frombuffer(data, dtype=np.int16).astype(np.float64)
        y = np.convolve(x, ir)
        y[: len(tail)] += tail
        tail = y[BLOCK:].copy()
        out = np.clip(y[:BLOCK], -32768, 32767).astype(np.int16)
        try:
            dst.write(out.tobytes())
            dst.flush()
        except BrokenPipeError:
            return


def _main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--delay-ms", type=float, default=50.0)
    p.add_argument("--gain-db", type=float, default=-6.0)
    args = p.parse_args()
    _convolve_stream(args.delay_ms, args.gain_db)


if __name__ == "__main__":
    _main()
