"""Video calls: ``pattern:`` through the real server and real aiortc (VP8 over
DTLS-SRTP on loopback); what arrives is decoded and recognised."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from hello_tui.call import events as ev
from hello_tui.call.engine import CallOptions, NoVideo, Phone
from hello_tui.media.video import Picture, decode_counter, pattern_colours
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from tests.call.conftest import Env, T


async def _until(predicate: Any, timeout: float = T, what: str = "") -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def assert_pattern(picture: Picture) -> None:
    """Colour bars where the pattern draws them (VP8 at 320×240: within 40 levels)."""
    rgb = picture.rgb.astype(int)
    h, w = rgb.shape[:2]
    bars = pattern_colours()
    row = h // 3  # well inside the bars (top two thirds)
    for i, colour in enumerate(bars):
        x = int((i + 0.5) * w / len(bars))
        seen = rgb[row - 2 : row + 3, x - 2 : x + 3].reshape(-1, 3).mean(axis=0)
        assert np.all(np.abs(seen - np.array(colour)) < 40), (i, seen.tolist(), colour)


async def _counters(sink: Any, n: int) -> list[int]:
    """The frame numbers of ``n`` distinct received pictures, in arrival order."""
    seen: list[int] = []
    last = 0
    async with asyncio.timeout(T):
        while len(seen) < n:
            picture = sink.latest(320, 240)
            if picture is not None and picture.index != last:
                last = picture.index
                seen.append(decode_counter(picture.rgb))
            await asyncio.sleep(0.01)
    return seen


async def test_pattern_video_arrives_recognisable_with_quality(env: Env, tmp_path: Path) -> None:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    recording = tmp_path / "bob.y4m"
    call = alice.dial("bob", audio_in="sine:440", video_source="pattern:")
    incoming = await bob.next_incoming(T)
    assert incoming.caller_video is True  # the call message's video flag
    # receive only (video="null:"), recording what comes
    await incoming.accept(replace(incoming.options, video_out=f"file:{recording}"), video="null:")
    await call.wait_for(ev.Connected, T)
    await incoming.wait_for(ev.Connected, T)
    sink = incoming.remote_video
    assert sink is not None and incoming.video_track is None
    await _until(lambda: sink.frames >= 10, what="10 frames")
    assert (sink.width, sink.height) == (320, 240)
    picture = sink.latest(320, 240)
    assert picture is not None and picture.rgb.shape == (240, 320, 3)
    assert_pattern(picture)
    counters = await _counters(sink, 8)
    assert all(b > a for a, b in itertools.pairwise(counters)), counters
    assert counters[-1] - counters[0] < 40  # consecutive-ish frames, not noise
    # The self-view shows what alice sends.
    assert call.local_video is not None and call.local_video.frames > 0
    # Quality: the receiving side's samples carry the video fps and size.
    sample = (await incoming.wait_for(ev.Quality, T)).sample
    samples = []
    async with asyncio.timeout(3 * T):
        async for event in incoming.events():
            if isinstance(event, ev.Quality) and event.sample.t > 1.5:
                samples.append(event.sample)
                if len(samples) == 3:
                    break
    sample = samples[-1]
    # 15 fps sent: never more than that, and some on even a busy machine. Over
    # three samples: one short sample after a stall (a burst of queued frames)
    # can read above the sent rate on a loaded machine.
    assert all(s.video_fps is not None for s in samples), samples
    seconds = sum(s.interval_s for s in samples)
    fps = sum((s.video_fps or 0) * s.interval_s for s in samples) / seconds
    assert 2 < fps < 20, [(s.video_fps, s.interval_s) for s in samples]
    assert (sample.video_width, sample.video_height) == (320, 240)
    # The audio-only peer of the offer's other direction: alice receives nothing.
    assert call.remote_video is None or call.remote_video.frames == 0

    # Camera off: bob stops receiving new frames; on again: they come back.
    call.set_camera(False)
    assert not call.camera_on
    await call.wait_for(ev.CameraOff, T)
    # Frames already in flight arrive; then none for a second (however long in-flight took).
    async with asyncio.timeout(T):
        while True:
            frozen = sink.frames
            await asyncio.sleep(0.5)
            if sink.frames == frozen:
                break
    await asyncio.sleep(1.0)
    assert sink.frames == frozen
    call.set_camera(True)
    await call.wait_for(ev.CameraOn, T)
    await _until(lambda: sink.frames >= frozen + 5, what="frames after camera on")
    assert_pattern(sink.latest(320, 240))  # type: ignore[arg-type]

    await call.hangup()
    await incoming.wait_ended(T)
    with av.open(str(recording)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) >= 15 and (frames[0].width, frames[0].height) == (320, 240)
    assert_pattern(Picture(frames[-1].to_ndarray(format="rgb24"), 0, 320, 240))


async def test_audio_only_answer_declines_video(env: Env) -> None:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    call = alice.dial("bob", video_source="pattern:")
    incoming = await bob.next_incoming(T)
    await incoming.accept()  # no video source: the video m-line is answered inactive
    await call.wait_for(ev.MediaFlowing, T)
    await asyncio.sleep(0.5)
    assert incoming.remote_video is None and not incoming.video
    assert call.remote_video is None
    with pytest.raises(NoVideo):
        incoming.set_camera(True)
    sample = (await incoming.wait_for(ev.Quality, T)).sample
    assert sample.video_fps is None  # an audio-only call has no video fields
    await call.hangup()


async def test_camera_without_a_camera_falls_back_and_the_call_goes_on(env: Env) -> None:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    call = alice.dial("bob", video_source="camera:0")
    incoming = await bob.next_incoming(T)
    await incoming.accept(video="pattern:")
    await call.wait_for(ev.MediaFlowing, T)
    [notice] = [e for e in call.event_log if isinstance(e, ev.Notice)]
    assert notice.source == "video-in" and "no camera" in notice.text
    assert "\n" not in notice.text
    with pytest.raises(NoVideo, match="no camera"):
        call.set_camera(False)
    # alice sends no video but still sees bob's.
    await _until(lambda: call.remote_video is not None and call.remote_video.frames >= 3)
    assert_pattern(call.remote_video.latest(320, 240))  # type: ignore[union-attr,arg-type]
    await call.hangup()


async def test_echo_sends_the_video_back() -> None:
    async with embedded_server() as server:
        client = SignalingClient(reconnect=None)
        await client.connect(server.url)
        try:
            async with Phone(client, CallOptions(host_addresses=LOOPBACK)) as phone:
                call = phone.dial("echo", audio_in="sine:440", video_source="pattern:")
                await call.wait_for(ev.Connected, T)
                await _until(lambda: call.remote_video is not None)
                sink = call.remote_video
                assert sink is not None
                await _until(lambda: sink.frames >= 5, what="echoed frames")
                counters = await _counters(sink, 4)
                assert counters == sorted(counters) and len(set(counters)) == 4
                assert_pattern(sink.latest(320, 240))  # type: ignore[arg-type]
                await call.hangup()
        finally:
            await client.close()


async def test_cli_video_call_records_what_it_receives(tmp_path: Path) -> None:
    from tests.call.test_call_cli import _run

    out_file = tmp_path / "echo.y4m"
    code, out, err = await _run(
        "call", "--video=pattern:", "echo", "--audio-in", "sine:440", "--audio-out", "null:",
        "--video-out", f"file:{out_file}", "--duration", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    stats = [json.loads(line) for line in out.splitlines()][-1]
    assert stats["kind"] == "stats" and stats["video_frames_received"] >= 15
    with av.open(str(out_file)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == stats["video_frames_received"]
    assert_pattern(Picture(frames[-1].to_ndarray(format="rgb24"), 0, 320, 240))
    code, _, err = await _run("call", "echo", "--video=webcam:1")
    assert code == 1 and "--video:" in err and "camera:INDEX" in err
