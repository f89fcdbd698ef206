"""The internal frame format, conversion/rechunking, and level maths."""

from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from hello_tui.media.audio_format import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    Conformer,
    Rechunker,
    make_frame,
)
from hello_tui.media.levels import FLOOR_DBFS, audio_level, dbfs_to_level, rms_dbfs


def test_make_frame_is_what_aiortc_expects() -> None:
    frame = make_frame(np.arange(FRAME_SAMPLES, dtype=np.int16), pts=1920)
    assert frame.samples == 960
    assert frame.sample_rate == 48000
    assert frame.format.name == "s16"
    assert frame.layout.name == "mono"
    assert frame.pts == 1920
    assert frame.time_base == Fraction(1, 48000)
    assert np.array_equal(frame.to_ndarray().reshape(-1), np.arange(960))


def test_conformer_downmixes_aiortc_stereo_by_averaging() -> None:
    left = np.full(960, 1000, dtype=np.int16)
    right = np.full(960, -200, dtype=np.int16)
    inter = np.stack([left, right], axis=1).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(inter, format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    out = Conformer().convert(frame)
    assert out.dtype == np.int16
    assert len(out) == 960
    assert set(out.tolist()) == {400}


def test_conformer_resamples_other_rates_and_formats() -> None:
    conformer = Conformer()
    total = 0
    for _ in range(100):  # 1 s of 44.1 kHz float, in 10 ms frames
        frame = av.AudioFrame.from_ndarray(
            np.full((1, 441), 0.5, dtype=np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = 44100
        total += len(conformer.convert(frame))
    total += len(conformer.flush())
    assert abs(total - SAMPLE_RATE) <= 48  # one second, give or take a millisecond


def test_rechunker_hands_out_exact_frames_and_pads_the_tail() -> None:
    chunks = Rechunker()
    chunks.push(np.arange(1000, dtype=np.int16))
    chunks.push(np.arange(1000, 2500, dtype=np.int16))
    first, second = chunks.pop(), chunks.pop()
    assert first is not None and second is not None
    assert np.array_equal(np.concatenate([first, second]), np.arange(1920))
    assert chunks.pop() is None  # 580 left: not a full frame
    tail = chunks.pop(pad=True)
    assert tail is not None and len(tail) == 960
    assert np.array_equal(tail[:580], np.arange(1920, 2500))
    assert not tail[580:].any()
    assert chunks.pop(pad=True) is None


def test_levels() -> None:
    square = np.where(np.arange(960) % 2, 32767, -32767).astype(np.int16)
    assert rms_dbfs(square) == pytest.approx(0.0, abs=0.01)
    half_sine = (np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000) * 16384).astype(np.int16)
    assert rms_dbfs(half_sine) == pytest.approx(-9.03, abs=0.05)  # -6 dB peak, -3 dB sine RMS
    assert rms_dbfs(np.zeros(960, dtype=np.int16)) == FLOOR_DBFS
    assert rms_dbfs(np.zeros(0, dtype=np.int16)) == FLOOR_DBFS
    assert audio_level(np.zeros(960, dtype=np.int16)) == 0.0
    assert audio_level(square) == pytest.approx(1.0, abs=0.01)
    assert dbfs_to_level(-6.02) == pytest.approx(0.5, abs=0.001)


def test_importing_the_media_layer_does_not_load_portaudio() -> None:
    code = (
        "import sys, hello_tui.media, hello_tui.media.sources, hello_tui.media.sinks, "
        "hello_tui.media.devices; print('sounddevice' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
