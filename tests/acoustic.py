"""A room between a speaker and a microphone, and speech to play in it (tests and bench).

* :func:`speech` renders a sentence with ``espeak-ng`` (Debian ``espeak-ng``,
  in dev.sh's list) to a WAV file, at test time.
* :func:`echo_impulse` is the room: a delay, an attenuation and a short
  decaying tail (a little reverb), seeded so every run hears the same room.
* :class:`AcousticPath` leaks a PulseAudio sink (the "speaker") into another
  sink whose monitor is the "microphone": PulseAudio's loopback module plays
  the speaker's monitor into the microphone's sink at a fixed delay and
  attenuation (mixed with whatever else is played there, e.g. the near-end
  talker); with ``reverb=True`` through a small room's reverberation on the
  way (:data:`ROOM`: ``module-ladspa-sink`` running swh-plugins' ``gverb``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np

RATE = 48_000
BLOCK = 480  # 10 ms
LADSPA_DIRS = ("/usr/lib/ladspa", "/usr/local/lib/ladspa")
# gverb's controls: room size (m), reverb time (s), damping, input bandwidth, dry,
# early reflections and tail levels (dB). A small office: a click comes back with
# its tail ~10 dB under the direct sound, decaying ~10 dB per 100 ms.
ROOM = (5.0, 0.3, 0.5, 0.75, 0.0, -15.0, -25.0)


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


def echo_delays(pairs: list[tuple[np.ndarray, np.ndarray]]) -> str:
    """The echo delay in what the canceller got, per 2 s window: cross-correlation peak."""
    near = np.concatenate([p[0] for p in pairs]).astype(np.float64)
    far = np.concatenate([p[1] for p in pairs]).astype(np.float64)
    out, size, max_lag = [], 2 * RATE, RATE // 2
    for s in range(0, len(near) - size + 1, size):
        f, n = far[s : s + size], near[s : s + size]
        if np.std(f) < 50:
            continue  # the far end is silent here
        length = 1 << int(np.ceil(np.log2(2 * size)))
        xc = np.fft.irfft(np.fft.rfft(n, length) * np.conj(np.fft.rfft(f, length)), length)
        xc = np.abs(xc[:max_lag])
        peak = xc.max() / (np.linalg.norm(f) * np.linalg.norm(n) + 1e-9)
        out.append(f"{np.argmax(xc) * 1000 / RATE:.0f} ({peak:.2f})")
    return " ".join(out)


class AcousticPath:
    """The speaker's monitor played into the microphone's sink by PulseAudio's
    ``module-loopback`` at a fixed latency and volume; runs until stopped.

    Why not ``parec | convolve | pacat`` (the first room): the pipes between the
    processes buffer whatever a stall leaves in them and ``pacat`` raises its
    latency after an underrun, so that room's delay grew from 50 ms to 400+ ms
    and jumped during a call on a loaded machine — a room no laptop has. The
    loopback module measures its own latency and holds it at ``delay_ms``
    (plus the null sinks' few ms), so the echo path stays put like a real one.
    ``reverb=True`` adds a small room's reverberant tail (:data:`ROOM`) between
    the loopback and the microphone: PulseAudio's LADSPA filter sink with
    swh-plugins' ``gverb`` (Debian ``swh-plugins``, in dev.sh's list)."""

    def __init__(self, env: dict[str, str], speaker: str, mic_sink: str, delay_ms: float = 50.0,
                 gain_db: float = -6.0, reverb: bool = False) -> None:  # fmt: skip
        self.env = {**os.environ, **env}
        self.room: str | None = None
        self.module: str | None = None
        into = mic_sink
        if reverb:  # loopback -> the room's reverb (a LADSPA filter sink) -> the microphone
            if not any(os.path.exists(f"{d}/gverb_1216.so") for d in LADSPA_DIRS):
                raise RuntimeError("swh-plugins is missing (./dev.sh installs it)")
            into = f"{mic_sink}_room"
            self.room = self._pactl(
                "load-module", "module-ladspa-sink", f"sink_name={into}",
                f"sink_master={mic_sink}", "plugin=gverb_1216", "label=gverb",
                "channels=2", "channel_map=left,right",  # gverb: mono in, stereo out
                "control=" + ",".join(f"{v:g}" for v in ROOM),
            ).strip()  # fmt: skip
        try:
            self.module = self._pactl(
                "load-module", "module-loopback", f"source={speaker}.monitor", f"sink={into}",
                f"latency_msec={round(delay_ms)}", "source_dont_move=1", "sink_dont_move=1",
                *(() if reverb else ("remix=0",)),
                "sink_input_properties=media.name=acoustic-path",
            ).strip()  # fmt: skip
        except RuntimeError:
            self.stop()
            raise
        deadline = time.monotonic() + 10
        while (stream := self._sink_input()) is None:  # it connects asynchronously
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the acoustic path's loopback did not connect")
            time.sleep(0.05)
        self._pactl("set-sink-input-volume", stream, f"{10 ** (gain_db / 20):.4f}")

    def _sink_input(self) -> str | None:
        """The loopback's sink input (``pactl list sink-inputs``: its "Owner Module")."""
        current = None
        for line in self._pactl("list", "sink-inputs").splitlines():
            line = line.strip()
            if line.startswith("Sink Input #"):
                current = line.removeprefix("Sink Input #")
            elif line == f"Owner Module: {self.module}":
                return current
        return None

    def _pactl(self, *args: str) -> str:
        done = subprocess.run(["pactl", *args], env=self.env, capture_output=True, text=True,
                              timeout=10)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"pactl {args[0]}: {done.stderr.strip()}")
        return done.stdout

    def stop(self) -> None:
        for module in (self.module, self.room):
            if module is not None:
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._pactl("unload-module", module)
