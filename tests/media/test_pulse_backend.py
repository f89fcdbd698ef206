"""The pulse backend (media/pulse_streams.py) on the real PulseAudio daemon of the tests:
devices by name and description, sound that reaches the null sink's monitor, capture
with its times, underruns reported, a removed sink noticed, the backend switch."""

from __future__ import annotations

import ctypes
import itertools
import os
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import pytest

from hello_tui.media import devices
from hello_tui.media.errors import DeviceError
from hello_tui.media.levels import rms_dbfs
from tests.media.conftest import peak_hz
from tests.pulse import SINK, PulseDaemon

RATE = 48_000


@pytest.fixture
def pulse_backend(pulse: PulseDaemon, monkeypatch: pytest.MonkeyPatch) -> PulseDaemon:
    monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
    return pulse


class Tone:
    """A playback callback: a continuous 440 Hz tone; records each block's times."""

    def __init__(self, stall_at: int | None = None) -> None:
        self.n = 0
        self.stall_at = stall_at
        self.times: list[tuple[float, float, bool]] = []  # (now, DAC time, underflow before)
        self.underflowed = threading.Event()

    def __call__(self, out: Any, frames: int, when: Any, status: Any) -> None:
        t = np.arange(self.n, self.n + frames) / RATE
        out[:, 0] = (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype(np.int16)
        self.n += frames
        self.times.append((when.currentTime, when.outputBufferDacTime, status.output_underflow))
        if status.output_underflow:
            self.underflowed.set()
        if self.stall_at is not None and len(self.times) == self.stall_at:
            time.sleep(0.25)  # the callback's thread is stuck: the server's buffer runs dry


def flagged_after(tone: Tone, first: int) -> list[int]:
    """Indexes of the blocks from ``first`` on that came after an underrun."""
    return [i for i, (_, _, under) in enumerate(list(tone.times)) if under and i >= first]


def parec(daemon: PulseDaemon, source: str, seconds: float) -> np.ndarray:
    """``seconds`` of ``source`` recorded by PulseAudio's own client (not ours)."""
    proc = subprocess.Popen(
        ["parec", "--raw", "--format=s16le", "--rate=48000", "--channels=1", "-d", source],
        env={**os.environ, **daemon.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(seconds)
    finally:
        proc.terminate()
        data, _ = proc.communicate(timeout=10)
    return np.frombuffer(data[: len(data) // 2 * 2], dtype=np.int16)


def test_devices_are_sinks_and_sources_by_name_or_description(pulse_backend: PulseDaemon) -> None:
    outputs = devices.list_devices("output")
    inputs = devices.list_devices("input")
    sink = next(d for d in outputs if d.name == SINK)
    assert sink.description == "hello-test" and sink.default_output and sink.outputs == 1
    assert next(d for d in inputs if d.name == f"{SINK}.monitor").default_input
    assert devices.resolve_device("", "output").name == SINK
    assert devices.resolve_device("HELLO-TEST", "output").name == SINK  # a description
    assert devices.resolve_device(SINK, "input").name == f"{SINK}.monitor"  # a sink: its monitor
    with pytest.raises(DeviceError) as info:
        devices.resolve_device("USB Headset", "output")
    assert f"'{SINK}'" in str(info.value) and "\n" not in str(info.value)
    assert devices.refresh_if_idle()  # the server lists afresh: never waits for streams


def test_played_sound_reaches_the_monitor_and_capture_has_its_times(
    pulse_backend: PulseDaemon,
) -> None:
    tone = Tone()
    captured: list[tuple[np.ndarray, float, float, bool]] = []

    def mic(data: Any, frames: int, when: Any, status: Any) -> None:
        captured.append(
            (data[:, 0].copy(), when.inputBufferAdcTime, when.currentTime, status.input_overflow)
        )

    speaker, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=480)
    source, _ = devices.open_stream("input", SINK, mic, samplerate=RATE, blocksize=960)
    try:
        devices.start_stream(speaker)
        devices.start_stream(source)
        assert speaker.active and source.active
        assert devices.streams_open() >= 2
        heard = parec(pulse_backend, f"{SINK}.monitor", 1.5)
    finally:
        devices.close_stream(speaker)
        devices.close_stream(source)
    assert not speaker.active and speaker.closed
    # PulseAudio's own recorder hears our tone on the sink's monitor.
    tail = heard[len(heard) // 3 :]
    assert peak_hz(tail) == pytest.approx(440, abs=3)
    assert rms_dbfs(tail) > -40  # sound (0.3 of full scale, less a loaded machine's dropouts)
    # Each played block has a time it will be heard: after it was written, not long after.
    ahead = sorted(dac - now for now, dac, _ in tone.times)
    assert 0 <= ahead[len(ahead) // 2] <= 0.2
    # Our capture heard it too, in 20 ms blocks captured a little before they arrive,
    # whose capture times step by 20 ms: one timeline, moved only when the server's
    # timing leaves it by 30 ms (lost samples are flagged; a loaded machine may move
    # it once or twice).
    assert len(captured) >= 25
    recorded = np.concatenate([c[0] for c in captured[len(captured) // 3 :]])
    assert peak_hz(recorded) == pytest.approx(440, abs=3)
    age = sorted(now - adc for _, adc, now, _ in captured)
    assert 0 < age[len(age) // 2] <= 0.2
    moved = sum(
        1
        for (_, a, _, _), (_, b, _, lost) in itertools.pairwise(captured)
        if not lost and b - a != pytest.approx(0.020, abs=1e-6)
    )
    assert moved <= 2


def test_an_underrun_on_the_server_is_reported_to_the_next_block(
    pulse_backend: PulseDaemon,
) -> None:
    tone = Tone(stall_at=20)
    speaker, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=480)
    try:
        devices.start_stream(speaker)
        deadline = time.monotonic() + 10
        while not (after := flagged_after(tone, 20)) and time.monotonic() < deadline:
            time.sleep(0.05)  # 250 ms stuck with 30 ms buffered: the sink ran dry
    finally:
        devices.close_stream(speaker)
    assert speaker.underflows >= 1 and tone.underflowed.is_set()
    assert after, "the block after the stall was not flagged"
    now, dac, _ = tone.times[after[0]]
    assert dac >= now  # the block after the gap: its own (later) time, which the AEC reads


def test_the_speakers_times_come_from_the_servers_timing_report(
    pulse_backend: PulseDaemon,
) -> None:
    """Each block's DAC time is read from the server's own timing report (read index,
    timestamp, sink latency: ``pa_timing_info``, declared by prefix in pulse_lib), not
    libpulse's smoothed latency (after an underrun it left the timeline ~10 ms off:
    ``bench/pulse_timing.py``). A wrong struct layout reads nonsense here."""
    tone = Tone()
    speaker, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=480)
    try:
        devices.start_stream(speaker)
        deadline = time.monotonic() + 10
        while len(tone.times) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        with speaker._ctx.locked():
            now = time.monotonic()
            heard = speaker._heard_at(speaker._stream, now)
            info = speaker._held.pa_stream_get_timing_info(speaker._stream).contents
            written, read, playing = speaker._written, info.read_index, info.playing
    finally:
        devices.close_stream(speaker)
    assert playing and speaker._report_at is not None, "no timing report was used"
    assert 0 < read <= written  # bytes: the server has played some of what was written
    assert abs(speaker._report_at - now) < 5.0  # the report's time, on our clock
    assert now <= heard < now + 1.0


def test_a_guessed_gap_is_corrected_by_the_first_report_after_it(
    pulse_backend: PulseDaemon,
) -> None:
    """After an underrun the speaker restarts somewhere within the sink's latency, so the
    gap's length is a guess; the first report taken after the restart corrects it (a
    flagged block: the echo canceller's reference gets the missing silence, or trims
    what was too much), once, and a report from before the restart corrects nothing."""
    from hello_tui.media.pulse_streams import PulseStream

    speaker = PulseStream("output", SINK, lambda *a: None, blocksize=480)
    try:
        speaker._next_play = 100.0
        assert speaker._play_time(100.200, 99.9) == (100.200, True)  # ran dry: 200 ms late
        speaker._next_play = 100.230  # three blocks written from the guess
        speaker._report_at = 99.8  # taken before the restart: says nothing about it
        assert speaker._play_time(100.225, 99.91) == (100.230, False)
        speaker._report_at = 99.92  # the first report after it: 5 ms less gap
        assert speaker._play_time(100.225, 99.93) == (100.225, True)
        speaker._next_play = 100.235
        assert speaker._play_time(100.232, 99.94) == (100.235, False)  # once only
    finally:
        speaker.close()


def test_a_removed_sink_is_no_longer_there(pulse_backend: PulseDaemon) -> None:
    loaded = pulse_backend.pactl(
        "load-module", "module-null-sink", "sink_name=gone_spk", "rate=48000", "channels=1"
    )
    assert loaded.returncode == 0, loaded.stderr
    device = devices.resolve_device("gone_spk", "output")
    assert devices.still_there("output", device, RATE)
    pulse_backend.pactl("unload-module", loaded.stdout.strip())
    assert not devices.still_there("output", device, RATE)
    assert "gone_spk" not in {d.name for d in devices.list_devices("output")}


def test_the_backend_setting_and_its_override(monkeypatch: pytest.MonkeyPatch) -> None:
    from hello_tui.config.settings import AudioSettings

    assert AudioSettings().backend == "auto"  # the default (docs/media.md, session 9)
    monkeypatch.delenv(devices.BACKEND_ENV, raising=False)
    try:
        devices.set_backend("portaudio")
        assert devices.backend() == "portaudio"
        monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
        assert devices.backend() == "pulse"  # the environment wins
        with pytest.raises(ValueError, match="unknown audio backend"):
            devices.set_backend("jack")
    finally:
        devices.set_backend("auto")  # the default


def test_auto_falls_back_to_portaudio_without_a_server_or_libpulse(
    pulse: PulseDaemon, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``auto`` is pulse only while a server answers and libpulse loads."""
    from hello_tui.media import pulse_lib, pulse_streams

    monkeypatch.setenv(devices.BACKEND_ENV, "auto")
    assert devices.backend() == "pulse"  # the tests' daemon answers
    monkeypatch.delenv("PULSE_SERVER")
    monkeypatch.setenv("PULSE_RUNTIME_PATH", str(tmp_path))  # no socket there: no server
    assert devices.backend() == "portaudio"
    monkeypatch.setenv("PULSE_SERVER", pulse.env["PULSE_SERVER"])
    pulse_streams.reset()

    def missing() -> None:
        raise pulse_lib.PulseMissing("libpulse is not installed (test)")

    loader = pulse_lib.lib
    monkeypatch.setattr(pulse_lib, "lib", missing)
    assert devices.backend() == "portaudio"
    monkeypatch.setattr(pulse_lib, "lib", loader)
    pulse_streams.reset()
    assert devices.backend() == "pulse"


def test_a_device_call_on_pulse_never_loads_portaudio(pulse: PulseDaemon) -> None:
    """The memory the backend saves (~17 MiB: PortAudio and ALSA's plugins) is saved
    only if nothing on a device call's path imports sounddevice (warm-up included), with
    ``auto`` where a server answers."""
    code = """
import asyncio, sys
from hello_tui.media.warmup import warm_audio_stack
from hello_tui.media.sinks import open_audio_sink
from hello_tui.media.sources import open_audio_source

async def main():
    warm_audio_stack(processing=False)
    sink = open_audio_sink("device:", fallback=False)
    mic = open_audio_source("device:", fallback=False)
    await sink.start(open_audio_source("sine:440"))
    await mic.recv()
    mic.stop()
    await sink.stop()
    print(type(sink._stream).__name__, "sounddevice" in sys.modules)

asyncio.run(main())
"""
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **pulse.env, devices.BACKEND_ENV: "auto"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["PulseStream", "False"]


def test_a_larger_speaker_latency_is_granted_about_as_asked(pulse_backend: PulseDaemon) -> None:
    """The speaker's ladder after underruns (media/output_latency.py) asks seconds; the
    server must grant about that, as PortAudio does, not the ~0.6 of it that asking the
    same tlength gets with ADJUST_LATENCY ("low" asks 50 ms as it is, for ~35)."""
    granted = {}
    for latency in ("low", 0.080):
        speaker, _ = devices.open_stream(
            "output", SINK, Tone(), samplerate=RATE, blocksize=480, latency=latency
        )
        try:
            devices.start_stream(speaker)
            granted[latency] = speaker.latency
        finally:
            devices.close_stream(speaker)
    assert granted["low"] < 0.040  # 10 ms blocks as a call's speaker: 50 ms asked, 35 granted
    assert granted[0.080] >= 0.070, granted


def _mainloop_threads() -> int:
    """libpulse's mainloop threads alive in this process (they name themselves)."""
    count = 0
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/comm") as f:
                count += f.read().strip() == "threaded-ml"
        except OSError:  # the thread ended meanwhile
            pass
    return count


def _thread_states() -> int:
    """How many thread states the interpreter holds (its C list, dead threads' too)."""
    api = ctypes.pythonapi
    api.PyInterpreterState_Get.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.restype = ctypes.c_void_p
    api.PyInterpreterState_ThreadHead.argtypes = [ctypes.c_void_p]
    api.PyThreadState_Next.restype = ctypes.c_void_p
    api.PyThreadState_Next.argtypes = [ctypes.c_void_p]
    count, ts = 0, api.PyInterpreterState_ThreadHead(api.PyInterpreterState_Get())
    while ts:
        count, ts = count + 1, api.PyThreadState_Next(ts)
    return count


def test_a_closed_stream_gives_back_its_threads_kept_thread_state(
    pulse_backend: PulseDaemon,
) -> None:
    """A stream's libpulse thread keeps a Python thread state between callbacks (a
    fresh one per callback stalled the process); closing the stream frees it, so
    calls that come and go do not pile thread states up in the interpreter."""
    before = _thread_states()
    for _ in range(3):
        tone = Tone()
        out, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=480)
        heard: list[int] = []
        mic, _ = devices.open_stream("input", f"{SINK}.monitor", lambda *a, h=heard: h.append(1),
                                     samplerate=RATE, blocksize=480)  # fmt: skip
        out.start()
        mic.start()
        deadline = time.monotonic() + 10
        while (not tone.times or not heard) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert tone.times and heard  # both threads ran callbacks (and kept a state)
        assert _thread_states() >= before + 2
        out.close()
        mic.close()
    assert _thread_states() == before


def test_exit_stops_every_mainloop_thread_a_call_left_open(pulse_backend: PulseDaemon) -> None:
    """A libpulse thread still running when the interpreter finalizes calls into a
    freed thread state and crashes the process on its way out (seen: a segfault in
    ``threaded-ml`` inside _ctypes). The exit hook closes what was left open first:
    no mainloop thread survives it, and the streams say closed."""
    from hello_tui.media import pulse_streams

    before = _mainloop_threads()
    tone = Tone()
    out, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=480)
    mic, _ = devices.open_stream("input", f"{SINK}.monitor", lambda *a: None,
                                 samplerate=RATE, blocksize=480)  # fmt: skip
    out.start()
    mic.start()
    deadline = time.monotonic() + 10
    while not tone.times and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tone.times and _mainloop_threads() > before
    pulse_streams._stop_threads_at_exit()
    assert out.closed and mic.closed
    assert _mainloop_threads() == 0


DROPPED_STREAM = """
import gc, sys, time
from hello_tui.media import devices, pulse_streams

got = []
mic, _ = devices.open_stream("input", sys.argv[1], lambda *a: got.append(1),
                             samplerate=48000, blocksize=480)
mic.start()
deadline = time.monotonic() + 20
while len(got) < 5 and time.monotonic() < deadline:
    time.sleep(0.01)
seen = len(got)
del mic  # dropped without close(): only the module's registry still has it
gc.collect()
while len(got) < seen + 20 and time.monotonic() < deadline:
    time.sleep(0.01)  # libpulse goes on calling back: into a freed thunk, before
print(seen, len(got), pulse_streams.stale_callbacks)
"""


def test_a_stream_dropped_without_close_never_calls_through_a_freed_thunk(
    pulse_backend: PulseDaemon,
) -> None:
    """Each stream used to keep its own ctypes thunks, in a reference cycle with it:
    dropped unclosed, the cycle collector freed them while libpulse kept their
    addresses, and the next callback crashed the process (a test worker's SIGSEGV in
    ctypes' _CallPythonObject on a mainloop thread, session 10). The thunks are now
    the module's, and a registry keeps each stream until its close (here: at exit)."""
    proc = subprocess.run(
        [sys.executable, "-c", DROPPED_STREAM, f"{SINK}.monitor"],
        env={**os.environ, **pulse_backend.env, devices.BACKEND_ENV: "pulse"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen, total, stale = map(int, proc.stdout.split())
    assert seen >= 5 and total >= seen + 20  # the stream ran on after it was dropped
    assert stale == 0


def test_open_and_close_leave_no_key_and_no_stale_callback(pulse_backend: PulseDaemon) -> None:
    from hello_tui.media import pulse_streams

    devices.list_devices("output")  # the listing's context: made once, kept
    before, stale = len(pulse_streams._live), pulse_streams.stale_callbacks
    for _ in range(3):
        tone = Tone()
        out, _ = devices.open_stream("output", SINK, tone, samplerate=RATE, blocksize=480)
        mic, _ = devices.open_stream("input", f"{SINK}.monitor", lambda *a: None,
                                     samplerate=RATE, blocksize=480)  # fmt: skip
        out.start()
        mic.start()
        deadline = time.monotonic() + 10
        while len(tone.times) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert devices.list_devices("output")  # a listing: a request's key too
        out.close()
        mic.close()
    assert len(tone.times) >= 3
    assert len(pulse_streams._live) == before
    assert pulse_streams.stale_callbacks == stale
