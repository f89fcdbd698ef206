"""The speaker's per-block path in C (media/speaker_path.cpp, media/playout_native.py).

Pinned to the Python path it replaces: the same pushes and pulls (with their arrival
times) give the same samples and the same decisions out of the C playout buffer as out of
PlayoutBuffer, bit for bit (adaptive target, drift correction's resampling, quiet skips,
accelerate's splices, underruns and refills, the hard bound); the C play-time timeline
gives PulseStream._play_time's times and flags. Then a real pulse speaker through it.
"""

from __future__ import annotations

import asyncio
import gc
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from hello_tui.media import aec3_tuned, capture_native, devices, playout_native, sinks
from hello_tui.media import pulse_streams as ps
from hello_tui.media.audio_processing import ProcessingConfig, attach_processing
from hello_tui.media.levels import rms_dbfs
from hello_tui.media.playout import PlayoutBuffer, PlayoutConfig
from hello_tui.media.sinks import DEVICE_PLAYOUT, DeviceSink, open_audio_sink
from hello_tui.media.sources import DeviceSource, SineSource
from tests.media.conftest import peak_hz
from tests.media.test_pulse_backend import _thread_states, parec
from tests.pulse import SINK, PulseDaemon

RATE = 48_000


def _built() -> bool:
    try:
        playout_native.library()
    except aec3_tuned.ShimUnavailable:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not _built(), reason="the AEC3 shim (with speaker_path.cpp) is not built"
)

CONFIGS = {
    "device": DEVICE_PLAYOUT,
    "fixed": PlayoutConfig(),
    "adaptive-boost": PlayoutConfig(adaptive=True),
    "device-no-accelerate": replace(DEVICE_PLAYOUT, accelerate_ms=0.0),
}


def scene(seed: int, seconds: float = 30.0) -> list[tuple[str, Any]]:
    """A speaker's worth of pushes (20 ms frames at jittered times, with stalls and their
    bursts, a sender pause, a clock skew) and pulls (10 ms, sometimes two at once, a few
    of odd sizes), in time order; the audio has speech-like bursts, tones and silence."""
    rng = np.random.default_rng(seed)
    n_frames = int(seconds * 50)
    t = np.arange(n_frames * 960) / RATE
    tone = 6000 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.3 * t) > -0.2)
    noise = rng.standard_normal(len(t)) * 2500 * (np.sin(2 * np.pi * 0.17 * t + 1) > 0.3)
    audio = np.clip(tone + noise, -32768, 32767).astype(np.int16)
    events: list[tuple[float, int, str, Any]] = []
    skew = 1.0 + (0.002 if seed % 2 == 0 else -0.002)  # even: a slower sender
    stall_until = -1.0
    for i in range(n_frames):
        due = 0.5 + i * 0.020 * skew
        if 12.0 < due < 13.0:
            continue  # the sender paused: a second of nothing (frames lost)
        r = rng.random()
        if r < 0.01:
            stall_until = due + float(rng.uniform(0.06, 0.3))  # the loop stalled
        lateness = abs(float(rng.normal(0, 0.004)))
        at = max(due + lateness, stall_until) if due < stall_until else due + lateness
        events.append((at, 0, "push", audio[i * 960 : (i + 1) * 960]))
    if seed % 2:  # a burst past the hard bound (200 ms)
        events.append((20.0, 0, "push", audio[: 960 * 14]))
    pull_at = 0.5
    while pull_at < 0.5 + seconds + 0.5:
        r = rng.random()
        n = 480 if r > 0.02 else int(rng.choice([240, 441, 960]))
        events.append((pull_at, 1, "pull", n))
        if rng.random() < 0.03:  # the server asked for two blocks at once
            events.append((pull_at, 2, "pull", 480))
            pull_at += 0.010
        pull_at += 0.010 + float(rng.normal(0, 0.0005))
    events.sort(key=lambda e: (e[0], e[1]))
    return [(kind, (at, arg)) for at, _, kind, arg in events]


def _counters(b: Any) -> tuple[Any, ...]:
    return (b.depth, b.target, b.underruns, b.overflow_drops, b.samples_removed,
            b.samples_inserted, b.accelerated)  # fmt: skip


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_c_playout_gives_the_python_buffers_samples_and_decisions(
    config: str, seed: int
) -> None:
    cfg = CONFIGS[config]
    py, c = PlayoutBuffer(cfg), playout_native.NativePlayout(cfg)
    kinds: dict[str, int] = {}
    for i, (kind, (at, arg)) in enumerate(scene(seed)):
        if kind == "push":
            py.push(arg, at)
            c.push(arg, at)
        else:
            a, b = py.pull(arg), c.pull(arg)
            assert a.dtype == b.dtype and np.array_equal(a, b), f"pull {i} at {at:.3f}"
        assert _counters(py) == _counters(c), f"{kind} {i} at {at:.3f}"
        assert py.drift.average_depth == c.average_depth
        assert py.drift.tolerance == c.tolerance
        assert py._priming == c.priming
        kinds[kind] = kinds.get(kind, 0) + 1
    assert py.stats() == c.stats()
    assert py.output_dbfs == c.output_dbfs
    # The scene exercised what it is for (else the comparison proves little).
    assert py.underruns >= 2
    assert py.samples_removed > 0
    if seed % 2 == 0 and not (cfg.adaptive and cfg.underrun_boost_ms):  # (boost: grows)
        assert py.samples_inserted > 0
    if cfg.accelerate_ms:
        assert py.accelerated > 0
    if seed % 2:
        assert py.overflow_drops > 0
    if cfg.adaptive:
        assert py.stats().jitter_ms > 0


def test_the_comparison_fails_when_the_c_buffer_differs() -> None:
    """The test above can fail: another target (one sample) shows in the samples."""
    py = PlayoutBuffer(DEVICE_PLAYOUT)
    c = playout_native.NativePlayout(replace(DEVICE_PLAYOUT, margin_ms=5.0 + 1 / 48))
    differs = False
    for kind, (at, arg) in scene(1, seconds=10):
        if kind == "push":
            py.push(arg, at)
            c.push(arg, at)
        else:
            differs |= not np.array_equal(py.pull(arg), c.pull(arg))
    assert differs


def test_the_speaker_path_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(playout_native.KNOB, raising=False)
    assert playout_native.available()
    monkeypatch.setenv(playout_native.KNOB, "0")
    assert not playout_native.available()
    monkeypatch.setenv(playout_native.KNOB, "1")
    assert playout_native.available()
    monkeypatch.setenv(capture_native.KNOB, "0")  # all Python: the speaker too
    assert not playout_native.available()


def _python_timeline(blocksize: int) -> Any:
    stream = object.__new__(ps.PulseStream)
    stream.blocksize = blocksize
    stream._underflow = False
    stream._next_play = None
    stream._gap_seen = float("-inf")
    stream._refine = False
    stream._report_at = None
    return stream


def test_the_c_play_time_timeline_is_pulse_streams() -> None:
    """Measured times with wobble, gaps (late), early jumps and the server's underflow
    messages, some with a report after the gap: the same times and flags from C."""
    rng = np.random.default_rng(7)
    spk = playout_native.NativeSpeaker(DEVICE_PLAYOUT)
    binding = spk.bind(0, 480, 0.05, True)
    py = _python_timeline(480)
    now, offset = 100.0, 0.030
    flags = 0
    for i in range(3000):
        now += 0.010 + float(rng.normal(0, 0.001))
        r = rng.random()
        if r < 0.01:
            offset += float(rng.uniform(0.013, 0.06))  # the speaker ran dry
        elif r < 0.015:
            offset -= float(rng.uniform(0.025, 0.05))  # earlier: the timeline follows
        told = rng.random() < 0.01
        measured = now + offset + float(rng.normal(0, 0.002))
        report = float(now - rng.uniform(0, 0.4)) if rng.random() < 0.5 else None
        py._underflow = told
        py._report_at = report
        want = py._play_time(measured, now)
        py._next_play = want[0] + 480 / RATE
        got = _c_play_time(binding, measured, now, told, report)
        assert got == want, f"block {i}"
        flags += want[1]
    assert flags > 20
    binding.unbind()


def _c_play_time(binding: Any, measured: float, now: float, told: bool, report: float | None
                 ) -> tuple[float, bool]:  # fmt: skip
    # The report time is the one _heard_at kept: the C binding takes it from the same
    # field, which only _heard_at sets; tests drive it through the Python mirror below.
    binding._lib.spk_test_report(binding.handle, -1.0 if report is None else report)
    return binding.play_time(measured, now, told)


@pytest.fixture
def native_speaker(pulse: PulseDaemon, monkeypatch: pytest.MonkeyPatch) -> PulseDaemon:
    monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
    monkeypatch.setenv(playout_native.KNOB, "1")
    return pulse


async def test_a_pulse_speaker_plays_from_c_and_python_only_pushes(
    native_speaker: PulseDaemon,
) -> None:
    """A tone through a ``device:`` sink on the C path: what the server plays is the tone,
    no Python thread state is made for the speaker's thread, and the stats read from C
    say the buffer ran (depth, target, a level)."""
    await asyncio.to_thread(lambda: None)  # (the executor's thread, which parec runs on)
    states = _thread_states()
    sink = open_audio_sink(f"device:{SINK}", fallback=False)
    assert isinstance(sink, DeviceSink) and sink._stream.native
    assert isinstance(sink.buffer, playout_native.NativePlayout)
    assert sink._stream.requested_latency == ps.NATIVE_LOW_LATENCY_S  # "low", written from C
    assert sink.buffer.config == sinks.NATIVE_DEVICE_PLAYOUT  # its smaller margin
    try:
        await sink.start(SineSource("sine:440", 440))
        await asyncio.sleep(0.3)
        heard = await asyncio.to_thread(parec, native_speaker, f"{SINK}.monitor", 1.0)
        assert _thread_states() == states  # (the Python path keeps one for its thread)
        assert abs(peak_hz(heard[4800:]) - 440) < 10 and rms_dbfs(heard[4800:]) > -30
        stats = sink.stats()
        assert stats.frames >= 50 and stats.level_dbfs > -30
        assert stats.target_ms >= sinks.NATIVE_DEVICE_PLAYOUT.min_target_ms  # its floor
        assert sink.last_block > time.monotonic() - 0.5
    finally:
        await sink.stop()


async def test_the_c_speaker_feeds_the_c_stages_far_end(native_speaker: PulseDaemon) -> None:
    """The processing stage's pairing gets the speaker's blocks from C (no Python feed),
    as many as the card played, and a switch mid-call keeps feeding it."""
    sink = open_audio_sink(f"device:{SINK}", fallback=False)
    source = DeviceSource(f"device:{SINK}.monitor", f"{SINK}.monitor")
    assert isinstance(sink, DeviceSink)
    try:
        attach_processing(source, sink, ProcessingConfig(), ask_headset=False)
        processor = source.processor
        assert isinstance(processor, capture_native.NativeProcessor)
        await sink.start(SineSource("sine:440", 440))
        for _ in range(25):
            await source.recv()
        before = processor.stats().far_frames
        assert before > 20
        await asyncio.to_thread(sink.switch, SINK)
        for _ in range(25):
            await source.recv()
        assert processor.stats().far_frames > before + 20
        assert sink.switches == 1 and sink.switch_gap_ms is not None
    finally:
        source.stop()
        await sink.stop()


def test_closing_pulse_speakers_while_their_c_callbacks_run(native_speaker: PulseDaemon) -> None:
    """Speakers switched and closed while their blocks are written from C: nothing
    crashes, the old generation plays silence, and the C speaker is freed once the owner
    and its last stream have let go (no stream left on the server)."""
    for _ in range(3):
        sink = DeviceSink(f"device:{SINK}", SINK)
        sink.warm()
        for i in range(3):
            sink._consume(np.full(960, 1000 * (i + 1), dtype=np.int16))
            time.sleep(0.03)
            sink.switch(SINK)
        asyncio.run(sink.stop())
        del sink
        gc.collect()
    assert ps.stale_callbacks == 0


def test_with_the_knob_off_the_speaker_stays_python(
    pulse: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
    monkeypatch.setenv(playout_native.KNOB, "0")
    sink = DeviceSink(f"device:{SINK}", SINK)
    try:
        assert not sink._stream.native and isinstance(sink.buffer, PlayoutBuffer)
        assert sink.buffer.config == sinks.DEVICE_PLAYOUT
        assert sink._stream.requested_latency == ps.LOW_LATENCY_S
    finally:
        asyncio.run(sink.stop())


def test_the_c_write_callback_is_pulse_streams_and_device_sinks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libpulse's write callback in C against PulseStream._write + DeviceSink._callback,
    both on one fake clock and one fake server (its timing reports: playing or not, stale,
    corrupt; its underflow messages; requests of one to three blocks, some late): the same
    bytes written, the same play time and underrun flag for every block."""
    import ctypes

    from hello_tui.media import pulse_lib as pa

    monkeypatch.setenv("HELLO_TUI_PULSE_PIN", "0")  # (no thread state kept on this thread)
    lib = playout_native.library()
    rng = np.random.default_rng(11)
    clock = {"now": 1000.0}
    wall = 5000.0  # time.time() - time.monotonic()
    info = pa.TimingInfo()
    report = {"ok": True, "latency_us": 30000}
    written: dict[str, list[bytes]] = {"py": [], "c": []}

    mono_fn = ctypes.CFUNCTYPE(ctypes.c_double)(lambda: clock["now"])
    wall_fn = ctypes.CFUNCTYPE(ctypes.c_double)(lambda: clock["now"] + wall)

    def c_write(_s: Any, data: int, nbytes: int, *_a: Any) -> int:
        written["c"].append(ctypes.string_at(data, nbytes))
        return 0

    def c_latency(_s: Any, usec: Any, negative: Any) -> int:
        usec[0], negative[0] = report["latency_us"], 0
        return 0

    write_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t,
                               ctypes.c_void_p, ctypes.c_int64, ctypes.c_int)(c_write)  # fmt: skip
    timing_t = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)(
        lambda _s: ctypes.addressof(info) if report["ok"] else None
    )
    latency_t = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64),
                                 ctypes.POINTER(ctypes.c_int))(c_latency)  # fmt: skip

    class FakeHeld:
        def pa_stream_get_timing_info(self, _s: Any) -> Any:
            return ctypes.pointer(info) if report["ok"] else None

        def pa_stream_get_latency(self, _s: Any, usec: Any, negative: Any) -> int:
            usec.value, negative.value = report["latency_us"], 0
            return 0

        def pa_stream_write(self, _s: Any, data: int, nbytes: int, *_a: Any) -> int:
            written["py"].append(ctypes.string_at(data, nbytes))
            return 0

    class FakeTime:
        @staticmethod
        def monotonic() -> float:
            return clock["now"]

        @staticmethod
        def time() -> float:
            return clock["now"] + wall

    monkeypatch.setattr(ps, "time", FakeTime)
    monkeypatch.setattr("hello_tui.media.sinks.time", FakeTime)
    # The Python pair: a PulseStream's write path calling a DeviceSink's callback.
    sink = object.__new__(DeviceSink)
    sink._native = None
    sink.buffer = PlayoutBuffer(DEVICE_PLAYOUT)
    sink._last_block, sink._card_underflows = 0.0, 0
    sink._underflow_times = __import__("collections").deque(maxlen=64)
    sink._fresh, sink._switched_from, sink._end_dac = False, None, None
    py_blocks: list[tuple[float, bool]] = []
    sink.far_end = lambda _b, played, flag: py_blocks.append((played - clock["now"], flag))
    stream = object.__new__(ps.PulseStream)
    vars(stream).update(
        blocksize=480, callback=sink._callback, _times=ps._Times(), _status=ps._Status(),
        _out=np.zeros((480, 1), dtype=np.int16), _held=FakeHeld(), _written=0,
        _next_play=None, _raw_timing=True, _report_at=None, _gap_seen=float("-inf"),
        _usec=ctypes.c_uint64(), _negative=ctypes.c_int(), _latency=0.05, _underflow=False,
        _refine=False, _underflows=0,
    )  # fmt: skip
    stream._out_at = stream._out.ctypes.data
    # The C one, on the same clock.
    spk = playout_native.NativeSpeaker(DEVICE_PLAYOUT)
    spk.trace(True)
    addr = lambda f: ctypes.cast(f, ctypes.c_void_p).value  # noqa: E731
    handle = lib.spk_bind(spk.handle, 0, 480, 0.05, 1, addr(write_t), addr(timing_t),
                          addr(latency_t))  # fmt: skip
    lib.spk_test_clocks(addr(mono_fn), addr(wall_fn))
    try:
        audio = (np.sin(np.arange(48000 * 8) * 2 * np.pi * 300 / RATE) * 8000).astype(np.int16)
        played_bytes, next_push, pushed = 0, clock["now"], 0
        for _ in range(600):
            clock["now"] += 0.010 + (float(rng.uniform(0.02, 0.08)) if rng.random() < 0.03
                                     else float(rng.normal(0, 0.001)))  # fmt: skip
            while next_push <= clock["now"] and pushed + 960 <= len(audio):
                frame = audio[pushed : pushed + 960]
                sink.buffer.push(frame, next_push)
                spk.playout.push(frame, next_push)
                pushed += 960
                next_push += 0.020 + abs(float(rng.normal(0, 0.003)))
            # The server's last report: taken a little before now, played up to about now.
            age = float(rng.uniform(0, 0.03))
            played_bytes = max(played_bytes, stream._written - int(rng.integers(0, 4)) * 960)
            info.timestamp.tv_sec = int(clock["now"] + wall - age)
            info.timestamp.tv_usec = int(((clock["now"] + wall - age) % 1) * 1e6)
            info.sink_usec = int(rng.integers(5000, 15000))
            info.playing = int(rng.random() > 0.05)
            info.read_index = played_bytes
            info.read_index_corrupt = int(rng.random() < 0.02)
            report["ok"] = rng.random() > 0.02
            report["latency_us"] = int(rng.integers(10000, 60000))
            if rng.random() < 0.03:  # the server's underflow message
                stream._underflowed()
                lib.spk_pulse_underflow(None, handle)
            nbytes = 960 * int(rng.choice([1, 1, 1, 2, 3]))
            stream._write(None, nbytes)
            lib.spk_pulse_write(None, nbytes, handle)
        records = []
        while batch := spk.trace_take():
            records += batch
        c_blocks = [(r[4], bool(r[3])) for r in records]
        assert written["c"] == written["py"]
        assert c_blocks == py_blocks
        assert sum(flag for _, flag in py_blocks) >= 5  # gaps were found (and flagged)
        assert sink.buffer.underruns == spk.playout.underruns
    finally:
        lib.spk_test_clocks(None, None)
        lib.spk_unbind(handle)


async def test_without_the_shim_the_speaker_stays_python(
    native_speaker: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pure wheel (no shim, or one built before speaker_path.cpp), the knob set: the
    Python buffer and write callback, and the tone still plays."""
    monkeypatch.setattr(aec3_tuned, "_lib", None)
    monkeypatch.setenv("HELLO_TUI_AEC3_SHIM", "/nonexistent/_aec3_shim.so")
    assert not playout_native.available()
    sink = open_audio_sink(f"device:{SINK}", fallback=False)
    assert isinstance(sink, DeviceSink)
    try:
        assert sink._native is None and not sink._stream.native
        assert isinstance(sink.buffer, PlayoutBuffer)
        await sink.start(SineSource("sine:440", 440))
        await asyncio.sleep(0.3)
        heard = await asyncio.to_thread(parec, native_speaker, f"{SINK}.monitor", 0.6)
        assert abs(peak_hz(heard[4800:]) - 440) < 10
    finally:
        await sink.stop()
