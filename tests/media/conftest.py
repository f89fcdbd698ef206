"""Media test fixtures: a real PulseAudio daemon for the session, WAV helpers."""

from __future__ import annotations

import os
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.pulse import PulseDaemon

RATE = 48_000


@pytest.fixture(scope="session")
def pulse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    """A PulseAudio daemon whose null sink is the default ALSA/PortAudio device."""
    daemon = PulseDaemon(tmp_path_factory.mktemp("pulse"))
    try:
        daemon.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    saved = {k: os.environ.get(k) for k in daemon.env}
    os.environ.update(daemon.env)
    if "sounddevice" in sys.modules:  # PortAudio enumerated before the daemon existed
        from hello_tui.media import devices

        devices.refresh()
    yield daemon
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    daemon.stop()


@pytest.fixture(params=["pulse", "portaudio"])
def audio_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on each ``device:`` backend (media/devices.py): libpulse, PortAudio."""
    from hello_tui.media.devices import BACKEND_ENV

    monkeypatch.setenv(BACKEND_ENV, request.param)
    return str(request.param)


@pytest.fixture
def portaudio_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """PortAudio's behaviour under test (its ALSA device names, its re-listing)."""
    from hello_tui.media.devices import BACKEND_ENV

    monkeypatch.setenv(BACKEND_ENV, "portaudio")


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    """Write int16 ``samples`` (interleaved when ``channels`` > 1) as a WAV with stdlib wave."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return path


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    """(int16 samples, rate, channels) of a WAV, read with stdlib wave (a strict reader)."""
    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        return data, w.getframerate(), w.getnchannels()


def tone(hz: float, seconds: float, rate: int = RATE, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * amp * 32767).astype(np.int16)


def peak_hz(samples: np.ndarray, rate: int = RATE) -> float:
    """Frequency of the strongest FFT bin (Hann-windowed)."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * rate / len(samples))
