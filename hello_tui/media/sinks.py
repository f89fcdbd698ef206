"""Audio sinks behind ``null:``, ``file:PATH.wav`` and ``device:[NAME]``.

``await sink.start(track)`` spawns a task that reads the (remote) track until
it ends or ``await sink.stop()``. Frames of any format are conformed to mono
s16 48 kHz first (aiortc's Opus decoder emits stereo). ``stats()`` gives the
numbers the quality panel shows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hello_tui.media.audio_format import SAMPLE_RATE, Conformer, Samples, make_frame
from hello_tui.media.devices import (
    AudioDevice,
    FallbackNotice,
    close_stream,
    device_or_null,
    open_stream,
    start_stream,
)
from hello_tui.media.endpoint import parse_endpoint
from hello_tui.media.errors import MediaError
from hello_tui.media.levels import dbfs_to_level, rms_dbfs
from hello_tui.media.playout import PlayoutBuffer, PlayoutConfig

if TYPE_CHECKING:  # (the shim loads on first use, not at import)
    from hello_tui.media.playout_native import NativePlayout, NativeSpeaker

log = logging.getLogger(__name__)

# The card's own buffer ahead of the callback: PortAudio's "low" at first (about 20 ms on
# ALSA). On a loaded machine that underruns (each underrun a click, and a jump of the echo
# path under the canceller): the device watch then reopens the speaker at a larger latency
# (media/output_latency.py, docs/media.md "Devices that change").
SPEAKER_LATENCY: str | float = "low"
SPEAKER_BLOCK = SAMPLE_RATE // 100  # the callback's pull: 10 ms

# The speaker's playout buffer follows the network's jitter (docs/media.md, "Playout buffer"),
# with no extra depth per underrun: side by side on a quiet machine the boost (20 ms per
# underrun, halving over 20 s) kept 30-70 ms buffered on a 1 ms-jitter link for the one or
# two underruns of a call's start, for 13-17 ms more mouth-to-ear and no fewer dropouts
# (docs/benchmarks.md, "On a quiet machine, session 5").
# After an underrun it plays again from the first frame back instead of refilling the target,
# and a depth above the target is spliced out (accelerate) rather than drained at 0.5 %:
# replayed on the arrivals of 74 loaded calls' speakers, 18 ms in the buffer against 37
# (medians) for about the same silence (docs/benchmarks.md, "Mouth-to-ear: where each
# millisecond goes").
DEVICE_PLAYOUT = PlayoutConfig(
    adaptive=True, underrun_boost_ms=0.0, accelerate_ms=5.0, underrun_refill_ms=20.0
)
# A speaker written from C, fed by a sender in C: the arrivals' jitter that the margin
# covered was mostly the Python sender's callback -> loop hop and the Python write
# callback's waits for the GIL. 2 ms instead of 5: mouth-to-ear 65.5 against 68.1 ms, no
# dropouts either way (quiet A/B, 8 calls; docs/media.md, "All three in C, the default").
# The jitter term still grows the target when arrivals spread.
# Its floor 15 ms instead of 20 (one 20 ms frame, when all packets were 20 ms): with 10 ms
# packets (the default ptime since session 12) the sawtooth term is 10 ms, and a quiet call's
# target sat on the 20 ms floor. Side by side, 8 calls, 10 ms packets against 20: quiet at
# a 10 ms floor 52.8 against 65.5 ms, no dropouts; under load 3.5-4 the 10 ms floor had
# dropouts (68 ms a call, median) where 20 ms packets had 2; at 15, under load 4-6.5, 55.2
# against 66.2 ms and no dropouts in either arm (docs/media.md, "10 ms packets, the default").
NATIVE_DEVICE_PLAYOUT = dataclasses.replace(DEVICE_PLAYOUT, margin_ms=2.0, min_target_ms=15.0)
# The adaptive target's floor (min_target_ms, 20 ms: one 20 ms frame, what the packets
# were when it was set) for an A/B: with 10 ms packets the sawtooth term is 10 ms, not
# 15, and a quiet call's target sits on the floor (docs/media.md, "10 ms packets").
FLOOR_KNOB = "HELLO_TUI_PLAYOUT_FLOOR_MS"


def _floored(config: PlayoutConfig) -> PlayoutConfig:
    """``config`` with ``HELLO_TUI_PLAYOUT_FLOOR_MS`` (5 up to its ceiling) as its floor."""
    value = os.environ.get(FLOOR_KNOB)
    if not value:
        return config
    try:
        ms = float(value)
    except ValueError:
        ms = math.nan
    if not 5 <= ms <= config.max_target_ms:
        log.warning("%s=%.20r ignored: 5 to %g ms", FLOOR_KNOB, value, config.max_target_ms)
        return config
    return dataclasses.replace(config, min_target_ms=ms)


def _native_speaker(config: PlayoutConfig) -> NativeSpeaker | None:
    """The C path for a speaker, when the shim has it and the knob asks for it
    (media/playout_native.py; HELLO_TUI_NATIVE_SPEAKER=0: Python)."""
    from hello_tui.media import playout_native

    if not playout_native.available():
        return None
    return playout_native.NativeSpeaker(config)


@dataclass(frozen=True, slots=True)
class SinkStats:
    """What a sink has done so far. Buffer fields stay 0 for sinks without one."""

    frames: int
    samples: int
    level_dbfs: float  # what was last played (device) or received (null/file)
    level: float  # the same on WebRTC's 0..1 audioLevel scale
    buffer_ms: float = 0.0
    underruns: int = 0
    drops: int = 0  # samples dropped because the buffer overflowed
    samples_removed: int = 0  # drift correction: squeezed out
    samples_inserted: int = 0  # drift correction: stretched in
    card_underruns: int = 0  # the sound card ran dry (PortAudio's output underflow)
    latency_ms: float = 0.0  # the card's buffer ahead of the callback (adaptive)
    target_ms: float = 0.0  # the playout buffer's depth aimed at (adaptive)


class AudioSink:
    """Consumes an audio track; subclasses say what happens to the samples."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.notice: FallbackNotice | None = None
        self.frames = 0
        self.samples = 0
        self._last: Samples = np.zeros(0, dtype=np.int16)
        self.done = asyncio.Event()  # set when the track ended or the sink stopped
        self._task: asyncio.Task[None] | None = None
        self._conformer = Conformer()
        self._closed = False

    async def start(self, track: MediaStreamTrack) -> None:
        """Begin consuming ``track`` in a background task."""
        if self._task is not None:
            raise MediaError(f"{self.spec}: sink already started")
        self.track: MediaStreamTrack | None = track  # (the receive path in C looks it up)
        self._task = asyncio.get_running_loop().create_task(self._run(track))

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if not isinstance(frame, av.AudioFrame):  # an audio track sends audio
                    continue
                samples = self._conformer.convert(frame)
                self.frames += 1
                self.samples += len(samples)
                self._last = samples
                self._consume(samples)
        except MediaStreamError:
            pass
        finally:
            self.done.set()

    def _consume(self, samples: Samples) -> None:
        """Do something with one frame's worth of conformed samples."""

    async def stop(self) -> None:
        """Stop consuming and release the file/device (idempotent)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self._closed:
            self._closed = True
            self._close()
        self.done.set()

    def _close(self) -> None:
        """Release resources (called once)."""

    @property
    def level_dbfs(self) -> float:
        """RMS level of the last frame received (computed when asked, not per frame)."""
        return rms_dbfs(self._last)

    def stats(self) -> SinkStats:
        level = self.level_dbfs
        return SinkStats(self.frames, self.samples, level, dbfs_to_level(level))


class NullSink(AudioSink):
    """Discards audio (``null:``) but counts it — the headless answering peer's sink."""


class FileSink(AudioSink):
    """Records to a WAV file (``file:PATH``), 48 kHz mono s16; valid once stopped.

    Samples are written as received, one after another (no gap filling), so
    the file's duration is the audio the peer sent.
    """

    def __init__(self, spec: str, path: str) -> None:
        super().__init__(spec)
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise MediaError(f"file:{path}: directory {parent} does not exist")
        try:
            self._container: Any = av.open(path, mode="w", format="wav")
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"file:{path}: cannot write ({exc})") from None
        self._stream: Any = self._container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")

    def _consume(self, samples: Samples) -> None:
        frame = make_frame(samples, self.samples - len(samples))
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def _close(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()  # writes the trailer: RIFF sizes become correct


class DeviceSink(AudioSink):
    """Plays through a sound card (``device:[NAME]``) from a :class:`PlayoutBuffer`.

    The event loop pushes received samples; PortAudio's callback pulls
    ``blocksize`` samples every 10 ms, drift-corrected, silence on underrun.
    ``far_end``, when set, is given each block as it goes to the card (from the
    callback's thread), the time it will be heard (PortAudio's DAC time) and
    whether the card ran dry before it:
    the echo canceller's reference, at the playout's timing.

    :meth:`switch` moves playout to another device (or reopens this one at
    another ``latency``) mid-call: a new stream pulls from the same buffer;
    only the stream of the current generation plays, the old one gets silence.

    On the pulse backend (unless ``HELLO_TUI_NATIVE_SPEAKER=0``) all of the per-block work
    (the write callback, the buffer, the far-end feed to the C processing stage) runs
    in C (media/playout_native.py); :attr:`buffer` is then the C buffer, and the
    counters below are read from C when asked.
    """

    def __init__(
        self,
        spec: str,
        name: str,
        config: PlayoutConfig | None = None,
        blocksize: int | None = None,
    ) -> None:
        super().__init__(spec)
        # The pulse speaker with its blocks in C (media/playout_native.py); None: Python.
        self._native = _native_speaker(config or _floored(NATIVE_DEVICE_PLAYOUT))
        self.buffer: PlayoutBuffer | NativePlayout = PlayoutBuffer(
            config or _floored(DEVICE_PLAYOUT)
        )
        self._card_underflows = 0
        self._far_end: Callable[[Samples, float, bool], None] | None = None
        # Devices that change (switch), and the card's underruns the latency policy reads.
        self.name = name
        self.latency: str | float = SPEAKER_LATENCY
        self.blocksize = SPEAKER_BLOCK if blocksize is None else blocksize
        self.switches = 0
        self._switch_gap_ms: float | None = None  # the last switch: old stream's end → new's start
        self._underflow_times: collections.deque[float] = collections.deque(maxlen=64)
        self._last_block = 0.0  # time.monotonic() of the last callback (the device watch)
        self._generation = 0
        self._fresh = False
        self._end_dac: float | None = None  # when what the current stream was given ends
        self._switched_from: float | None = None
        self._play_lock = threading.Lock()
        self._stream, self.device = open_stream(
            "output", name, self._callback_for(0), samplerate=SAMPLE_RATE,
            blocksize=self.blocksize, latency=self.latency,
        )  # fmt: skip
        if not getattr(self._stream, "native", False):  # PortAudio: the blocks come from Python
            self._native = None
        if self._native is not None:
            self.buffer = self._native.playout
        self._running = False
        self._start_lock = threading.Lock()

    @property
    def far_end(self) -> Callable[[Samples, float, bool], None] | None:
        """Given each block as it goes to the card (see the class's doc)."""
        return self._far_end

    @far_end.setter
    def far_end(self, far_end: Callable[[Samples, float, bool], None] | None) -> None:
        self._far_end = far_end
        if self._native is not None:  # C feeds the C processing stage's pairing directly
            from hello_tui.media.capture_native import NativeProcessor

            processor = getattr(far_end, "__self__", None)
            if far_end is not None and not isinstance(processor, NativeProcessor):
                log.warning("speaker path in C: a Python far end, not fed")
                processor = None
            self._native.set_pairing(processor)

    @property
    def card_underflows(self) -> int:
        """The card ran dry before this many blocks (the latency policy reads it)."""
        if self._native is not None:
            return self._native.counters()[1]
        return self._card_underflows

    @property
    def underflow_times(self) -> collections.deque[float]:
        """time.monotonic() of the card's last underruns (at most 64)."""
        if self._native is not None:
            return collections.deque(self._native.counters()[4], maxlen=64)
        return self._underflow_times

    @property
    def last_block(self) -> float:
        """time.monotonic() of the last callback (the device watch)."""
        if self._native is not None:
            return self._native.counters()[0]
        return self._last_block

    @property
    def switch_gap_ms(self) -> float | None:
        """The last switch: the old stream's end to the new one's start."""
        if self._native is not None:
            gap = self._native.counters()[2]
            return None if gap is None else round(gap, 1)
        return self._switch_gap_ms

    def warm(self) -> None:
        """Start the card now (any thread; blocking): it plays silence until the
        first frames arrive, and ``start()`` no longer waits for it. Idempotent."""
        with self._start_lock:
            if not self._running and not self._closed:
                start_stream(self._stream)
                self._running = True

    def _callback_for(self, generation: int) -> Callable[..., None]:
        def callback(outdata: npt.NDArray[np.int16], frames: int, when: Any, status: Any) -> None:
            with self._play_lock:  # a replaced stream's last callback may still be running
                if generation == self._generation:
                    self._callback(outdata, frames, when, status)
                    return
            outdata.fill(0)

        if self._native is not None:  # a pulse stream calls C instead (PortAudio: this)
            callback.native_playback = (self._native, generation)  # type: ignore[attr-defined]
        return callback

    def _callback(
        self, outdata: npt.NDArray[np.int16], frames: int, when: Any, status: Any
    ) -> None:
        self._last_block = time.monotonic()
        if status.output_underflow:
            self._card_underflows += 1
            self._underflow_times.append(self._last_block)
        played = when.outputBufferDacTime or when.currentTime + self._stream.latency
        fresh = self._fresh
        if fresh:
            self._fresh = False
            if self._switched_from is not None:
                self._switch_gap_ms = round(max(0.0, played - self._switched_from) * 1000, 1)
        self._end_dac = played + frames / SAMPLE_RATE
        block = self.buffer.pull(frames)
        outdata[:, 0] = block
        far_end = self.far_end
        if far_end is not None:  # a host API without timing reports 0: estimated above
            far_end(block, played, bool(status.output_underflow) or fresh)

    async def start(self, track: MediaStreamTrack) -> None:
        await super().start(track)
        self.warm()
        if self._native is not None:
            from hello_tui.media import native_recv

            native_recv.consume(self)

    def native_playout(self) -> NativePlayout | None:
        """The C playout buffer the receive path in C may push decoded frames into:
        while the sink plays a pulse stream from C (a switch to a PortAudio stream, a
        stop: None, and the receive path hands the stream back to the loop)."""
        if self._native is None or self._closed or not getattr(self._stream, "native", False):
            return None
        playout = self._native.playout
        return playout if playout is self.buffer else None

    def native_received(self, frames: int, samples: int) -> None:
        """What the receive path in C played for this sink (its counters stay true, and
        the track's: the call's media watch reads the frames received there)."""
        self.frames += frames
        self.samples += samples
        counted = getattr(self.track, "native_frames", None)
        if counted is not None:
            counted(frames)

    @property
    def started(self) -> bool:
        return self._running

    @property
    def stream(self) -> Any:
        """The card's stream now (PortAudio's or the pulse backend's; a switch replaces it)."""
        return self._stream

    @property
    def stream_active(self) -> bool:
        """PortAudio still runs the stream (False after a device error stopped it)."""
        return bool(self._stream.active)

    def switch(self, name: str, latency: str | float | None = None) -> AudioDevice:
        """Play on ``device:NAME`` (at ``latency``: seconds, or PortAudio's "low"/"high";
        unchanged when None) from now on, from the same playout buffer.

        The new stream starts before the old one is dropped; its first block
        tells the echo canceller to re-pair (as after an underrun). Blocking
        (PortAudio): call it in a thread. Raises DeviceError / AudioUnavailable,
        and the old stream keeps playing then."""
        latency = self.latency if latency is None else latency
        generation = self._generation + 1
        stream, device = open_stream(
            "output", name, self._callback_for(generation), samplerate=SAMPLE_RATE,
            blocksize=self.blocksize, latency=latency,
        )  # fmt: skip
        running = self._running
        try:
            if running:
                start_stream(stream)
        except Exception:
            close_stream(stream, started=False)
            raise
        with self._play_lock:
            if self._closed:  # stopped meanwhile: keep nothing open
                old = stream
            else:
                old, self._stream = self._stream, stream
                self._generation = generation
                self._fresh = True
                self._switched_from = self._end_dac
                if self._native is not None:  # (C keeps its own end, as _end_dac)
                    self._native.set_generation(generation, fresh=True)
                self.name, self.device, self.latency = name, device, latency
                self.switches += 1
        close_stream(old, started=running)
        return device

    def _consume(self, samples: Samples) -> None:
        self.buffer.push(samples)

    def _close(self) -> None:
        with self._start_lock:
            with self._play_lock:
                self._generation = -1
                if self._native is not None:
                    self._native.set_generation(-1, fresh=False)
            close_stream(self._stream, started=self._running)

    def stats(self) -> SinkStats:
        b = self.buffer.stats()
        return SinkStats(
            frames=self.frames,
            samples=self.samples,
            level_dbfs=b.output_dbfs,
            level=dbfs_to_level(b.output_dbfs),
            buffer_ms=b.depth_ms,
            underruns=b.underruns,
            drops=b.overflow_drops,
            samples_removed=b.samples_removed,
            samples_inserted=b.samples_inserted,
            card_underruns=self.card_underflows,
            latency_ms=round(self._stream.latency * 1000, 1),
            target_ms=round(b.target_ms, 1),
        )


def open_audio_sink(
    spec: str, *, fallback: bool = True, playout: PlayoutConfig | None = None
) -> AudioSink:
    """The sink for an audio-sink endpoint string.

    With ``fallback``, an unusable ``device:`` becomes ``null:`` and the
    sink's ``notice`` says why; a ``device:NAME`` matching no existing device
    raises DeviceError; an unwritable file raises MediaError.
    """
    endpoint = parse_endpoint(spec, "audio-sink")
    if endpoint.kind == "file":
        return FileSink(spec, endpoint.arg)
    if endpoint.kind == "device":
        return device_or_null(
            "audio-sink",
            spec,
            lambda: DeviceSink(spec, endpoint.arg, playout),
            NullSink,
            fallback=fallback,
        )
    return NullSink(spec)


__all__ = [
    "AudioSink",
    "DeviceSink",
    "FileSink",
    "NullSink",
    "SinkStats",
    "open_audio_sink",
]
