"""Generated and file sources: framing, continuous phase, pacing, start-on-first-recv, end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from hello_tui.media.endpoint import EndpointError
from hello_tui.media.errors import MediaError
from hello_tui.media.sources import FileSource, NullSource, SineSource, open_audio_source
from tests.media.conftest import peak_hz, tone, write_wav


def samples_of(frame) -> np.ndarray:  # type: ignore[no-untyped-def]
    return frame.to_ndarray().reshape(-1)


async def test_sine_frames_are_continuous_in_pts_and_phase() -> None:
    source = open_audio_source("sine:440")
    assert isinstance(source, SineSource)
    assert source.kind == "audio"
    frames = [await source.recv() for _ in range(10)]
    assert [f.pts for f in frames] == [i * 960 for i in range(10)]
    assert all(f.samples == 960 and f.sample_rate == 48000 for f in frames)
    got = np.concatenate([samples_of(f) for f in frames]).astype(np.float64)
    n = np.arange(len(got))
    want = np.sin(2 * np.pi * 440 * n / 48000) * 0.25 * 32767
    assert np.max(np.abs(got - want)) <= 1.0  # only int16 truncation: no phase jump anywhere
    assert peak_hz(got.astype(np.int16)) == pytest.approx(440, abs=5)
    source.stop()


async def test_sine_is_paced_by_the_clock_without_running_ahead() -> None:
    source = open_audio_source("sine:1000")
    t0 = time.monotonic()
    await source.recv()
    lateness = []
    for i in range(1, 25):
        await source.recv()
        ahead = i * 0.020 - (time.monotonic() - t0)
        lateness.append(ahead)
    assert max(lateness) < 0.003  # never released before its due time (sleep granularity)
    elapsed = time.monotonic() - t0
    assert elapsed >= 0.46  # 24 × 20 ms: paced (a busy machine may only be slower)
    source.stop()


async def test_paced_source_skips_ahead_after_a_stall_instead_of_bursting() -> None:
    source = NullSource("null:")
    await source.recv()
    time.sleep(0.3)  # a blocked event loop
    after = await source.recv()
    assert after.pts >= 960 * 14  # time moved on; pts says so
    assert source.frames_skipped >= 13
    t = time.monotonic()
    await source.recv()
    assert time.monotonic() - t >= 0.01  # and it is paced again, not catching up
    assert not samples_of(after).any()
    source.stop()


async def test_stopped_source_raises_media_stream_error() -> None:
    source = open_audio_source("null:")
    await source.recv()
    source.stop()
    assert source.readyState == "ended"
    with pytest.raises(MediaStreamError):
        await source.recv()


async def test_file_source_starts_on_first_recv_and_plays_all_then_silence(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(7)
    content = rng.integers(-20000, 20000, size=14400, dtype=np.int16)  # 0.3 s = 15 frames
    path = write_wav(tmp_path / "in.wav", content)
    source = open_audio_source(f"file:{path}")
    assert isinstance(source, FileSource)
    await asyncio.sleep(0.3)  # the call takes a while to connect: nothing may be lost meanwhile
    t0 = time.monotonic()
    first = await source.recv()
    assert first.pts == 0  # the file starts where the call starts: nothing was skipped
    assert np.array_equal(samples_of(first), content[:960])
    frames = [first]
    while not source.ended.is_set():
        frames.append(await source.recv())
        assert len(frames) < 100
    assert len(frames) == 16  # 15 of content, then the first silent one sets `ended`
    assert source.finished
    played = np.concatenate([samples_of(f) for f in frames[:15]])
    assert np.array_equal(played, content)
    assert not samples_of(frames[15]).any()
    assert time.monotonic() - t0 > 0.25  # real time, not as fast as decoding
    assert source.readyState == "live"  # keeps sending silence until the call ends
    assert not samples_of(await source.recv()).any()
    source.stop()


async def test_file_source_resamples_any_format(tmp_path: Path) -> None:
    mono = tone(1000, 0.5, rate=44100)
    stereo = np.stack([mono, mono], axis=1).reshape(-1)
    path = write_wav(tmp_path / "cd.wav", stereo, rate=44100, channels=2)
    source = open_audio_source(f"file:{path}")
    assert source.duration == pytest.approx(0.5, abs=0.01)  # type: ignore[attr-defined]
    chunks = []
    while not source.ended.is_set():  # type: ignore[attr-defined]
        frame = await source.recv()
        assert frame.samples == 960 and frame.sample_rate == 48000
        chunks.append(samples_of(frame))
    audio = np.concatenate(chunks[:-1])
    assert abs(len(audio) - 24000) <= 960  # 0.5 s at 48 kHz, to the frame
    assert peak_hz(audio) == pytest.approx(1000, abs=5)
    source.stop()


def test_file_source_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"file:.*nope\.wav: no such file"):
        open_audio_source(f"file:{tmp_path / 'nope.wav'}")
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio at all\n")
    with pytest.raises(MediaError, match=r"junk\.wav") as info:
        open_audio_source(f"file:{junk}")
    assert "\n" not in str(info.value)
    with pytest.raises(EndpointError):
        open_audio_source("tone:440")
