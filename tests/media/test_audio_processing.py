"""The audio processing stage (media/audio_processing.py): the binding for real.

What the canceller removes on a synthetic echo path, how the far-end queue
pairs and bounds the reference, where the stage is attached (only on
``device:`` capture; files and tones stay bit-exact), and the one-line notice
when the binding cannot be loaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from hello_tui.call.media_policy import CallMedia
from hello_tui.call.options import CallOptions
from hello_tui.media import audio_processing as ap
from hello_tui.media.audio_processing import (
    BLOCK,
    MAX_FAR_BACKLOG,
    OFF,
    CaptureProcessor,
    ProcessingConfig,
    attach_processing,
    open_processor,
)
from hello_tui.media.sinks import DeviceSink, NullSink, open_audio_sink
from hello_tui.media.sources import DeviceSource, FileSource, SineSource, open_audio_source
from tests.acoustic import echo_impulse, power_db, read_mono, resample, speech
from tests.pulse import PulseDaemon

RATE = 48_000


def echo_scene(tmp_path: Path, seconds: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """(far, mic): espeak speech and its echo through the test room (50 ms, -6 dB)."""
    text = "The quick brown fox jumps over the lazy dog. Please call me back when you get this."
    samples, rate = read_mono(speech(tmp_path / "far.wav", text))
    far = np.tile(resample(samples, rate), 3)[: int(seconds * RATE)]
    far = far * (0.5 * 32767 / np.max(np.abs(far)))
    mic = np.convolve(far, echo_impulse(50, -6))[: len(far)]
    return far.astype(np.int16), np.clip(mic, -32768, 32767).astype(np.int16)


def test_the_canceller_removes_a_synthetic_echo(tmp_path: Path) -> None:
    far, mic = echo_scene(tmp_path)
    proc = CaptureProcessor(ProcessingConfig(auto_gain=False), echo_cancellation=True)
    out = []
    for i in range(0, len(mic) - 960 + 1, 960):  # the playout's 10 ms, the microphone's 20 ms
        proc.feed_far(far[i : i + BLOCK])
        proc.feed_far(far[i + BLOCK : i + 960])
        out.append(proc.process(mic[i : i + 960]))
    sent = np.concatenate(out)
    start = 2 * RATE  # after convergence
    erle = power_db(mic[start : len(sent)]) - power_db(sent[start:])
    print(f"synthetic ERLE {erle:.1f} dB")
    assert erle >= 25
    stats = proc.stats()
    assert stats.frames == len(sent) // BLOCK == stats.far_frames
    assert stats.far_missing == stats.far_dropped == 0


def test_the_reference_queue_stays_short_and_silence_stands_in_for_a_missing_one() -> None:
    proc = CaptureProcessor(ProcessingConfig(), echo_cancellation=True)
    proc.feed_far(np.ones(10 * BLOCK + 100, dtype=np.int16))  # a burst: 10 frames and a bit
    stats = proc.stats()
    assert stats.far_frames == 10 and stats.far_dropped == 10 - MAX_FAR_BACKLOG
    out = proc.process(np.zeros((MAX_FAR_BACKLOG + 2) * BLOCK + 7, dtype=np.int16))
    assert len(out) == (MAX_FAR_BACKLOG + 2) * BLOCK  # the 7 left over wait for the next block
    assert proc.stats().far_missing == 2
    assert len(proc.process(np.zeros(BLOCK - 7, dtype=np.int16))) == BLOCK


def test_without_echo_cancellation_no_reference_is_kept() -> None:
    proc = CaptureProcessor(ProcessingConfig(), echo_cancellation=False)
    proc.feed_far(np.ones(4 * BLOCK, dtype=np.int16))
    assert proc.stats().far_frames == 0 and not proc.stats().echo_cancellation
    assert open_processor(OFF, echo_cancellation=True) == (None, None)


def test_a_missing_binding_is_a_notice_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pywebrtc_audio", None)  # import raises ImportError
    processor, notice = open_processor(ProcessingConfig(), echo_cancellation=True)
    assert processor is None and notice is not None
    assert notice.startswith("no echo cancellation or noise suppression: pywebrtc-audio is not")
    assert "\n" not in notice


async def test_files_and_tones_are_never_processed(tmp_path: Path) -> None:
    """A call from file:/sine: stays bit-exact: no stage is attached, the frames are the file's."""
    wav = speech(tmp_path / "s.wav", "one two three")
    opened = []
    media = CallMedia(CallOptions(audio_in=f"file:{wav}", audio_out="null:"),
                      notice=lambda *a: opened.append(a), spawn=lambda c: c.close(),
                      first_frame=lambda: None)  # fmt: skip
    media.open()
    assert media.source is not None and isinstance(media.source.source, FileSource)
    assert not hasattr(media.source.source, "processor") and opened == []
    reference = open_audio_source(f"file:{wav}")
    for _ in range(5):
        a, b = await media.source.recv(), await reference.recv()
        assert a.to_ndarray().tobytes() == b.to_ndarray().tobytes()
    media.source.stop()
    reference.stop()
    tone = SineSource("sine:440", 440)
    assert attach_processing(tone, NullSink("null:"), ProcessingConfig()) is None
    assert not hasattr(tone, "processor")


async def test_device_capture_gets_the_stage_and_a_device_speaker_feeds_it(
    pulse: PulseDaemon,
) -> None:
    source = open_audio_source("device:", fallback=False)
    speaker = open_audio_sink("device:", fallback=False)
    assert isinstance(source, DeviceSource) and isinstance(speaker, DeviceSink)
    try:
        assert attach_processing(source, speaker, ProcessingConfig()) is None
        assert source.processor is not None and source.processor.echo_cancellation
        assert speaker.far_end == source.processor.feed_far
        # To a file (no speaker): noise suppression and gain, no echo cancellation.
        other = open_audio_source("device:", fallback=False)
        assert isinstance(other, DeviceSource)
        attach_processing(other, NullSink("null:"), ProcessingConfig())
        assert other.processor is not None and not other.processor.echo_cancellation
        other.stop()
        # Everything switched off: the capture is untouched.
        third = open_audio_source("device:", fallback=False)
        assert isinstance(third, DeviceSource)
        attach_processing(third, speaker, OFF)
        assert third.processor is None
        third.stop()
    finally:
        source.stop()
        await speaker.stop()
    assert ProcessingConfig(aec=True, noise_suppression=True, auto_gain=True) == ap.DEFAULT
