"""The microphone's per-block path in C (``capture_path.cpp``, in the AEC3 shim's library).

Two objects, each a thin ctypes wrapper:

* :class:`NativeProcessor` — :class:`~hello_tui.media.audio_processing.CaptureProcessor`
  with its pairing and the shim's processor in C (the same samples out for the same
  blocks in: tests/media/test_capture_path.py). It has the Python class's surface, so
  PortAudio's callback calls its ``process`` as before, and the speaker's callback
  feeds it ``feed_far``.
* :class:`NativeCapture` — a ``device:`` microphone on the pulse backend end to end:
  libpulse's read callback is C (``cap_pulse_read``), which keeps the capture timeline,
  runs the processor on whole blocks, cuts 20 ms frames and wakes the event loop once
  per frame through an eventfd; Python never runs on the microphone's thread.

Both are used when the shim is built (with ``capture_path.cpp``): the default since
session 11, when the speaker's half and the send path joined them in C and the three
together measured cheaper, lower in mouth-to-ear and better at echo cancellation
(docs/media.md, "All three in C, the default"). ``HELLO_TUI_NATIVE_CAPTURE=stage``
keeps only the stage in C under the Python read callback, ``0`` all Python (A/Bs).
Without the shim (a pure wheel) everything stays in Python, as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from hello_tui.media import aec3_tuned
from hello_tui.media.audio_format import FRAME_SAMPLES, SAMPLE_RATE, Samples

if TYPE_CHECKING:
    from hello_tui.media.audio_processing import ProcessingConfig, ProcessingStats

__all__ = ["NativeCapture", "NativeProcessor", "available", "library", "read_path"]

BLOCK = SAMPLE_RATE // 100
# "0": all Python; "1": the pulse read callback in C too; unset: the stage in C only.
KNOB = "HELLO_TUI_NATIVE_CAPTURE"
TAKE = 4  # frames read per call (one is usual: a wake-up per frame)

_lib: Any = None
_held: Any = None


def library() -> Any:
    """The shim's library with the capture path's functions (aec3_tuned.ShimUnavailable)."""
    global _lib, _held
    lib = aec3_tuned.load_shim()  # (its own cache: a shim made unavailable is seen)
    if _lib is lib:
        return _lib
    if not hasattr(lib, "cp_new"):  # a shim built before capture_path.cpp was there
        raise aec3_tuned.ShimUnavailable("built without the capture path")
    vp, i16, c_int, c_double = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_double
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "cp_new": (vp, []),
        "cp_free": (None, [vp]),
        "cp_set_module": (None, [vp, vp, c_int, c_int, c_int]),
        "cp_set_trim": (None, [vp, c_int]),
        "cp_feed_far": (None, [vp, i16, c_int, c_double, c_int]),
        "cp_process": (c_int, [vp, i16, c_int, c_double, c_int, i16]),
        "cp_stats": (None, [vp, ctypes.POINTER(c_double)]),
        "cp_tap": (None, [vp, c_int]),
        "cp_tap_take": (ctypes.c_int64, [vp, i16, i16, ctypes.c_int64]),
        "cap_new": (vp, [ctypes.c_float, c_double]),
        "cap_fd": (c_int, [vp]),
        "cap_free": (None, [vp]),
        "cap_set_pairing": (None, [vp, vp]),
        "cap_listen": (None, [vp]),
        "cap_set_wait": (None, [vp, c_int]),
        "cap_set_settle": (None, [vp, c_int]),
        "cp_far_waits": (ctypes.c_int64, [vp]),
        "cap_set_voice": (None, [vp, c_int]),
        "cap_switch": (c_int, [vp]),
        "cap_stop": (None, [vp]),
        "cap_pop": (c_int, [vp, i16]),
        "cap_counters": (None, [vp, ctypes.POINTER(c_double)]),
        "cap_take": (c_int, [vp, i16, c_int, ctypes.POINTER(c_double)]),
        "cap_bind": (vp, [vp, c_int, c_int, c_double, vp, vp, vp]),
        "cap_unbind": (None, [vp]),
        "cap_stream_overflows": (ctypes.c_int64, [vp]),
        "cap_chunk": (None, [vp, i16, c_int, c_double]),
        "cap_hole": (None, [vp]),
    }
    # Two handles on one library: CDLL gives the GIL away for a call (the processing,
    # the close); PyDLL keeps it for what only copies under a lock no GIL-holder waits
    # on (feeding the far end, popping a frame, reading counters): giving the GIL away
    # there cost a wait to take it back, per block.
    held = ctypes.PyDLL(lib._name)
    bind(signatures, lib, held)
    _lib, _held = lib, held
    return lib


def bind(signatures: dict[str, tuple[Any, list[Any]]], *handles: Any) -> None:
    """Set each function's result and argument types on every handle of the shim (its
    CDLL and its PyDLL: the send and speaker paths bind theirs the same way)."""
    for handle in handles:
        for name, (restype, argtypes) in signatures.items():
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = restype, argtypes


def handles() -> tuple[Any, Any]:
    """The shim's CDLL and its one PyDLL, the capture path's functions bound: the send,
    speaker and receive paths (which all need the capture path) bind theirs on these two
    (aec3_tuned.ShimUnavailable)."""
    lib = library()
    return lib, _held


def loads(part_library: Callable[[], Any]) -> bool:
    """Whether a C part's ``library()`` loads (a shim without it, or none: no)."""
    try:
        part_library()
    except aec3_tuned.ShimUnavailable:
        return False
    return True


def available() -> bool:
    """The stage in C can be used (built, loadable, not switched off by the knob)."""
    return os.environ.get(KNOB) != "0" and loads(library)


def read_path() -> bool:
    """The pulse read callback in C too: the default (``HELLO_TUI_NATIVE_CAPTURE=stage``
    or ``0`` turns it off; docs/media.md, "All three in C, the default")."""
    return os.environ.get(KNOB) != "stage" and available()


def _time(t: float | None) -> float:
    return math.nan if t is None else t


class NativeProcessor:
    """CaptureProcessor's pairing and processing in C (same surface, same output)."""

    def __init__(self, config: ProcessingConfig, *, echo_cancellation: bool) -> None:
        from hello_tui.media.audio_processing import _load_binding

        _load_binding()  # ProcessingUnavailable as the Python class raises it
        lib = library()
        self._lib, self._held = lib, _held
        self.config = config
        self.echo_cancellation = echo_cancellation and config.aec
        self.tuned = self.echo_cancellation and config.tuned_aec
        self.handle = lib.cp_new()
        self._trim = False
        self._stats = (ctypes.c_double * 11)()
        self._in = np.zeros(0, dtype=np.int16)
        self._out = np.zeros(0, dtype=np.int16)
        self._set_module(self.echo_cancellation, reset=False)
        self._tap: Callable[[Samples, Samples], None] | None = None

    def _set_module(self, on: bool, *, reset: bool) -> None:
        cfg = self.config
        # AEC3 with our tuning, or (echo_tuning "default") the config the binding has;
        # without echo cancellation the shim's chain is the binding's (tests pin both).
        tuning = aec3_tuned.TUNING if on and cfg.tuned_aec else {}
        module = aec3_tuned.create_handle(
            echo_cancellation=on, noise_suppression=cfg.noise_suppression,
            auto_gain_control=cfg.auto_gain, ns_level=cfg.ns_level,
            agc_max_gain_db=cfg.agc_max_gain_db, tuning=tuning,
        )  # fmt: skip
        self._lib.cp_set_module(self.handle, module, int(on), int(cfg.auto_gain), int(reset))

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle:
            self._lib.cp_free(handle)  # (a capture it is set on keeps it until it ends)

    @property
    def tap(self) -> Callable[[Samples, Samples], None] | None:
        """Diagnostics (bench/aec.py, tests): called with each 10 ms (near, far) pair the
        processor got, as CaptureProcessor's, but later: C keeps the pairs (up to 2
        minutes) and they are handed over when the tap is unset or ``stats()`` read."""
        return self._tap

    @tap.setter
    def tap(self, tap: Callable[[Samples, Samples], None] | None) -> None:
        self._lib.cp_tap(self.handle, 0)
        self._flush_tap()  # what was kept goes to the tap it was kept for
        self._tap = tap
        if tap is not None:
            self._lib.cp_tap(self.handle, 1)

    def _flush_tap(self) -> None:
        tap = self._tap
        if tap is None:
            return
        lib = self._lib
        n = int(lib.cp_tap_take(self.handle, None, None, 0))
        near, far = np.zeros(n, dtype=np.int16), np.zeros(n, dtype=np.int16)
        n = int(lib.cp_tap_take(self.handle, near.ctypes.data, far.ctypes.data, n))
        for at in range(0, n - n % BLOCK, BLOCK):
            tap(near[at : at + BLOCK], far[at : at + BLOCK])

    @property
    def trim_fills(self) -> bool:
        return self._trim

    @trim_fills.setter
    def trim_fills(self, on: bool) -> None:
        self._trim = on
        self._held.cp_set_trim(self.handle, int(on))

    def set_echo_cancellation(self, on: bool) -> None:
        """As CaptureProcessor's: a fresh module and a fresh pairing."""
        if on == self.echo_cancellation:
            return
        self._set_module(on, reset=True)
        self.echo_cancellation = on
        self.tuned = on and self.config.tuned_aec

    def feed_far(
        self, samples: Samples, play_time: float | None = None, underflow: bool = False
    ) -> None:
        if not self.echo_cancellation:
            return
        samples = np.ascontiguousarray(samples, dtype=np.int16)
        self._held.cp_feed_far(self.handle, samples.ctypes.data, len(samples),
                               _time(play_time), int(underflow))  # fmt: skip

    def process(
        self, near: Samples, capture_time: float | None = None, overflow: bool = False
    ) -> Samples:
        """As CaptureProcessor.process (whole 10 ms frames out, the rest waits)."""
        n = len(near)
        if len(self._in) < n:
            self._in = np.zeros(n, dtype=np.int16)
            self._out = np.zeros(n + BLOCK, dtype=np.int16)
        self._in[:n] = near
        done = self._lib.cp_process(
            self.handle, self._in.ctypes.data, n, _time(capture_time), int(overflow),
            self._out.ctypes.data,
        )  # fmt: skip
        return self._out[:done].copy()

    def _stat(self) -> list[float]:
        self._held.cp_stats(self.handle, self._stats)
        return list(self._stats)

    # CaptureProcessor's counters, read from C.
    @property
    def frames(self) -> int:
        return int(self._stat()[0])

    @property
    def far_frames(self) -> int:
        return int(self._stat()[1])

    @property
    def far_missing(self) -> int:
        return int(self._stat()[2])

    @property
    def realignments(self) -> int:
        return int(self._stat()[3])

    @property
    def cpu_seconds(self) -> float:
        return self._stat()[7]

    @property
    def gaps_filled(self) -> int:
        return int(self._stat()[8])

    @property
    def gaps_trimmed(self) -> int:
        return int(self._stat()[9])

    @property
    def speech_probability(self) -> float:
        return self._stat()[5]

    @property
    def far_waits(self) -> int:
        """Captured blocks that waited for the speaker's reference (the C path only)."""
        return int(self._lib.cp_far_waits(self.handle))

    @property
    def gain_db(self) -> float:
        return self._stat()[6]

    def stats(self) -> ProcessingStats:
        from hello_tui.media.audio_processing import ProcessingStats

        self._flush_tap()
        s = self._stat()
        return ProcessingStats(
            frames=int(s[0]), far_frames=int(s[1]), far_missing=int(s[2]),
            realignments=int(s[3]), pairing_ms=s[4], speech_probability=s[5],
            gain_db=s[6] if self.config.auto_gain else 0.0, cpu_seconds=s[7],
            echo_cancellation=bool(s[10]), gaps_filled=int(s[8]), tuned=self.tuned,
            gaps_trimmed=int(s[9]),
        )  # fmt: skip


class NativeCapture:
    """One ``device:`` microphone's frames from C (see the module's doc). The owner
    (DeviceSource) reads :meth:`pop` when :attr:`fd` is readable."""

    def __init__(self, voice_probability: float, voice_dbfs: float) -> None:
        lib = library()
        self._lib, self._held = lib, _held
        handle = lib.cap_new(voice_probability, voice_dbfs)
        if not handle:
            raise OSError("no eventfd for the capture path")
        self.handle = handle
        self.fd = int(lib.cap_fd(handle))
        # HELLO_TUI_FAR_WAIT=0: blocks never wait for their reference (to measure).
        lib.cap_set_wait(handle, int(os.environ.get("HELLO_TUI_FAR_WAIT") != "0"))
        # HELLO_TUI_PAIR_SETTLE=0: the first block's lag is kept, as in Python (to measure).
        lib.cap_set_settle(handle, int(os.environ.get("HELLO_TUI_PAIR_SETTLE") != "0"))
        self._counters = (ctypes.c_double * 5)()
        self.processor: NativeProcessor | None = None

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle:
            self._lib.cap_free(handle)  # (freed once the last stream bound to it let go)

    def set_processor(self, processor: NativeProcessor | None) -> None:
        self.processor = processor
        self._lib.cap_set_pairing(self.handle, processor.handle if processor else None)

    def listen(self) -> None:
        self._lib.cap_listen(self.handle)

    def set_voice(self, on: bool) -> None:
        self._lib.cap_set_voice(self.handle, int(on))

    def switch(self) -> int:
        return int(self._lib.cap_switch(self.handle))

    def stop(self) -> None:
        self._lib.cap_stop(self.handle)

    def pop(self) -> Samples | None:
        frame = np.empty(FRAME_SAMPLES, dtype=np.int16)
        return frame if self._held.cap_pop(self.handle, frame.ctypes.data) else None

    def take(
        self,
    ) -> tuple[np.ndarray[Any, np.dtype[np.int16]], tuple[float, int, float | None, int, int]]:
        """The frames waiting (rows, oldest first; more may follow: call again while
        it returns a full batch) and :meth:`counters`, in one call into C."""
        frames = np.empty((TAKE, FRAME_SAMPLES), dtype=np.int16)
        n = self._held.cap_take(self.handle, frames.ctypes.data, TAKE, self._counters)
        last, overflows, gap, voice, dropped = self._counters
        gap_ms = None if math.isnan(gap) else gap
        return frames[:n], (last, int(overflows), gap_ms, int(voice), int(dropped))

    def drain_wake(self) -> None:
        """Reset the eventfd's counter (the frames are then popped)."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.fd, 8)

    def counters(self) -> tuple[float, int, float | None, int, int]:
        """(last block's time.monotonic(), overflows, the last switch's gap in ms or
        None, voice blocks, frames dropped because nobody read them)."""
        self._held.cap_counters(self.handle, self._counters)
        last, overflows, gap, voice, dropped = self._counters
        return last, int(overflows), None if math.isnan(gap) else gap, int(voice), int(dropped)

    def bind(self, generation: int, blocksize: int, latency: float) -> Binding:
        """A binding for one pulse record stream of ``generation`` (``latency``: its
        capture latency until the server reports one)."""
        return Binding(self, generation, blocksize, latency)


class Binding:
    """A pulse record stream's side of a :class:`NativeCapture`: its userdata for
    ``cap_pulse_read``. Unbind only after the stream is disconnected."""

    def __init__(
        self, capture: NativeCapture, generation: int, blocksize: int, latency: float
    ) -> None:
        from hello_tui.media import pulse_lib as pa

        lib, raw = capture._lib, pa.lib()
        self._lib = lib
        self.capture = capture  # (kept: the C side counts on it too)

        def address(fn: Any) -> int:
            return ctypes.cast(fn, ctypes.c_void_p).value or 0

        self.handle = lib.cap_bind(capture.handle, generation, blocksize, latency,
                                   address(raw.pa_stream_peek), address(raw.pa_stream_drop),
                                   address(raw.pa_stream_get_latency))  # fmt: skip
        self.callback_address = address(lib.cap_pulse_read)

    @property
    def overflows(self) -> int:
        return int(self._lib.cap_stream_overflows(self.handle)) if self.handle else 0

    def chunk(self, samples: Samples, captured: float) -> None:
        """Feed a captured chunk as the read callback does (tests)."""
        samples = np.ascontiguousarray(samples, dtype=np.int16)
        self._lib.cap_chunk(self.handle, samples.ctypes.data, len(samples), captured)

    def hole(self) -> None:
        """Samples lost before the next chunk, as a hole in the stream says (tests)."""
        self._lib.cap_hole(self.handle)

    def unbind(self) -> None:
        handle, self.handle = self.handle, None
        if handle:
            self._lib.cap_unbind(handle)
