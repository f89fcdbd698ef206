"""Null and file sinks: counting, WAV validity, duration and content."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hello_tui.media.errors import MediaError
from hello_tui.media.sinks import FileSink, NullSink, open_audio_sink
from hello_tui.media.sources import open_audio_source
from tests.media.conftest import peak_hz, read_wav


class StereoTrack(MediaStreamTrack):
    """Frames shaped like aiortc's Opus decoder output (s16 stereo 48 kHz), unpaced."""

    kind = "audio"

    def __init__(self, left: np.ndarray, right: np.ndarray) -> None:
        super().__init__()
        self.left, self.right, self.pos = left, right, 0

    async def recv(self) -> av.AudioFrame:
        if self.pos >= len(self.left):
            raise MediaStreamError
        sl = slice(self.pos, self.pos + 960)
        inter = np.stack([self.left[sl], self.right[sl]], axis=1).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(inter, format="s16", layout="stereo")
        frame.sample_rate = 48000
        frame.pts = self.pos
        self.pos += 960
        await asyncio.sleep(0)
        return frame


async def test_file_sink_writes_a_valid_wav_with_exact_content(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    left = rng.integers(-8000, 8000, size=960 * 50, dtype=np.int16)
    right = rng.integers(-8000, 8000, size=960 * 50, dtype=np.int16)
    out = tmp_path / "reply.wav"
    sink = open_audio_sink(f"file:{out}")
    assert isinstance(sink, FileSink)
    await sink.start(StereoTrack(left, right))
    await asyncio.wait_for(sink.done.wait(), 5)
    await sink.stop()
    data, rate, channels = read_wav(out)
    assert (rate, channels) == (48000, 1)
    assert len(data) == 960 * 50  # exactly one second
    want = ((left.astype(np.int32) + right) // 2).astype(np.int16)
    assert np.array_equal(data, want)
    assert sink.stats().frames == 50


async def test_file_sink_records_a_live_source_for_its_duration(tmp_path: Path) -> None:
    out = tmp_path / "tone.wav"
    sink = open_audio_sink(f"file:{out}")
    source = open_audio_source("sine:440")
    started = time.monotonic()
    await sink.start(source)
    await asyncio.sleep(0.3)
    await sink.stop()
    elapsed = time.monotonic() - started
    source.stop()
    await sink.stop()  # idempotent
    data, rate, _ = read_wav(out)
    assert rate == 48000
    frames = sink.stats().frames
    # Everything the source released was recorded (one may still be in flight
    # at the stop), and a paced source never runs ahead of the clock: the count
    # follows from what was measured, however busy the machine.
    assert frames >= 1 and source.frames_sent - 1 <= frames <= source.frames_sent
    assert frames <= elapsed / 0.020 + 1
    assert len(data) == frames * 960  # the header agrees with what was received
    assert peak_hz(data) == pytest.approx(440, abs=10)
    with av.open(str(out)) as container:  # a second, independent reader accepts it too
        stream = container.streams.audio[0]
        assert stream.sample_rate == 48000
        assert sum(f.samples for f in container.decode(stream)) == len(data)


async def test_null_sink_counts_and_measures() -> None:
    sink = open_audio_sink("null:")
    assert isinstance(sink, NullSink) and sink.notice is None
    tone = (np.sin(np.arange(960 * 5) * 2 * np.pi * 300 / 48000) * 16384).astype(np.int16)
    await sink.start(StereoTrack(tone, tone))
    await asyncio.wait_for(sink.done.wait(), 5)
    stats = sink.stats()
    assert stats.frames == 5 and stats.samples == 4800
    assert stats.level_dbfs == pytest.approx(-9.03, abs=0.1)
    assert 0.3 < stats.level < 0.4
    await sink.stop()


def test_file_sink_into_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist"):
        open_audio_sink(f"file:{tmp_path / 'no' / 'out.wav'}")


def test_the_floor_knob_lowers_the_device_playouts_floor_and_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HELLO_TUI_PLAYOUT_FLOOR_MS (the 10 ms packets' A/B): the adaptive target's floor
    of the device playout, C's and Python's; unset, or not 5 up to the ceiling: as is."""
    from hello_tui.media import sinks

    # The Python speaker's floor is one 20 ms frame; the C speaker's 15 (10 ms packets).
    for config, floor in ((sinks.DEVICE_PLAYOUT, 20), (sinks.NATIVE_DEVICE_PLAYOUT, 15)):
        monkeypatch.delenv(sinks.FLOOR_KNOB, raising=False)
        assert sinks._floored(config) is config and config.min_target_ms == floor
        monkeypatch.setenv(sinks.FLOOR_KNOB, "10")
        floored = sinks._floored(config)
        assert floored.min_target_ms == 10 and floored.margin_ms == config.margin_ms
        for bad in ("x", "2", "500", "nan"):
            monkeypatch.setenv(sinks.FLOOR_KNOB, bad)
            assert sinks._floored(config) is config
