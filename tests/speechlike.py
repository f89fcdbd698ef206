"""A speech-like test signal: voiced, with a gliding pitch and syllable-rate bursts.

A steady tone is the wrong signal for loss tests: after ~0.6 s Opus's SILK
voice-activity detector takes it for background noise and stops adding
in-band FEC (LBRR is coded only for active speech), and packet-loss
concealment extrapolates a steady tone almost perfectly. This signal keeps
the encoder in speech mode and cannot be guessed by concealment. Used by
tests/media/test_opus_fec.py and the impaired-call bench (tests/net/).
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 48_000


def voiced(seconds: float, rate: int = RATE, pitch_hz: float = 140.0) -> np.ndarray:
    """Mono int16: harmonics 1..8 of a pitch gliding ±60 Hz (+ a 5 Hz vibrato), in
    bursts at 2.2 Hz between 25 % and 100 % amplitude, peak 12 000."""
    t = np.arange(round(rate * seconds)) / rate
    f0 = pitch_hz + 60 * np.sin(2 * np.pi * 0.9 * t) + 25 * np.sin(2 * np.pi * 5.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    sound = sum(np.sin(k * phase) / k for k in range(1, 9))
    envelope = 0.25 + 0.75 * np.abs(np.sin(2 * np.pi * 2.2 * t))
    signal = np.asarray(sound) * envelope
    return np.asarray(signal / np.abs(signal).max() * 12_000, dtype=np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def segmental_snr(received: np.ndarray, sent: np.ndarray, frame: int = 960) -> dict[str, float]:
    """How close ``received`` (a timeline of what was heard, NaN where nothing was)
    is to ``sent``, after one global alignment (the lag of best cross-correlation,
    within 1 s): the median per-frame SNR in dB over the frames both cover with
    sound sent, and the share of those frames below 0 dB (worse than silence would
    be against that frame's energy: a bad guess). ``lag``: received sample
    ``i + lag`` is sent sample ``i``."""
    heard = np.nan_to_num(received.astype(np.float64))
    ref = sent.astype(np.float64)
    n = min(len(heard), len(ref))
    span = min(n, RATE * 4)
    if span < 2 * frame:
        return {"snr_db": float("nan"), "bad": float("nan"), "lag": 0}
    a, b = heard[:span], ref[:span]
    size = 1 << int(np.ceil(np.log2(2 * span)))
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    reach = min(RATE, span - 1)
    lags = np.r_[-reach:reach]  # received sample i + lag is sent sample i
    lag = int(lags[np.argmax(corr[lags % size])])
    snrs = []
    for start in range(max(0, -lag), min(len(received) - lag, len(ref)) - frame, frame):
        x = received[lag + start : lag + start + frame]
        if np.isnan(x).any():
            continue
        x = x.astype(np.float64)
        s = ref[start : start + frame]
        energy = float(np.sum(s**2))
        if energy <= 0:
            continue
        snrs.append(10 * np.log10(energy / (float(np.sum((x - s) ** 2)) + 1e-9)))
    if not snrs:
        return {"snr_db": float("nan"), "bad": float("nan"), "lag": lag}
    arr = np.asarray(snrs)
    return {"snr_db": float(np.median(arr)), "bad": float(np.mean(arr < 0.0)), "lag": lag}
