"""Video sources and the frame sink (real OpenCV, real VP8; this machine has no camera)."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError

from hello_tui.media.tracks import CameraGate
from hello_tui.media.video import (
    VIDEO_CLOCK,
    CameraUnavailable,
    FrameSink,
    NullVideoSource,
    PatternSource,
    VideoRecorder,
    decode_counter,
    fit,
    open_video_source,
    pattern_colours,
)


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


async def test_pattern_frames_size_content_and_pacing() -> None:
    src = open_video_source("pattern:", 320, 240, 15)
    assert isinstance(src, PatternSource) and src.has_video and src.notice is None
    started = time.monotonic()
    frames = [await src.recv() for _ in range(15)]
    elapsed = time.monotonic() - started
    assert elapsed > 0.85  # 14 intervals of 1/15 s: paced by the clock (never faster)
    for n, frame in enumerate(frames):
        assert (frame.width, frame.height, frame.format.name) == (320, 240, "yuv420p")
        assert frame.time_base.numerator == 1 and frame.time_base.denominator == VIDEO_CLOCK
        assert decode_counter(_rgb(frame)) == n
    steps = {b.pts - a.pts for a, b in itertools.pairwise(frames)}
    assert steps == {VIDEO_CLOCK // 15}  # pts continuity: 6000 ticks a frame
    # The bars are where they should be, the box moves.
    rgb = _rgb(frames[0]).astype(int)
    for i, colour in enumerate(pattern_colours()):
        x = int((i + 0.5) * 320 / 8)
        assert np.all(np.abs(rgb[60, x] - colour) <= 3), (i, rgb[60, x])
    assert not np.array_equal(_rgb(frames[0])[170:210], _rgb(frames[14])[170:210])
    src.stop()
    with pytest.raises(MediaStreamError):
        await src.recv()


async def test_pattern_skips_ahead_after_a_stall() -> None:
    now = [100.0]
    src = PatternSource(64, 48, 10, clock=lambda: now[0])
    first = await src.recv()
    now[0] += 2.0  # the loop was blocked for 2 s
    second = await src.recv()
    assert second.pts - first.pts == 20 * VIDEO_CLOCK // 10
    assert src.skipped == 19


async def test_counter_survives_vp8_and_scaling() -> None:
    src = PatternSource(320, 240, 30)
    enc, dec = Vp8Encoder(), Vp8Decoder()
    decoded = []
    for _ in range(6):
        frame = await src.recv()
        payloads, ts = enc.encode(frame)
        data = b"".join(vp8_depayload(p) for p in payloads)
        decoded += dec.decode(JitterFrame(data=data, timestamp=ts))
    counts = [decode_counter(_rgb(f)) for f in decoded]
    assert counts == list(range(6))
    small = decoded[-1].reformat(width=80, height=60, format="rgb24").to_ndarray()
    assert decode_counter(small) == 5


async def test_camera_without_a_camera_falls_back_with_one_line(
    capfd: pytest.CaptureFixture[str],
) -> None:
    src = open_video_source("camera:0")  # real OpenCV, and no camera on this machine
    assert isinstance(src, NullVideoSource) and not src.has_video
    assert src.notice is not None
    line = str(src.notice)
    assert line.startswith("no camera (") and line.endswith("sending no video (null:)")
    assert "\n" not in line
    out, err = capfd.readouterr()
    assert "WARN" not in err and "VIDEOIO" not in err and out == ""  # OpenCV kept quiet
    with pytest.raises(CameraUnavailable):
        open_video_source("camera:7", fallback=False)
    src.stop()
    with pytest.raises(MediaStreamError):
        await src.recv()


async def test_null_source_sends_nothing() -> None:
    src = open_video_source("null:")
    assert isinstance(src, NullVideoSource) and not src.has_video and src.notice is None


async def test_frame_sink_keeps_only_the_latest() -> None:
    src = PatternSource(320, 240, 15)
    sink = FrameSink()
    for n in range(50):
        sink.push(src.picture(n))
    assert sink.frames == 50 and (sink.width, sink.height) == (320, 240)
    picture = sink.latest(160, 160)  # fits in 160×160 with the aspect kept
    assert picture is not None and picture.index == 50
    assert picture.rgb.shape == (120, 160, 3)
    assert decode_counter(picture.rgb) == 49
    assert sink.latest(160, 160) is picture  # cached for the same frame and size
    assert sink.fps == 50.0  # all within the last second
    # Nothing but the latest frame is held.
    held = [v for v in vars(sink).values() if isinstance(v, av.VideoFrame)]
    assert len(held) == 1


async def test_frame_sink_reads_a_track_and_measures_fps() -> None:
    sink = FrameSink()
    src = PatternSource(64, 48, 20)
    sink.start(src)
    async with asyncio.timeout(5):
        while sink.frames < 25:
            await asyncio.sleep(0.02)
    # fps is "frames in the last second": count them ourselves over one second.
    before = sink.frames
    await asyncio.sleep(1.0)
    counted, fps = sink.frames - before, sink.fps
    assert counted >= 1 and abs(fps - counted) <= 1  # a frame may land on the edge
    assert fps <= 21  # a 20 fps source: never more (one on the window's edge)
    src.stop()
    await sink.stop()
    assert sink.latest() is not None


async def test_camera_gate_off_sends_nothing_and_restarts_with_a_key_frame() -> None:
    preview = FrameSink()
    gate = CameraGate(PatternSource(64, 48, 50), preview)
    await gate.recv()
    gate.set_sending(False)
    assert not gate.sending
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await gate.recv()
    gate.set_sending(True)
    frame = await gate.recv()
    assert frame.pict_type == av.video.frame.PictureType.I
    assert preview.frames == 2
    gate.stop()
    with pytest.raises(MediaStreamError):
        await gate.recv()


async def test_camera_gate_is_still_an_event_emitter() -> None:
    # aiortc listens for a track's "ended" through pyee's on(): a property of the gate
    # named `on` once hid that method (calling it raised TypeError).
    gate = CameraGate(PatternSource(64, 48, 50))
    ended: list[bool] = []
    gate.on("ended", lambda: ended.append(True))
    gate.stop()
    assert ended == [True]


@pytest.mark.parametrize("suffix", [".y4m", ".mp4"])
def test_recorder_writes_a_playable_file(tmp_path: Path, suffix: str) -> None:
    src = PatternSource(320, 240, 15)
    path = tmp_path / f"out{suffix}"
    rec = VideoRecorder(path)
    for n in range(10):
        rec.write(src.picture(n))
    rec.close()
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 10 and (frames[0].width, frames[0].height) == (320, 240)
    assert decode_counter(_rgb(frames[-1])) == 9
    with pytest.raises(ValueError):
        VideoRecorder(tmp_path / "x.avi")


def test_fit_keeps_the_aspect() -> None:
    assert fit(320, 240, 80, 80) == (80, 60)
    assert fit(320, 240, 200, 60) == (80, 60)
    assert fit(640, 360, 40, 40) == (40, 22)
