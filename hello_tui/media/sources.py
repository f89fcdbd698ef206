"""Audio sources: aiortc tracks behind ``sine:HZ``, ``null:``, ``file:PATH``, ``device:[NAME]``.

All produce 20 ms mono s16 48 kHz frames (see :mod:`audio_format`). Two
clocks pace them:

* generated sources (sine, null, file) are paced by ``time.monotonic``: frame
  *n* is released at ``t0 + n × 20 ms`` with ``t0`` taken at the first
  ``recv()``, so sleep overshoot never accumulates into drift. After a stall
  of more than 100 ms (a blocked event loop) the source skips ahead — ``pts``
  jumps by the lost time — instead of bursting stale frames.
* the device source is paced by the sound card: PortAudio's callback pushes
  each 20 ms block into a bounded queue and ``recv()`` just awaits it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hello_tui.media.audio_format import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    Conformer,
    Rechunker,
    Samples,
    make_frame,
    silence,
)
from hello_tui.media.audio_processing import CaptureProcessor
from hello_tui.media.devices import (
    AudioDevice,
    FallbackNotice,
    close_stream,
    device_or_null,
    open_stream,
    start_stream,
)
from hello_tui.media.eager import EagerQueue, frame_queue
from hello_tui.media.endpoint import parse_endpoint
from hello_tui.media.errors import MediaError
from hello_tui.media.levels import rms_dbfs

if TYPE_CHECKING:
    from hello_tui.media.capture_native import NativeCapture, NativeProcessor

log = logging.getLogger(__name__)

STALL_TIMEOUT = 0.200  # no block from the card for this long: send silence meanwhile
MAX_LATE = 0.100  # seconds behind schedule before a paced source skips ahead
SINE_AMPLITUDE = 0.25  # of full scale: about -15 dBFS RMS, loud but far from clipping
# The microphone's stream: 10 ms blocks at a 10 ms latency (the frames sent are still 20 ms,
# rechunked in the callback's thread). Against 20 ms blocks at PortAudio's "low", side by
# side at load 2-3: 89.2 ms mouth-to-ear against 94.7 (medians of 16 directions), far-end
# dropouts 5 against 15 ms per call, CPU +0.4 points (docs/media.md "Where mouth-to-ear goes").
MIC_LATENCY: str | float = 0.010
# HELLO_TUI_MIC_BLOCK=960: 20 ms reads, for measuring (on pulse ~1 point less CPU in the
# capture thread; mouth-to-ear and ERLE not measured on a quiet machine yet: docs/media.md,
# "The device path per thread").
MIC_BLOCK = int(os.environ.get("HELLO_TUI_MIC_BLOCK") or FRAME_SAMPLES // 2)


class AudioSource(MediaStreamTrack):
    """An audio track for ``RTCPeerConnection.addTrack``; ``notice`` is set after a fallback."""

    kind = "audio"

    def __init__(self, spec: str) -> None:
        super().__init__()
        self.spec = spec
        self.notice: FallbackNotice | None = None
        self.frames_sent = 0

    def _check_live(self) -> None:
        if self.readyState != "live":
            raise MediaStreamError


class PacedSource(AudioSource):
    """A source whose samples are computed on demand, released on a monotonic schedule."""

    def __init__(self, spec: str) -> None:
        super().__init__(spec)
        self._t0: float | None = None
        self._next_pts = 0
        self.frames_skipped = 0

    async def recv(self) -> av.AudioFrame:
        self._check_live()
        now = time.monotonic()
        if self._t0 is None:
            self._t0 = now
        pts = self._next_pts
        due = self._t0 + pts / SAMPLE_RATE
        if due > now:
            await asyncio.sleep(due - now)
            self._check_live()
        elif now - due > MAX_LATE:
            behind = int((now - due) / FRAME_SECONDS)
            pts += behind * FRAME_SAMPLES
            self.frames_skipped += behind
        self._next_pts = pts + FRAME_SAMPLES
        self.frames_sent += 1
        return make_frame(self._samples(pts), pts)

    def _samples(self, pts: int) -> Samples:
        raise NotImplementedError


class NullSource(PacedSource):
    """Paced digital silence (``null:``), and what a failed device falls back to."""

    def _samples(self, pts: int) -> Samples:
        return silence()


class SineSource(PacedSource):
    """A continuous-phase tone (``sine:HZ``): the phase is a function of ``pts``, never reset."""

    def __init__(self, spec: str, hz: float, amplitude: float = SINE_AMPLITUDE) -> None:
        super().__init__(spec)
        self.hz = hz
        self._scale = amplitude * 32767
        self._step = 2 * math.pi * hz / SAMPLE_RATE * np.arange(FRAME_SAMPLES)

    def _samples(self, pts: int) -> Samples:
        cycles = (self.hz * pts / SAMPLE_RATE) % 1.0  # stays exact for hours of pts
        # numpy types a ufunc's result as Any: the annotation says what np.sin returns here.
        wave: npt.NDArray[np.float64] = np.sin(2 * math.pi * cycles + self._step)
        return (wave * self._scale).astype(np.int16)


class FileSource(PacedSource):
    """Plays a media file (``file:PATH``, anything av decodes) in real time, once.

    The file is opened (and validated) at construction, but playback starts at
    the first ``recv()`` — when the call connects. After the last sample it
    sends silence and sets :attr:`ended` (an ``asyncio.Event``; :attr:`finished`
    is the same as a bool) so a scripted call knows it can hang up.
    """

    def __init__(self, spec: str, path: str) -> None:
        super().__init__(spec)
        self.path = path
        if not os.path.isfile(path):
            raise MediaError(f"file:{path}: no such file")
        try:
            self._container = av.open(path)
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"file:{path}: cannot read it as audio ({exc})") from None
        if not self._container.streams.audio:
            self._container.close()
            raise MediaError(f"file:{path}: has no audio stream")
        stream = self._container.streams.audio[0]
        duration, time_base = stream.duration, stream.time_base
        self.duration: float | None = (
            float(duration * time_base) if duration is not None and time_base is not None else None
        )
        self.ended = asyncio.Event()
        # A generator: nothing is decoded before the first recv() asks for samples.
        self._decoded = self._container.decode(audio=0)
        self._conformer = Conformer()
        self._pending = Rechunker()
        self._eof = False

    @property
    def finished(self) -> bool:
        return self.ended.is_set()

    def _samples(self, pts: int) -> Samples:
        while len(self._pending) < FRAME_SAMPLES and not self._eof:
            try:
                frame = next(self._decoded)
            except (StopIteration, av.FFmpegError):  # a corrupt tail ends the file too
                self._pending.push(self._conformer.flush())
                self._eof = True
                self._container.close()
            else:
                self._pending.push(self._conformer.convert(frame))
        chunk = self._pending.pop(pad=self._eof)
        if chunk is None:
            self.ended.set()  # the last real sample went out with the previous frame
            return silence()
        return chunk

    def stop(self) -> None:
        super().stop()
        if not self._eof:
            self._eof = True
            self._container.close()


VOICE_PROBABILITY = 0.5  # the processor's speech probability that counts as talking
VOICE_DBFS = -40.0  # without a processor: a block this loud counts as talking


TAKE_FRAMES = 4  # capture_native.TAKE (not imported at start: the shim loads on first use)


def _native_capture() -> NativeCapture | None:
    """The C path for a microphone, when the shim has it (media/capture_native.py)."""
    from hello_tui.media import capture_native

    if not capture_native.read_path():  # (HELLO_TUI_NATIVE_CAPTURE=stage or 0: Python)
        return None
    return capture_native.NativeCapture(VOICE_PROBABILITY, VOICE_DBFS)


def _cancels_echo(processor: CaptureProcessor | NativeProcessor | None) -> bool:
    return processor is not None and processor.echo_cancellation


def _is_voice(block: Samples, processor: CaptureProcessor | NativeProcessor | None) -> bool:
    """The processor's voice detector when there is one, else a simple energy gate."""
    if processor is not None:
        return processor.speech_probability >= VOICE_PROBABILITY
    return len(block) > 0 and rms_dbfs(block) >= VOICE_DBFS


# What the capture hand-off queues: (samples, pts), None when the source stops.
_FrameQueue = EagerQueue[tuple[Samples, int] | None] | asyncio.Queue[tuple[Samples, int] | None]


class DeviceSource(AudioSource):
    """Microphone (``device:[NAME]``), paced by the sound card's clock.

    PortAudio's callback thread hands each block to the event loop with
    ``call_soon_threadsafe``; the loop keeps at most ``queue_frames`` of them
    (dropping the oldest, counted in :attr:`dropped`) so a slow consumer costs
    bounded latency, never unbounded memory. ``recv()`` awaits the queue: no
    sleeps, no second clock. The stream opens at construction (so a broken
    device is found before the call) and starts at the first ``recv()``.
    If the card stops delivering (device unplugged, sound server gone) for
    ``STALL_TIMEOUT``, ``recv()`` returns silence every 20 ms instead of
    hanging the sender, counting :attr:`stalls`, until blocks flow again.

    ``processor`` (set before the call starts): the audio processing stage
    (echo cancellation, ...) run on each block in the callback's thread.

    :meth:`switch` moves the track to another device mid-call: a new stream
    feeds the same queue (pts, processor and sender unchanged); only the
    stream of the current ``generation`` is heard.
    """

    def __init__(self, spec: str, name: str, queue_frames: int = 5) -> None:
        super().__init__(spec)
        self.queue_frames = queue_frames
        self.dropped = 0
        self.overflows = 0
        self.stalls = 0
        self._stalled = False
        self._captured = 0
        self._native_samples = 0  # sent by C, not yet a whole 20 ms frame (native_sent)
        # Not ``_loop``: the track's base (pyee's emitter) owns that name.
        self._main_loop: asyncio.AbstractEventLoop | None = None
        self._queue: _FrameQueue | None = None
        self._chunks = Rechunker()
        # The pulse backend's microphone with its blocks in C (media/capture_native.py):
        # frames come through an eventfd, one loop wake-up each; None: the Python path.
        self._native = _native_capture()
        self._in_flight = 0  # frames _on_frames took from C and has still to queue
        self._processor: CaptureProcessor | NativeProcessor | None = None
        self._start_lock = threading.Lock()
        self._started = False
        # Devices that change (switch): which stream is heard, when it last delivered.
        self.name = name
        self.switches = 0
        self.switch_gap_ms: float | None = None  # the last switch's gap in what was captured
        self.last_block = 0.0  # time.monotonic() of the last block (the device watch)
        self._generation = 0
        self._fresh = False  # the first block of a new stream: the processor re-pairs
        self._end_adc: float | None = None  # capture time just past the last block
        self._switched_from: float | None = None
        self._capture_lock = threading.Lock()
        # The last block captured before anyone listened: (samples, capture time, re-pair).
        self._early: tuple[Samples, float, bool] | None = None
        # Voice while muted (the "you are muted" hint): counted only while ``listening``.
        self._voice = False
        self.voice_blocks = 0
        self._stream, self.device = open_stream(
            "input", name, self._callback_for(0), samplerate=SAMPLE_RATE, blocksize=MIC_BLOCK,
            latency=MIC_LATENCY,
        )  # fmt: skip
        if not getattr(self._stream, "native", False):  # PortAudio: the blocks come to Python
            self._native = None

    @property
    def processor(self) -> CaptureProcessor | NativeProcessor | None:
        """The audio processing stage run on each block (set before the call starts)."""
        return self._processor

    @processor.setter
    def processor(self, processor: CaptureProcessor | NativeProcessor | None) -> None:
        self._processor = processor
        if self._native is not None:
            from hello_tui.media.capture_native import NativeProcessor

            if processor is not None and not isinstance(processor, NativeProcessor):
                log.warning("capture path in C: a Python processor, left unprocessed")
                processor = None
            self._native.set_processor(processor)

    @property
    def listening(self) -> bool:
        """Voice while muted is counted (the "you are muted" hint) while this is set."""
        return self._voice

    @listening.setter
    def listening(self, on: bool) -> None:
        self._voice = on
        if self._native is not None:
            self._native.set_voice(on)

    def warm(self) -> None:
        """Start the card now (any thread; blocking): blocks are dropped until the
        first ``recv()``, which then gets the next one within a block's time
        instead of waiting for the stream to start. Idempotent."""
        with self._start_lock:
            if not self._started:
                start_stream(self._stream)
                self._started = True

    def _callback_for(self, generation: int) -> Callable[..., None]:
        def callback(indata: npt.NDArray[np.int16], frames: int, when: Any, status: Any) -> None:
            with self._capture_lock:  # a replaced stream's last callback may still be running
                if generation == self._generation:
                    self._callback(indata, frames, when, status)

        if self._native is not None:  # a pulse stream calls C instead (PortAudio: this)
            callback.native_capture = (self._native, generation)  # type: ignore[attr-defined]
        return callback

    # The send path in C (aiortc_adapter's _NativeSender): while it sends, the frames
    # never come to the loop; these are what it asks and tells.
    def native_source(self, stop: Callable[[], None]) -> DeviceSource | None:
        """This microphone when its frames are C's (the read callback in C, listening)."""
        if self._native is None or self._queue is None or self.readyState != "live":
            return None
        return self

    @property
    def native_capture(self) -> NativeCapture | None:
        return self._native

    def native_idle(self) -> bool:
        """No frame waits for the loop (C's own queue is checked as it attaches), nor is
        on its way there (an eager queue runs the sender inside _on_frames: the frames
        it took from C after the one being read are not queued yet)."""
        return not self._in_flight and (self._queue is None or self._queue.empty())

    def native_sent(self, samples: int) -> None:
        """C sent ``samples`` of ours (in 20 or 10 ms packets): the counters and pts go on
        as if read here, ``frames_sent`` in 20 ms frames (0: only the capture's counters,
        read again)."""
        self._captured += samples
        self._native_samples += samples
        self.frames_sent += self._native_samples // FRAME_SAMPLES
        self._native_samples %= FRAME_SAMPLES
        if self._native is not None:
            self.last_block, self.overflows, gap, self.voice_blocks, _ = self._native.counters()
            if gap is not None:
                self.switch_gap_ms = round(gap, 1)

    def _on_frames(self) -> None:
        """The C path's eventfd is readable (the event loop): its frames, in order."""
        native = self._native
        if native is None:
            return
        native.drain_wake()
        try:
            while True:
                frames, counters = native.take()
                for i, frame in enumerate(frames):
                    self._in_flight = len(frames) - i - 1
                    self._push(frame)
                if len(frames) < TAKE_FRAMES:
                    break
        finally:
            self._in_flight = 0
        self.last_block, self.overflows, gap, self.voice_blocks, _ = counters
        if gap is not None:
            self.switch_gap_ms = round(gap, 1)

    def _callback(self, indata: npt.NDArray[np.int16], frames: int, when: Any, status: Any) -> None:
        self.last_block = time.monotonic()
        fresh = self._fresh
        if fresh:
            self._fresh = False
            if self._switched_from is not None and when.inputBufferAdcTime:
                gap = when.inputBufferAdcTime - self._switched_from
                self.switch_gap_ms = round(max(0.0, gap) * 1000, 1)
        if when.inputBufferAdcTime:
            self._end_adc = when.inputBufferAdcTime + frames / SAMPLE_RATE
        if status.input_overflow:
            self.overflows += 1
        # A host API without timing reports 0: estimate it.
        captured = when.inputBufferAdcTime or when.currentTime - self._stream.latency
        block = (indata[:, 0].copy(), captured, bool(status.input_overflow) or fresh)
        loop = self._main_loop
        if loop is None:  # nobody listens yet: only the last block short of a frame is kept
            self._early = block if frames < FRAME_SAMPLES else None
            return
        early, self._early = self._early, None
        processor = self.processor
        if early is not None and not len(self._chunks) and not _cancels_echo(processor):
            # The block captured just before the call's media connected starts the first
            # frame, so that frame is whole at the first block after it (0-10 ms after the
            # connect, not 10-20): on the blocks' own cadence, nothing queued behind it.
            # Unprocessed: a processing stage starts at the next block, as without it.
            # Not with echo cancellation: alternated runs of bench/aec.py had ERLE fall
            # from ~45 to ~22 dB with it, processed or not, for a cause not found yet
            # (docs/media.md, "Where setup time goes (session 8)").
            self._chunks.push(early[0])
        self._take(*block)
        # Whole 20 ms frames only cross to the loop: a block shorter than a frame (MIC_BLOCK)
        # costs no loop wake-up of its own. (Only the current generation's callback gets here.)
        while (chunk := self._chunks.pop()) is not None:
            with contextlib.suppress(RuntimeError):  # loop closed under us: the call is over
                loop.call_soon_threadsafe(self._push, chunk)

    def _take(self, block: Samples, captured: float, repair: bool) -> None:
        """Process one captured block (the callback's thread) into the frame rechunker."""
        processor = self.processor
        if processor is not None:
            block = processor.process(block, captured, repair)
        if self.listening and _is_voice(block, processor):
            self.voice_blocks += 1
        self._chunks.push(block)

    def _push(self, chunk: Samples) -> None:
        queue = self._queue
        if queue is None:
            return
        pts = self._captured
        self._captured += FRAME_SAMPLES  # dropped frames still advance pts: a real gap
        if queue.full():
            queue.get_nowait()
            self.dropped += 1
        queue.put_nowait((chunk, pts))

    def listen(self) -> None:
        """Keep the card's blocks from now on (in the event loop; the stream is
        started if it was not): a call calls it when its media connects, so a
        block that comes before the sender's first ``recv()`` (the loop busy
        with the connection's own steps) is sent, not dropped. Idempotent."""
        self._listening()

    def _listening(self) -> _FrameQueue:
        if self._queue is None:
            self._main_loop = loop = asyncio.get_running_loop()
            # Eager: the block's call_soon_threadsafe callback (_push) runs the sender's
            # task (encode, packetise, send) in the same loop iteration (media/eager.py).
            self._queue = frame_queue(maxsize=self.queue_frames)
            if self._native is not None:  # (the same for the C path's reader)
                loop.add_reader(self._native.fd, self._on_frames)
                self._native.listen()
            self.warm()
        return self._queue

    async def recv(self) -> av.AudioFrame:
        self._check_live()
        queue = self._listening()
        timeout = FRAME_SECONDS if self._stalled else STALL_TIMEOUT
        try:
            async with asyncio.timeout(timeout):  # cheaper than wait_for: no extra task
                item = await queue.get()
        except TimeoutError:
            self._check_live()
            if not self._stalled:
                self._stalled = True
                self.stalls += 1
            item = (silence(), self._captured)
            self._captured += FRAME_SAMPLES
        else:
            if item is None:
                raise MediaStreamError
            self._stalled = False
        self.frames_sent += 1
        return make_frame(item[0], item[1])

    def _stop_reading(self) -> None:
        """Take the C path's eventfd off the loop (it closes when its streams let go)."""
        loop, native = self._main_loop, self._native
        if native is not None and loop is not None and not loop.is_closed():
            try:
                loop.remove_reader(native.fd)
            except RuntimeError:  # stopped from another thread: let the loop do it
                loop.call_soon_threadsafe(loop.remove_reader, native.fd)

    @property
    def started(self) -> bool:
        return self._queue is not None

    @property
    def stream_active(self) -> bool:
        """PortAudio still runs the stream (False after a device error stopped it)."""
        return bool(self._stream.active)

    def switch(self, name: str) -> AudioDevice:
        """Capture from ``device:NAME`` from now on, without a gap in the track.

        The new stream is opened and started before the old one is dropped; its
        first block tells the processor to re-pair (as after an overflow).
        Blocking (PortAudio): call it in a thread. Raises DeviceError /
        AudioUnavailable, and the old device keeps capturing then."""
        generation = self._generation + 1
        stream, device = open_stream(
            "input", name, self._callback_for(generation), samplerate=SAMPLE_RATE,
            blocksize=MIC_BLOCK, latency=MIC_LATENCY,
        )  # fmt: skip
        started = self._started
        try:
            if started:
                start_stream(stream)
        except Exception:
            close_stream(stream, started=False)
            raise
        with self._capture_lock:
            if self.readyState != "live":  # stopped meanwhile: keep nothing open
                old = stream
            else:
                old, self._stream = self._stream, stream
                self._generation = generation
                if self._native is not None:
                    self._native.switch()  # the new stream's blocks from now on
                self._fresh = True
                self._early = None  # the old stream's: not contiguous with the new one
                self._switched_from = self._end_adc
                self.name, self.device = name, device
                self.switches += 1
        close_stream(old, started=started)
        return device

    def stop(self) -> None:
        if self.readyState == "live":
            with self._start_lock:
                started, self._started = self._started, True  # closed: warm() must not start it
                with self._capture_lock:
                    self._generation = -1
                if self._native is not None:
                    self._native.stop()
                close_stream(self._stream, started=started)
                self._stop_reading()
            # Ended before the wake: an eager queue may run the reader (the sender's
            # task, which stops this track on its way out) inside put_nowait.
            super().stop()
            if self._queue is not None:
                if self._queue.full():
                    self._queue.get_nowait()
                self._queue.put_nowait(None)  # wake a pending recv()
            return
        super().stop()


def open_audio_source(spec: str, *, fallback: bool = True) -> AudioSource:
    """The track for an audio-source endpoint string.

    With ``fallback``, an unusable ``device:`` (no PortAudio, no device, open
    failure) becomes ``null:`` and the returned track's ``notice`` says why.
    A ``device:NAME`` that matches no existing device raises DeviceError, a
    bad file raises MediaError, a malformed spec EndpointError.
    """
    endpoint = parse_endpoint(spec, "audio-source")
    if endpoint.kind == "sine":
        return SineSource(spec, float(endpoint.arg))
    if endpoint.kind == "file":
        return FileSource(spec, endpoint.arg)
    if endpoint.kind == "device":
        return device_or_null(
            "audio-source",
            spec,
            lambda: DeviceSource(spec, endpoint.arg),
            NullSource,
            fallback=fallback,
        )
    return NullSource(spec)


__all__ = [
    "AudioSource",
    "DeviceSource",
    "FileSource",
    "NullSource",
    "SineSource",
    "open_audio_source",
]
