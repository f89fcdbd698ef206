"""The microphone's per-block path in C (media/capture_path.cpp, media/capture_native.py).

Pinned to the Python path it replaces: the same blocks in (with their times, underruns,
overflows and fills) give the same samples out, bit for bit, from the pairing and
processing (CaptureProcessor) and from the capture timeline and framing (PulseStream's
``_take`` and the rechunker). Then a real pulse microphone through it, and a stream
closed while its callback runs.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hello_tui.media import aec3_tuned, capture_native, devices
from hello_tui.media import pulse_streams as ps
from hello_tui.media.audio_format import Rechunker
from hello_tui.media.audio_processing import (
    BLOCK,
    CaptureProcessor,
    ProcessingConfig,
    ProcessingStats,
    attach_processing,
    open_processor,
)
from hello_tui.media.levels import rms_dbfs
from hello_tui.media.sinks import DeviceSink, open_audio_sink
from hello_tui.media.sources import DeviceSource, SineSource
from tests.media.conftest import peak_hz
from tests.media.test_pulse_backend import Tone, _thread_states
from tests.pulse import SINK, PulseDaemon

RATE = 48_000

pytestmark = pytest.mark.skipif(
    not capture_native.available(), reason="the AEC3 shim (with capture_path.cpp) is not built"
)


def _comparable(stats: ProcessingStats) -> ProcessingStats:
    return replace(stats, cpu_seconds=0.0)


def scene(seed: int, trim: bool, blocks: int = 240) -> list[tuple[str, Any]]:
    """A call's worth of calls into a processor, in order: far blocks in bursts with
    jittering play times, speaker underruns (measurable, too long then corrected, or
    unmeasurable), microphone blocks of odd sizes, overflows and a lost stretch."""
    rng = np.random.default_rng(seed)
    far = (rng.standard_normal(blocks * BLOCK + RATE) * 3000).astype(np.int16)
    echo = np.convolve(far.astype(np.float64), [0] * 2400 + [0.4, 0.2])[: len(far)]
    near_talk = (rng.standard_normal(len(far)) * 800) * (np.arange(len(far)) > len(far) // 2)
    mic = np.clip(echo + near_talk, -32768, 32767).astype(np.int16)
    ops: list[tuple[str, Any]] = []
    j = k = 0
    shift = 0.0
    t_near = 0.0
    while k < blocks * BLOCK:
        burst = int(rng.integers(1, 4)) * BLOCK
        underflow = False
        r = rng.random()
        if r < 0.03:  # a gap the speaker measured
            shift += 0.010
            underflow = True
        elif r < 0.05 and trim:  # guessed 30 ms, corrected to 10 by the next block
            ops.append(("far", (far[j : j + burst], 100.0 + j / RATE + shift + 0.030, True)))
            j += burst
            shift += 0.010
            underflow = True
        elif r < 0.06:  # earlier than due: unmeasurable
            shift -= 0.010
            underflow = True
        jitter = float(rng.normal(0, 0.002))
        ops.append(("far", (far[j : j + burst], 100.0 + j / RATE + shift + jitter, underflow)))
        j += burst
        while k < j - 2 * BLOCK:  # the microphone lags the speaker a little
            size = int(rng.choice([BLOCK, 2 * BLOCK, BLOCK + 7, BLOCK - 7]))
            overflow = rng.random() < 0.01
            if rng.random() < 0.01:
                t_near += 0.050  # a lost stretch
            times = None if rng.random() < 0.02 else 100.03 + k / RATE + t_near
            jit = 0.0 if times is None else float(rng.normal(0, 0.003))
            ops.append(("near", (mic[k : k + size], None if times is None else times + jit,
                                 overflow)))  # fmt: skip
            k += size
    return ops


def run(proc: Any, ops: list[tuple[str, Any]], switch_at: int | None = None) -> np.ndarray:
    out = []
    for i, (kind, args) in enumerate(ops):
        if i == switch_at:
            proc.set_echo_cancellation(not proc.echo_cancellation)
        if kind == "far":
            proc.feed_far(*args)
        else:
            out.append(proc.process(*args))
    return np.concatenate(out)


@pytest.mark.parametrize(
    ("seed", "trim", "config", "switch"),
    [
        (1, True, ProcessingConfig(), None),
        (2, False, ProcessingConfig(), None),
        (3, True, ProcessingConfig(tuned_aec=False), None),
        (4, True, ProcessingConfig(auto_gain=False, noise_suppression=False), None),
        (5, True, ProcessingConfig(), 300),
    ],
)
def test_the_c_pairing_and_processing_give_the_python_paths_samples(
    seed: int, trim: bool, config: ProcessingConfig, switch: int | None
) -> None:
    ops = scene(seed, trim)
    python = CaptureProcessor(config, echo_cancellation=True)
    native = capture_native.NativeProcessor(config, echo_cancellation=True)
    python.trim_fills = native.trim_fills = trim
    taps: tuple[list[Any], list[Any]] = ([], [])
    python.tap = lambda n, f: taps[0].append((n.copy(), f.copy()))
    native.tap = lambda n, f: taps[1].append((n.copy(), f.copy()))
    expected = run(python, ops, switch)
    got = run(native, ops, switch)
    native.tap = python.tap = None  # (C hands its pairs over now)
    assert len(taps[0]) == len(taps[1]) == len(expected) // BLOCK
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
               for a, b in zip(*taps, strict=True))  # fmt: skip
    assert len(got) == len(expected) > 200 * BLOCK
    assert np.array_equal(got, expected)
    st = python.stats()
    assert _comparable(native.stats()) == _comparable(st)
    # The scene reached every branch it means to pin.
    assert st.gaps_filled and st.realignments and st.far_missing
    assert st.gaps_trimmed if trim and switch is None else not st.gaps_trimmed


def test_without_echo_cancellation_the_c_path_is_the_binding_bit_for_bit() -> None:
    ops = scene(6, False)
    python = CaptureProcessor(ProcessingConfig(), echo_cancellation=False)
    native = capture_native.NativeProcessor(ProcessingConfig(), echo_cancellation=False)
    assert np.array_equal(run(native, ops), run(python, ops))
    assert not native.stats().echo_cancellation and native.stats().far_frames == 0


def test_open_processor_gives_the_c_one_unless_the_knob_says_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc, _ = open_processor(ProcessingConfig(), echo_cancellation=True)
    assert isinstance(proc, capture_native.NativeProcessor) and proc.tuned
    monkeypatch.setenv(capture_native.KNOB, "0")
    proc, _ = open_processor(ProcessingConfig(), echo_cancellation=True)
    assert isinstance(proc, CaptureProcessor)


def python_capture(ops: list[tuple[float, np.ndarray | None]], processor: Any) -> list[np.ndarray]:
    """The Python path: PulseStream._take's timeline, the processor, the rechunker."""
    stream: Any = object.__new__(ps.PulseStream)
    stream.blocksize = BLOCK
    stream._pending, stream._pending_at = np.zeros(0, dtype=np.int16), 0.0
    stream._data = np.zeros((BLOCK, 1), dtype=np.int16)
    stream._times, stream._status = ps._Times(), ps._Status()
    stream.overflows = 0
    chunks, frames = Rechunker(), []

    def callback(data: np.ndarray, _n: int, when: Any, status: Any) -> None:
        block = data[:, 0].copy()
        if processor is not None:
            block = processor.process(block, when.inputBufferAdcTime, status.input_overflow)
        chunks.push(block)
        while (frame := chunks.pop()) is not None:
            frames.append(frame)

    stream.callback = callback
    for captured, chunk in ops:
        if chunk is None:
            stream._status.input_overflow = True
        else:
            stream._take(chunk, captured)
    return frames


def capture_ops(seed: int) -> list[tuple[float, np.ndarray | None]]:
    """Chunks as libpulse hands them (odd sizes), times that wobble, a hole, a jump."""
    rng = np.random.default_rng(seed)
    ops: list[tuple[float, np.ndarray | None]] = []
    t, n = 50.0, 0
    for i in range(300):
        size = int(rng.choice([BLOCK, 2 * BLOCK, 300, 700, 1000]))
        if i in (40, 200):
            t += 0.100  # the server dropped 100 ms
        if i == 120:
            ops.append((0.0, None))  # a hole
        chunk = (rng.standard_normal(size) * 2000).astype(np.int16)
        ops.append((t + n / RATE + float(rng.normal(0, 0.004)), chunk))
        n += size
    return ops


@pytest.mark.parametrize("processing", [False, True])
def test_the_c_capture_timeline_and_frames_are_the_python_ones(processing: bool) -> None:
    ops = capture_ops(7)
    config = ProcessingConfig()
    python = CaptureProcessor(config, echo_cancellation=True) if processing else None
    native = capture_native.NativeProcessor(config, echo_cancellation=True) if processing else None
    far = (np.random.default_rng(8).standard_normal(RATE * 2) * 2000).astype(np.int16)
    for proc in (python, native):
        if proc is not None:  # the speaker's times: the pairing follows the capture's jumps
            proc.feed_far(far, 49.9)
    expected = python_capture(ops, python)
    capture = capture_native.NativeCapture(0.5, -40.0)
    capture._lib.cap_set_settle(capture.handle, 0)  # the Python path keeps the first lag
    capture.set_processor(native)
    capture.listen()
    binding = capture.bind(0, BLOCK, 0.01)
    got = []
    for captured, chunk in ops:
        if chunk is None:
            binding.hole()
        else:
            binding.chunk(chunk, captured)
        while (frame := capture.pop()) is not None:
            got.append(frame)
    assert binding.overflows == 3  # the hole and the two jumps
    binding.unbind()
    assert len(got) == len(expected) > 100
    assert all(np.array_equal(a, b) for a, b in zip(got, expected, strict=True))
    if python is not None and native is not None:
        assert _comparable(native.stats()) == _comparable(python.stats())
        assert python.stats().realignments  # the jumps re-paired


# --- A real pulse microphone through the C path ---


async def test_without_the_shim_the_microphone_and_its_stage_stay_python(
    pulse_backend: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pure wheel (no shim, or none with the capture path): the Python stage and the
    Python read callback, frames as before."""
    monkeypatch.setattr(aec3_tuned, "_lib", None)
    monkeypatch.setenv("HELLO_TUI_AEC3_SHIM", "/nonexistent/_aec3_shim.so")
    assert not capture_native.available()
    proc, _ = open_processor(ProcessingConfig(), echo_cancellation=True)
    assert isinstance(proc, CaptureProcessor) and not proc.tuned
    source = DeviceSource(f"device:{SINK}.monitor", f"{SINK}.monitor")
    try:
        assert source._native is None and not source._stream.native
        source.processor = proc
        for _ in range(5):
            await source.recv()
        assert proc.frames >= 8
    finally:
        source.stop()


@pytest.fixture
def pulse_backend(pulse: PulseDaemon, monkeypatch: pytest.MonkeyPatch) -> PulseDaemon:
    monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
    monkeypatch.setenv(capture_native.KNOB, "1")  # the read callback in C (the default)
    return pulse


def test_the_read_callback_in_c_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(capture_native.KNOB, raising=False)
    assert capture_native.available() and capture_native.read_path()
    monkeypatch.setenv(capture_native.KNOB, "1")
    assert capture_native.read_path()
    monkeypatch.setenv(capture_native.KNOB, "stage")  # the stage only, under Python's callback
    assert capture_native.available() and not capture_native.read_path()
    monkeypatch.setenv(capture_native.KNOB, "0")
    assert not capture_native.available() and not capture_native.read_path()


def _open_fds() -> int:
    """The process's open eventfds (the capture path's wake-ups among them)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # (the listing's own fd, closed since)
            count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[eventfd]"
    return count


async def test_a_pulse_microphone_runs_in_c_and_python_gets_whole_frames(
    pulse_backend: PulseDaemon,
) -> None:
    """A tone played into the null sink, captured from its monitor by a ``device:``
    source: the stream calls C (no Python thread state on its thread while it runs),
    the frames are the tone, and open/close rounds pile up no eventfd or state."""
    tone = Tone()
    out, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=BLOCK)
    out.start()
    try:
        states = _thread_states()
        fds = []
        for _ in range(3):
            source = DeviceSource(f"device:{SINK}.monitor", f"{SINK}.monitor")
            assert source._stream.native
            frames = [(await source.recv()).to_ndarray()[0] for _ in range(25)]
            assert _thread_states() == states  # (the speaker's was there before)
            source.stop()
            gc.collect()  # the last round's source is gone
            fds.append(_open_fds())
        heard = np.concatenate(frames[5:])
        assert abs(peak_hz(heard) - 440) < 10 and rms_dbfs(heard) > -20
        assert fds[1] == fds[2]
    finally:
        out.close()


async def test_the_c_path_processes_a_pulse_microphone_and_pairs_the_speaker(
    pulse_backend: PulseDaemon,
) -> None:
    """With the processing stage (AEC3 on, the speaker feeding its reference) the
    frames still come, processed in C, and the pairing got the speaker's far end."""
    sink = open_audio_sink(f"device:{SINK}", fallback=False)
    source = DeviceSource(f"device:{SINK}.monitor", f"{SINK}.monitor")
    assert isinstance(sink, DeviceSink)
    try:
        attach_processing(source, sink, ProcessingConfig(), ask_headset=False)
        assert isinstance(source.processor, capture_native.NativeProcessor)
        assert source.processor.echo_cancellation and source.processor.trim_fills
        await sink.start(SineSource("sine:440", 440))
        for _ in range(25):
            await source.recv()
        stats = source.processor.stats()
        assert stats.frames >= 40 and stats.far_frames > 0 and stats.tuned
    finally:
        source.stop()
        await sink.stop()


def test_closing_pulse_microphones_while_their_c_callbacks_run(
    pulse_backend: PulseDaemon,
) -> None:
    """Streams bound to one capture closed and switched while blocks arrive (the
    mainloop thread in C): nothing crashes, and the capture's eventfd closes once the
    owner and the last stream have let go, not before."""
    tone = Tone()
    out, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=BLOCK)
    out.start()
    try:
        gc.collect()  # (an earlier test's capture, freed now rather than mid-count)
        fds = _open_fds()
        capture = capture_native.NativeCapture(0.5, -40.0)
        capture.listen()
        streams = []
        for generation in range(6):
            callback: Any = lambda *_a: None  # noqa: E731
            callback.native_capture = (capture, generation)
            mic, _ = devices.open_stream("input", f"{SINK}.monitor", callback,
                                         samplerate=RATE, blocksize=BLOCK)  # fmt: skip
            mic.start()
            streams.append(mic)
            deadline = time.monotonic() + 5
            while capture.pop() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            capture.switch()  # the next stream's blocks from now on
            if generation % 2:
                streams.pop(0).close()  # a stream closed while another one runs
        del capture, callback, mic  # the owner lets go first: the open streams hold it
        gc.collect()
        assert _open_fds() > fds
        while streams:
            streams.pop().close()
        gc.collect()
        assert _open_fds() == fds
    finally:
        out.close()


@pytest.mark.parametrize("settle", [True, False])
def test_the_read_path_settles_its_first_lag_once_both_clocks_have_times(settle: bool) -> None:
    """The microphone's first blocks come before the speaker's first times: the first
    lag is measured without them (0). The read path in C follows the clocks until both
    have RESYNC_AFTER times (15 ms here); kept, a lag 15 ms off (under REALIGN_S) would
    pair the whole call wrong (HELLO_TUI_PAIR_SETTLE=0, the Python path's rule)."""
    capture = capture_native.NativeCapture(0.5, -40.0)
    capture._lib.cap_set_settle(capture.handle, int(settle))
    native = capture_native.NativeProcessor(ProcessingConfig(), echo_cancellation=True)
    capture.set_processor(native)
    capture.listen()
    binding = capture.bind(0, BLOCK, 0.01)
    ramp = np.arange(40 * BLOCK, dtype=np.int16)
    for k in range(20):  # far sample j is heard at 99.995 + j / RATE: a lag of 15 ms
        if k == 2:
            native.feed_far(ramp[: 5 * BLOCK], 99.995)
        elif k > 2:
            j = (k + 2) * BLOCK
            native.feed_far(ramp[j : j + BLOCK], 99.995 + j / RATE)
        binding.chunk(np.zeros(BLOCK, dtype=np.int16), 100.0 + k * BLOCK / RATE)
    binding.unbind()
    assert native.stats().pairing_ms == (15.0 if settle else 0.0)
    assert native.stats().realignments == 0


def test_the_read_path_wakes_the_loop_once_per_frame_not_per_block() -> None:
    """The event loop's cost on the C read path is one eventfd wake-up per 20 ms frame
    (docs/media.md, "The capture path in C"): ten 10 ms blocks, five frames, and the
    eventfd's counter (one per write) says 5, not 10; the frames are the blocks."""
    capture = capture_native.NativeCapture(0.5, -40.0)
    capture.listen()
    binding = capture.bind(0, BLOCK, 0.01)
    blocks = np.arange(10 * BLOCK, dtype=np.int16).reshape(10, BLOCK)
    for k, block in enumerate(blocks):
        binding.chunk(block, 100.0 + k * BLOCK / RATE)
    wakes = int.from_bytes(os.read(capture.fd, 8), "little")
    frames, counters = capture.take()  # (at most capture_native.TAKE a call)
    rest, _ = capture.take()
    binding.unbind()
    assert wakes == len(frames) + len(rest) == 5
    assert np.array_equal(np.concatenate([*frames, *rest]), blocks.ravel())
    assert counters[4] == 0  # nothing dropped
