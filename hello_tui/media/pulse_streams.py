"""Sound devices straight through PulseAudio (libpulse), without PortAudio and ALSA.

PortAudio reaches a PulseAudio (or PipeWire-pulse) server through ALSA's pulse
plugin, which costs ~24 MiB of plugins and hides the server's own timing: an
underrun on the server's side never reaches PortAudio, so the echo canceller's
reference pairing moved on with nothing to tell it why (docs/media.md, "The
pulse backend"). Here each stream has a threaded mainloop and context of its own
(as the plugin has: the capture's echo cancellation never delays the speaker's
refill; ``HELLO_TUI_PULSE_THREADS=shared`` puts them on the one the device
listing uses, per process and ``PULSE_SERVER``); each stream is mono int16 48 kHz with
explicit buffer attributes (playback ``tlength`` = the latency asked for,
``minreq`` and ``prebuf`` one block; record ``fragsize`` one block), and the
server's timing gives each block the time it will be heard (the server's own
timing report, :meth:`PulseStream._heard_at`) or was captured
(``pa_stream_get_latency``), on ``time.monotonic()``. The server's underflow
callback marks the next block as after an underrun.

:class:`PulseStream` looks like the PortAudio streams sounddevice makes (what
``devices.open_on`` returns): ``start``/``stop``/``abort``/``close``,
``active``, ``closed``, ``latency`` and a callback ``(data, frames, when,
status)`` whose ``when`` has ``inputBufferAdcTime``/``outputBufferDacTime``/
``currentTime`` and ``status`` ``input_overflow``/``output_underflow``, so the
device source and sink run on either backend unchanged. Callbacks run on the
mainloop's thread with its lock held: they must not call back into this module.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from hello_tui.media import pulse_lib as pa
from hello_tui.media.errors import AudioUnavailable

__all__ = [
    "PulseDevice",
    "PulseStream",
    "available",
    "device_present",
    "list_pulse_devices",
    "reset",
]

log = logging.getLogger(__name__)

Kind = Literal["input", "output"]
RATE = 48_000
# "low": the playback stream's tlength. With ADJUST_LATENCY the server grants less
# (asked 30/35/50/80/120 ms: 25/27.5/35/50/70 granted) and puts (tlength - 2 minreq) / 2
# of it in the sink; 50 ms: a block waits ~25-30 ms from the write callback to the DAC.
# 35 ms (session 9) cut that wait to 14-17 ms, but the server's requests came less
# regularly, the playout buffer sat higher, and far-end dropouts and the echo pairing's
# filled underruns went up: not kept (docs/media.md, "The speaker's tlength").
# 30 ms underran far more often on a loaded machine (session 7).
LOW_LATENCY_S = 0.050
# "low" for a speaker whose write callback is C (media/playout_native.py, the default):
# with no GIL to wait for, 35 ms (granted ~27.5) cut the card stage from 23-27 to 12-17 ms
# and mouth-to-ear by ~10 ms with no more dropouts and no worse echo cancellation, and
# 25 ms another ~6 ms (73.4 -> 67.2, twice, 0-5 ms of dropouts per call), on a quiet
# machine; 20 ms was worse (70.8 ms, +2 points of CPU: the server cannot hold it). Under
# load the speaker's ladder (media/output_latency.py) steps up after card underruns
# (docs/media.md, "The speaker path in C", "All three in C, the default").
NATIVE_LOW_LATENCY_S = 0.025
HIGH_LATENCY_S = 0.100
# With ADJUST_LATENCY the server grants about this share of the tlength asked (above).
GRANTED_OF_ASKED = 0.6
GAP_S = 0.012  # the server's play time this far off our blocks' timeline: it moved
TOLD_AFTER_S = 0.100  # an underflow message this soon after a gap we found: the same one
REFINE_S = 0.300  # a gap's guessed length is corrected by a report this soon after it
CAPTURE_JUMP_S = 0.030  # capture times this far off the samples' count: data was lost


@dataclass(frozen=True, slots=True)
class PulseDevice:
    name: str  # the server's sink/source name (stable, unique)
    description: str  # what a person reads ("Built-in Audio Analog Stereo")
    index: int
    kind: Kind
    default: bool


class _Times:
    """The timing fields of sounddevice's callback ``time`` argument that we fill."""

    __slots__ = ("currentTime", "inputBufferAdcTime", "outputBufferDacTime")

    def __init__(self) -> None:
        self.currentTime = self.inputBufferAdcTime = self.outputBufferDacTime = 0.0


class _Status:
    __slots__ = ("input_overflow", "output_underflow")

    def __init__(self) -> None:
        self.input_overflow = self.output_underflow = False


# Every callback libpulse holds is one of the module-level thunks below, alive as long
# as the process, and finds the object it is for by the key passed as its userdata.
# A thunk per object (a CFUNCTYPE kept on it) died with the object: libpulse still
# held its address when the cycle collector freed one, and its next callback jumped
# through a freed thunk (a test worker's SIGSEGV on a mainloop thread, in ctypes'
# _CallPythonObject with its callable already NULL: docs/media.md, "The pulse
# backend", session 10). A callback for a key no longer registered does nothing.
_live: dict[int, Any] = {}  # key -> _Context, PulseStream or a pending request's state
_next_key = iter(range(1, 1 << 62))
stale_callbacks = 0  # callbacks that found their object gone (tests check it stays 0)


def _register(obj: Any) -> int:
    key = next(_next_key)
    _live[key] = obj
    return key


def _lookup(key: int | None) -> Any:
    obj = _live.get(key or 0)
    if obj is None:
        global stale_callbacks
        stale_callbacks += 1
    return obj


def _on_context_state(_c: Any, key: int | None) -> None:
    if (ctx := _lookup(key)) is not None:
        ctx._signal()


def _on_stream_state(stream: Any, key: int | None) -> None:
    if (obj := _lookup(key)) is not None:
        obj._state_changed(stream)


def _on_stream_request(stream: Any, nbytes: int, key: int | None) -> None:
    if (obj := _lookup(key)) is not None:
        obj._request(stream, nbytes)


def _on_stream_underflow(_s: Any, key: int | None) -> None:
    if (obj := _lookup(key)) is not None:
        obj._underflowed()


def _on_once(_api: Any, key: int | None) -> None:
    if (done := _lookup(key)) is not None:
        _unpin_thread_state()
        done.set()


def _on_device_info(_c: Any, info: Any, eol: int, key: int | None) -> None:
    if (request := _lookup(key)) is None:
        return
    ctx, found = request
    if eol or not info:
        ctx._signal()
        return
    i = info.contents
    found.append((_text(i.name), _text(i.description), int(i.index)))


def _on_server_info(_c: Any, info: Any, key: int | None) -> None:
    if (request := _lookup(key)) is None:
        return
    ctx, names = request
    if info:
        names[:] = [_text(info.contents.default_sink_name),
                    _text(info.contents.default_source_name)]  # fmt: skip
    ctx._signal()


CONTEXT_STATE = pa.ContextNotify(_on_context_state)
STREAM_STATE = pa.StreamNotify(_on_stream_state)
STREAM_REQUEST = pa.StreamRequest(_on_stream_request)
STREAM_UNDERFLOW = pa.StreamNotify(_on_stream_underflow)
ONCE = pa.MainloopOnce(_on_once)
DEVICE_INFO = pa.DeviceInfoCb(_on_device_info)
SERVER_INFO = pa.ServerInfoCb(_on_server_info)


class _Context:
    """One threaded mainloop and connected context (blocking constructor)."""

    def __init__(self, server: str | None) -> None:
        lib = pa.lib()
        self.lib = lib
        self.server = server
        self.ml = lib.pa_threaded_mainloop_new()
        if not self.ml:
            raise AudioUnavailable("PulseAudio: cannot create a mainloop")
        self.ctx = lib.pa_context_new(lib.pa_threaded_mainloop_get_api(self.ml), b"hello-tui")
        self.key = _register(self)
        lib.pa_context_set_state_callback(self.ctx, CONTEXT_STATE, self.key)
        address = server.encode() if server else None
        if lib.pa_context_connect(self.ctx, address, pa.CONTEXT_NOAUTOSPAWN, None) < 0:
            error = self.error()
            self._free()
            raise AudioUnavailable(f"PulseAudio: {error}")
        lib.pa_threaded_mainloop_start(self.ml)
        with self.locked():
            while (state := lib.pa_context_get_state(self.ctx)) != pa.CONTEXT_READY:
                if state in (pa.CONTEXT_FAILED, pa.CONTEXT_TERMINATED):
                    break
                lib.pa_threaded_mainloop_wait(self.ml)
        if state != pa.CONTEXT_READY:
            error = self.error()
            self.close()
            raise AudioUnavailable(f"PulseAudio: {error}")
        self.streams: weakref.WeakSet[PulseStream] = weakref.WeakSet()

    def _signal(self) -> None:
        self.lib.pa_threaded_mainloop_signal(self.ml, 0)

    def error(self) -> str:
        text = self.lib.pa_strerror(self.lib.pa_context_errno(self.ctx))
        return text.decode(errors="replace") if text else "unknown error"

    @property
    def ready(self) -> bool:
        with self.locked():
            return bool(self.lib.pa_context_get_state(self.ctx) == pa.CONTEXT_READY)

    @contextmanager
    def locked(self) -> Iterator[None]:
        if self.lib.pa_threaded_mainloop_in_thread(self.ml):
            yield  # a callback: the mainloop's lock is ours already
            return
        self.lib.pa_threaded_mainloop_lock(self.ml)
        try:
            yield
        finally:
            self.lib.pa_threaded_mainloop_unlock(self.ml)

    def wait_for(self, op: int | None) -> None:
        """Wait (lock held) until the operation ``op`` is done, then release it."""
        if not op:
            raise AudioUnavailable(f"PulseAudio: {self.error()}")
        try:
            while self.lib.pa_operation_get_state(op) == pa.OPERATION_RUNNING:
                self.lib.pa_threaded_mainloop_wait(self.ml)
        finally:
            self.lib.pa_operation_unref(op)

    def devices(self, kind: Kind, name: str | None = None) -> list[tuple[str, str, int]]:
        """(name, description, index) of the sinks (output) or sources (input); only
        the one called ``name`` when given (empty when there is none)."""
        found: list[tuple[str, str, int]] = []
        key = _register((self, found))
        lib, what = self.lib, "sink" if kind == "output" else "source"
        try:
            with self.locked():
                if name is None:
                    self.wait_for(getattr(lib, f"pa_context_get_{what}_info_list")(
                        self.ctx, DEVICE_INFO, key))  # fmt: skip
                else:
                    self.wait_for(getattr(lib, f"pa_context_get_{what}_info_by_name")(
                        self.ctx, name.encode(), DEVICE_INFO, key))  # fmt: skip
        finally:
            _live.pop(key, None)
        return found

    def defaults(self) -> tuple[str, str]:
        """The server's default sink and source names."""
        names = ["", ""]
        key = _register((self, names))
        try:
            with self.locked():
                self.wait_for(self.lib.pa_context_get_server_info(self.ctx, SERVER_INFO, key))
        finally:
            _live.pop(key, None)
        return names[0], names[1]

    def close(self) -> None:
        lib = self.lib
        self._unpin()
        lib.pa_threaded_mainloop_stop(self.ml)
        lib.pa_context_disconnect(self.ctx)
        self._free()

    def _unpin(self) -> None:
        """Give back the thread state a stream callback kept on this mainloop's thread
        (:func:`_pin_thread_state`) before the thread ends, from a callback on it."""
        lib = self.lib
        if lib.pa_threaded_mainloop_in_thread(self.ml):
            return  # (never closed from its own thread; stop would not return either)
        done = threading.Event()
        key = _register(done)
        with self.locked():
            lib.pa_mainloop_api_once(lib.pa_threaded_mainloop_get_api(self.ml), ONCE, key)
        done.wait(1.0)  # bounded: a mainloop that no longer runs must not hang a close
        _live.pop(key, None)  # (had it not run: it never will, the mainloop stops next)

    def _free(self) -> None:
        self.lib.pa_context_unref(self.ctx)
        self.lib.pa_threaded_mainloop_free(self.ml)
        _live.pop(self.key, None)  # (after: nothing runs on that mainloop any more)


def _text(value: bytes | None) -> str:
    return value.decode(errors="replace") if value else ""


_lock = threading.Lock()
_context: _Context | None = None


def _server() -> str | None:
    return os.environ.get("PULSE_SERVER") or None


def _server_present() -> bool:
    """A server's socket is there (we never autospawn one)."""
    if _server():
        return True
    runtime = os.environ.get("PULSE_RUNTIME_PATH")
    if not runtime:
        runtime = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}",
                               "pulse")  # fmt: skip
    return os.path.exists(os.path.join(runtime, "native"))


def context() -> _Context:
    """The process's context for the server ``PULSE_SERVER`` names now (connected on
    first use, again after the server changed or went away); AudioUnavailable."""
    global _context
    with _lock:
        current = _context
        if current is not None and current.server == _server() and current.ready:
            return current
        if current is not None and not any(not s.closed for s in list(current.streams)):
            current.close()
        _context = None
        if not _server_present():
            raise AudioUnavailable("no PulseAudio server is running")
        try:
            _context = _Context(_server())
        except pa.PulseMissing as exc:
            raise AudioUnavailable(str(exc)) from None
        return _context


_open_streams: weakref.WeakSet[PulseStream] = weakref.WeakSet()


@atexit.register
def _stop_threads_at_exit() -> None:
    """Stop every libpulse mainloop thread before the interpreter finalizes.

    Those threads keep a Python thread state (:func:`_pin_thread_state`); finalization
    frees every thread state, so a callback entering after it used a freed one and
    crashed the process on its way out (1 exit in 8 of a script that left its streams
    open; pytest-xdist's worker once). atexit runs before that, with threads still
    able to take the GIL: closing joins each thread (libpulse's calls here release
    the GIL)."""
    global _context
    for stream in list(_open_streams):
        stream.close()
    with _lock:
        ctx, _context = _context, None
    if ctx is not None:
        ctx.close()


def _own_context() -> _Context:
    """A context on a mainloop thread of its own, for one stream (AudioUnavailable)."""
    if not _server_present():
        raise AudioUnavailable("no PulseAudio server is running")
    try:
        return _Context(_server())
    except pa.PulseMissing as exc:
        raise AudioUnavailable(str(exc)) from None


def available() -> bool:
    """Whether a PulseAudio (or PipeWire-pulse) server answers (connects if needed)."""
    try:
        context()
    except AudioUnavailable:
        return False
    return True


def reset() -> None:
    """Forget the context when no stream uses it (the next use connects again)."""
    global _context
    with _lock:
        if _context is not None and not any(not s.closed for s in list(_context.streams)):
            _context.close()
            _context = None


def list_pulse_devices(kind: Kind) -> list[PulseDevice]:
    """The server's sinks (``output``) or sources (``input``, monitors included)."""
    ctx = context()
    default_sink, default_source = ctx.defaults()
    default = default_sink if kind == "output" else default_source
    return [
        PulseDevice(name, description, index, kind, name == default)
        for name, description, index in ctx.devices(kind)
    ]


def device_present(kind: Kind, name: str) -> bool:
    """Whether the server still has the sink/source ``name``."""
    try:
        return bool(context().devices(kind, name))
    except AudioUnavailable:
        return False


_pinned = threading.local()  # set on a libpulse thread once its thread state is kept


def _pin_thread_state() -> None:
    """Keep this (libpulse's) thread's Python thread state from one callback to the next.

    ctypes makes a thread state when a callback enters on a thread that has none and
    frees it on the way out (cffi, which sounddevice uses, keeps it): with it go a
    16 KiB frame stack, mapped and unmapped at every 10 ms block. Under load that
    stalled the whole process (a thread descheduled while unmapping holds the memory
    map's lock): in one side-by-side call, speaker callbacks 56-71 ms apart at the
    99th percentile against 19-23, and 36-46 card underruns a side against 4-8
    (docs/media.md, "The pulse backend"). One more ``PyGILState_Ensure``, never
    released until the stream closes, keeps it: one thread state (~17 KiB) per stream
    thread, freed by :func:`_unpin_thread_state`. HELLO_TUI_PULSE_PIN=0: off, to
    measure."""
    if not getattr(_pinned, "done", False) and os.environ.get("HELLO_TUI_PULSE_PIN") != "0":
        ctypes.pythonapi.PyGILState_Ensure()
        _pinned.done = True


def _unpin_thread_state() -> None:
    """Undo :func:`_pin_thread_state` on this thread, from inside a callback: the kept
    ``PyGILState_Ensure`` is released (it returned LOCKED: only its count goes), so
    ctypes' own release on the callback's way out clears and frees the thread state,
    as for any foreign thread's callback. Called once per mainloop, just before it
    stops (a thread state left behind stayed in the interpreter's list for good)."""
    if getattr(_pinned, "done", False):
        ctypes.pythonapi.PyGILState_Release(0)  # PyGILState_LOCKED
        _pinned.done = False


def _latency_s(latency: str | float, low: float = LOW_LATENCY_S) -> float:
    if latency == "low":  # HELLO_TUI_PULSE_LOW_MS: for measuring (bench/pulse_backend.sh)
        return float(os.environ.get("HELLO_TUI_PULSE_LOW_MS") or low * 1000) / 1000
    if latency == "high":
        return HIGH_LATENCY_S
    return max(0.005, float(latency))


def _knob_bytes(name: str, default: int) -> int:
    """A buffer attribute in bytes from a measuring knob in ms (bench/pulse_backend.sh)."""
    ms = os.environ.get(name)
    return round(float(ms) * RATE / 1000) * 2 if ms else default


class PulseStream:
    """One playback (``output``) or record (``input``) stream on a sink/source.

    Created unconnected (the device is known to exist); :meth:`start` connects it
    and waits until the server has it running."""

    # A playback block flagged after a gap carries the server's corrected time for it
    # (the first report after the restart: _heard_at), so a gap filled too long into
    # the echo canceller's reference can be trimmed (audio_processing; PortAudio: no).
    corrects_gaps = True

    def __init__(
        self,
        kind: Kind,
        device: str,
        callback: Callable[..., None],
        *,
        blocksize: int,
        latency: str | float = "low",
    ) -> None:
        self.kind, self.device, self.callback = kind, device, callback
        self.blocksize = blocksize
        native_speaker = kind == "output" and getattr(callback, "native_playback", None)
        low = NATIVE_LOW_LATENCY_S if native_speaker else LOW_LATENCY_S
        self.requested_latency = _latency_s(latency, low)
        self._raw_latency = latency
        self.closed = False
        self._underflows = 0
        self.overflows = 0
        # A mainloop thread of its own (as ALSA's pulse plugin has one per stream): the
        # capture's processing (echo cancellation) never delays the speaker's refill.
        self._own = os.environ.get("HELLO_TUI_PULSE_THREADS", "per-stream") != "shared"
        self._ctx = _own_context() if self._own else context()
        self._ctx.streams.add(self)
        _open_streams.add(self)
        self._stream: int | None = None
        self._data = np.zeros((blocksize, 1), dtype=np.int16)
        self._out = self._data  # playback: the blocks of one request, written at once
        self._out_at = self._out.ctypes.data  # its address (numpy's .ctypes costs µs a call)
        # libpulse keeping the GIL, for the callbacks (HELLO_TUI_PULSE_GIL=release: the
        # releasing handle, to measure the difference: bench/speaker_underruns.py)
        release = os.environ.get("HELLO_TUI_PULSE_GIL") == "release"
        self._held = pa.lib() if release else pa.held()
        self._times, self._status = _Times(), _Status()
        self._latency = self.requested_latency  # the server's, once it reported one
        self._granted = self.requested_latency
        self._underflow = False  # the server's underflow message, not yet passed on
        self._next_play: float | None = None  # when the next block written will be heard
        self._gap_seen = float("-inf")  # when _play_time last found the speaker ran dry
        self._written = 0  # bytes written to the playback stream (its write index)
        self._report_at: float | None = None  # when the server took the timing used last
        self._refine = False  # a gap's length was guessed: correct it from the next report
        # The play time from the server's last timing report (_heard_at), not libpulse's
        # smoothed latency; HELLO_TUI_PULSE_TIMING=smoothed: the latter, to measure.
        self._raw_timing = os.environ.get("HELLO_TUI_PULSE_TIMING") != "smoothed"
        self._pending = np.zeros(0, dtype=np.int16)  # captured samples short of a block
        self._pending_at = 0.0  # capture time of _pending[0]
        self._usec, self._negative = ctypes.c_uint64(), ctypes.c_int()
        self._peek_data, self._peek_size = ctypes.c_void_p(), ctypes.c_size_t()
        self._state = -1  # the stream's state as its last state callback saw it
        # What the module's request thunk calls (STREAM_REQUEST, through the key).
        self._request = self._write if kind == "output" else self._read
        self.key = _register(self)  # until close(): libpulse may call back until then
        # A microphone whose blocks go to C (media/capture_native.py): libpulse calls
        # capture_path.cpp's read callback, Python never runs on this stream's thread.
        self._binding: Any = None
        self._native_read: Any = None  # a C function's address (no Python thunk)
        self._native_underflow: Any = None
        native = getattr(callback, "native_capture", None) if kind == "input" else None
        if native is not None:
            capture, generation = native
            self._binding = capture.bind(generation, blocksize, self._latency)
            self._native_read = pa.StreamRequest(self._binding.callback_address)
        # A speaker whose blocks come from C (media/playout_native.py): libpulse calls
        # speaker_path.cpp's write and underflow callbacks, Python never runs on its thread.
        native = getattr(callback, "native_playback", None) if kind == "output" else None
        if native is not None:
            speaker, generation = native
            self._binding = speaker.bind(generation, blocksize, self._latency, self._raw_timing)
            self._native_read = pa.StreamRequest(self._binding.callback_address)
            self._native_underflow = pa.StreamNotify(self._binding.underflow_address)

    @property
    def native(self) -> bool:
        """The blocks go to (microphone) or come from (speaker) C, not Python: a
        ``native_capture`` or ``native_playback`` callback."""
        return self._binding is not None

    @property
    def underflows(self) -> int:
        """The server's underflow messages for this (playback) stream so far."""
        if self._binding is not None and self.kind == "output" and self._binding.handle:
            return int(self._binding.underflows)
        return self._underflows

    @property
    def active(self) -> bool:
        """The server runs the stream (False before start, after close or a failure).
        Kept by the state callback: asking takes no lock (the device watch asks from the
        event loop, and holding the speaker's lock while waiting for the GIL back would
        hold up its refill)."""
        return self._stream is not None and not self.closed and self._state == pa.STREAM_READY

    def _state_changed(self, stream: Any) -> None:
        self._state = int(self._held.pa_stream_get_state(stream))
        self._ctx._signal()

    @property
    def latency(self) -> float:
        """The latency the server granted (playback: its ``tlength``; record: its
        ``fragsize``), in seconds, steady like PortAudio's; before start, what was
        asked. Each block's own time comes from the server's live latency."""
        return self._granted

    def start(self) -> None:
        """Connect and wait until the stream runs; AudioUnavailable naming the device."""
        if self._stream is not None or self.closed:
            return
        ctx, lib = self._ctx, self._ctx.lib
        spec = pa.SampleSpec(pa.SAMPLE_S16LE, RATE, 1)
        block = self.blocksize * 2
        flags = pa.STREAM_INTERPOLATE_TIMING | pa.STREAM_AUTO_TIMING_UPDATE
        flags |= pa.STREAM_ADJUST_LATENCY
        with ctx.locked():
            stream = lib.pa_stream_new(ctx.ctx, f"hello-tui {self.kind}".encode(), spec, None)
            if not stream:
                raise AudioUnavailable(f"cannot open {self.device!r}: {ctx.error()}")
            self._stream = stream
            lib.pa_stream_set_state_callback(stream, STREAM_STATE, self.key)
            if self.kind == "output":
                tlength = max(block, round(self._ask_s() * RATE) * 2)
                minreq = _knob_bytes("HELLO_TUI_PULSE_MINREQ_MS", block)
                attr = pa.BufferAttr(pa.UNSET, tlength, block, minreq, pa.UNSET)
                if self._binding is not None:
                    handle = self._binding.handle
                    lib.pa_stream_set_write_callback(stream, self._native_read, handle)
                    lib.pa_stream_set_underflow_callback(stream, self._native_underflow, handle)
                else:
                    lib.pa_stream_set_write_callback(stream, STREAM_REQUEST, self.key)
                    lib.pa_stream_set_underflow_callback(stream, STREAM_UNDERFLOW, self.key)
                rc = lib.pa_stream_connect_playback(
                    stream, self.device.encode(), attr, flags, None, None
                )
            else:
                fragsize = _knob_bytes("HELLO_TUI_PULSE_FRAGSIZE_MS", block)
                attr = pa.BufferAttr(pa.UNSET, pa.UNSET, pa.UNSET, pa.UNSET, fragsize)
                if self._binding is not None:
                    lib.pa_stream_set_read_callback(stream, self._native_read, self._binding.handle)
                else:
                    lib.pa_stream_set_read_callback(stream, STREAM_REQUEST, self.key)
                rc = lib.pa_stream_connect_record(stream, self.device.encode(), attr, flags)
            state = pa.STREAM_FAILED if rc < 0 else lib.pa_stream_get_state(stream)
            while state not in (pa.STREAM_READY, pa.STREAM_FAILED, pa.STREAM_TERMINATED):
                lib.pa_threaded_mainloop_wait(ctx.ml)
                state = lib.pa_stream_get_state(stream)
            error = ctx.error() if state != pa.STREAM_READY else ""
            granted = lib.pa_stream_get_buffer_attr(stream) if not error else None
            if granted:
                size = (
                    granted.contents.tlength if self.kind == "output" else granted.contents.fragsize
                )
                self._granted = size / 2 / RATE
        if error:
            self.close()
            raise AudioUnavailable(f"cannot open {self.device!r}: {error}")

    def _ask_s(self) -> float:
        """The playback ``tlength`` to ask for. "low" asks LOW_LATENCY_S as it is
        (granted ~35 ms; NATIVE_LOW_LATENCY_S for a speaker written from C); a latency
        in seconds (the speaker's ladder after underruns, media/output_latency.py)
        asks enough that the server grants about that much, as PortAudio grants at
        least what it is asked (its 80 ms step: 90 ms), where asking 80 ms got 50."""
        if self._raw_latency == "low":
            return self.requested_latency
        return self.requested_latency / GRANTED_OF_ASKED

    def _now_latency(self, stream: Any) -> float:
        """The server's latency now, in seconds (mainloop lock held); the last one
        when it has none yet (no timing update received)."""
        if self._held.pa_stream_get_latency(stream, self._usec, self._negative) == 0:
            usec = self._usec.value
            self._latency = -usec / 1e6 if self._negative.value else usec / 1e6
        return self._latency

    def _heard_at(self, stream: Any, now: float) -> float:
        """When the next byte written will be heard (mainloop lock held), from the
        server's last timing report itself: byte ``read_index`` reached the sink at
        ``timestamp`` and is heard ``sink_usec`` later, the bytes after it follow
        at the rate, and nothing is heard before the sink has it (``now + sink_usec``:
        the buffer ran dry). ``pa_stream_get_latency`` interpolates through a
        smoother that libpulse pauses at an underflow and keeps monotonic, and
        clamps a playback latency at 0: after an underrun it said the speaker
        played up to ~50 ms earlier or later than it did, and that error went into
        the echo canceller's reference as silence and pairing moves (docs/media.md,
        "The pulse backend")."""
        info = self._held.pa_stream_get_timing_info(stream) if self._raw_timing else None
        self._report_at = None
        if not info or info.contents.read_index_corrupt:
            return now + self._now_latency(stream)
        i = info.contents
        sink = float(i.sink_usec) / 1e6
        soonest = now + sink
        stamp: float = float(i.timestamp.tv_sec) + i.timestamp.tv_usec / 1e6 - (time.time() - now)
        stale = stamp < self._gap_seen or (not i.playing and self._written > int(i.read_index))
        if stale and self._next_play is not None:
            # Taken before the last restart (or not playing yet, and written since): it
            # says nothing of the blocks written since, so the timeline holds, unless
            # it ran dry again. (Its old read index put them up to 30 ms early.)
            return max(self._next_play, soonest)
        if not i.playing:  # ran dry (or prebuffering) when the server reported
            return soonest  # the next block restarts it
        self._report_at = stamp
        return max(soonest, stamp + sink + (self._written - int(i.read_index)) / (2 * RATE))

    def _underflowed(self) -> None:
        self._underflows += 1
        self._underflow = True

    def _play_time(self, measured: float, now: float) -> tuple[float, bool]:
        """When the next block will be heard, and whether the speaker ran dry before it.

        The blocks form one timeline (each starts where the last ended), which moves
        only when the server's timing says it must: later by more than ``GAP_S`` (the
        speaker played silence: an underrun, flagged, often a callback before the
        server's own underflow message, which then adds nothing), or earlier by more
        than that. The interpolated latency's wobble (a few ms) never moves it, so
        the echo canceller's reference stays a contiguous record of what played."""
        expected = self._next_play
        told, self._underflow = self._underflow, False
        if expected is None:
            return measured, told
        late = measured - expected
        if late > GAP_S or (told and late > 0.001 and now - self._gap_seen > TOLD_AFTER_S):
            self._gap_seen = now
            self._refine = True
            return measured, True
        # The restart after a gap is heard between now and now + the sink's latency
        # (0-10 ms here), so its length was a guess: the first report taken after it
        # says, and the gap is corrected (flagged: the reference gets the missing
        # silence, or gives back what was too much) while the blocks since are unheard.
        if self._refine and now - self._gap_seen > REFINE_S:
            self._refine = False
        if self._refine and (self._report_at or 0.0) > self._gap_seen:
            self._refine = False
            if abs(late) > 0.001:
                return measured, True
        if late < -2 * GAP_S:  # (just after a stall the measured time overshoots)
            return measured, False
        return expected, False

    def _write(self, stream: Any, nbytes: int) -> None:
        """The server wants ``nbytes`` more: whole blocks from the callback, one write.

        libpulse is called through :func:`pulse_lib.held` here (the GIL kept): the
        callback takes the GIL once, as PortAudio's does, not once per call."""
        try:
            _pin_thread_state()
            size = self.blocksize * 2
            blocks = nbytes // size
            if not blocks:
                return
            now = time.monotonic()
            times, status = self._times, self._status
            if len(self._out) < blocks * self.blocksize:
                self._out = np.zeros((blocks * self.blocksize, 1), dtype=np.int16)
                self._out_at = self._out.ctypes.data
            out = self._out
            first, status.output_underflow = self._play_time(self._heard_at(stream, now), now)
            times.currentTime = now
            step = self.blocksize / RATE
            for i in range(blocks):
                times.outputBufferDacTime = first + i * step
                if i:
                    status.output_underflow = False
                self.callback(out[i * self.blocksize : (i + 1) * self.blocksize],
                              self.blocksize, times, status)  # fmt: skip
            self._held.pa_stream_write(stream, self._out_at, blocks * size, None, 0,
                                       pa.SEEK_RELATIVE)  # fmt: skip
            self._written += blocks * size
            self._next_play = first + blocks * step
        except Exception:  # a callback must not raise into C
            log.exception("pulse playback callback")

    def _read(self, stream: Any, _nbytes: int) -> None:
        """Captured data is there: hand it on in whole blocks with their capture times."""
        try:
            _pin_thread_state()
            lib = self._held
            while lib.pa_stream_peek(stream, self._peek_data, self._peek_size) == 0:
                size = self._peek_size.value
                if not size:
                    break
                if self._peek_data.value is None:  # a hole: samples lost
                    self._status.input_overflow = True
                    self.overflows += 1
                else:
                    chunk = np.frombuffer(ctypes.string_at(self._peek_data, size), np.int16)
                    self._take(chunk, time.monotonic() - self._now_latency(stream))
                lib.pa_stream_drop(stream)
        except Exception:
            log.exception("pulse record callback")

    def _take(self, chunk: np.ndarray[Any, np.dtype[np.int16]], captured: float) -> None:
        """Append ``chunk`` (its first sample captured at ``captured``, by the server's
        timing) and pass on whole blocks. Like playback, the capture times form one
        timeline that moves only when the server's timing is off it by more than
        ``CAPTURE_JUMP_S``: later means samples were lost (flagged as an overflow)."""
        pending = self._pending
        expected = self._pending_at + len(pending) / RATE
        if self._pending_at == 0.0 or abs(captured - expected) > CAPTURE_JUMP_S:
            if self._pending_at and captured > expected:  # the server dropped some
                self._status.input_overflow = True
                self.overflows += 1
            self._pending_at = captured - len(pending) / RATE
        pending = np.concatenate((pending, chunk)) if len(pending) else chunk
        block, times, status = self.blocksize, self._times, self._status
        at = 0
        while len(pending) - at >= block:
            self._data[:, 0] = pending[at : at + block]
            times.currentTime = time.monotonic()
            times.inputBufferAdcTime = self._pending_at + at / RATE
            self.callback(self._data, block, times, status)
            status.input_overflow = False
            at += block
        self._pending = pending[at:].copy() if at and at < len(pending) else pending[at:]
        self._pending_at += at / RATE

    def stop(self) -> None:
        self.close()

    def abort(self) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect and free the stream (idempotent, never raises)."""
        if self.closed:
            return
        self.closed = True
        stream, self._stream = self._stream, None
        ctx, lib = self._ctx, self._ctx.lib
        if stream is not None:
            with ctx.locked():
                lib.pa_stream_set_write_callback(stream, pa.StreamRequest(), None)
                lib.pa_stream_set_read_callback(stream, pa.StreamRequest(), None)
                lib.pa_stream_set_underflow_callback(stream, pa.StreamNotify(), None)
                lib.pa_stream_set_state_callback(stream, pa.StreamNotify(), None)
                lib.pa_stream_disconnect(stream)
                lib.pa_stream_unref(stream)
        if self._own:
            ctx.close()
        if self._binding is not None:  # (its callback can no longer run: unset, joined)
            if self.kind == "output":
                self._underflows = self.underflows  # (what C counted, kept past the unbind)
            self._binding.unbind()
        _live.pop(self.key, None)  # (after: no callback of this stream can run any more)
