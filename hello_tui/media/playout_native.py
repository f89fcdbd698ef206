"""The speaker's per-block path in C (``speaker_path.cpp``, in the AEC3 shim's library).

Two objects, each a thin ctypes wrapper:

* :class:`NativePlayout` — :class:`~hello_tui.media.playout.PlayoutBuffer` in C (the same
  samples and counters out for the same pushes and pulls: tests/media/test_speaker_path.py),
  with its surface (``push``, ``pull``, ``depth``, ``target``, the counters, ``stats``).
* :class:`NativeSpeaker` — a ``device:`` speaker on the pulse backend end to end:
  libpulse's write callback is C (``spk_pulse_write``), which keeps the blocks' play-time
  timeline, pulls each 10 ms block from the playout buffer and feeds it with its play time
  to the echo canceller's pairing (capture_path.cpp's, when the processing stage is the C
  one). Python never runs on the speaker's thread; the event loop pushes one frame per
  20 ms and reads counters when asked.

Used when the shim is built (with ``speaker_path.cpp``), the C processing stage is
(``capture_native.available``: ``HELLO_TUI_NATIVE_CAPTURE`` is not ``0``), unless
``HELLO_TUI_NATIVE_SPEAKER`` is ``0`` (the A/B knob; the default since session 11:
docs/media.md, "All three in C, the default"). Without the shim everything stays in
Python, as before.
"""

from __future__ import annotations

import ctypes
import math
import os
from dataclasses import fields
from typing import Any

import numpy as np

from hello_tui.media import aec3_tuned, capture_native
from hello_tui.media.audio_format import SAMPLE_RATE, Samples
from hello_tui.media.playout import PlayoutConfig, PlayoutStats

__all__ = ["NativePlayout", "NativeSpeaker", "available", "library"]

# "1": the pulse speaker's write callback and playout buffer in C; "0" or unset: Python.
KNOB = "HELLO_TUI_NATIVE_SPEAKER"
UNDERFLOW_TIMES = 64  # speaker_path.cpp kUnderflowTimes (DeviceSink.underflow_times' maxlen)
TRACE_FIELDS = 9
_STATS = 13

_lib: Any = None
_held: Any = None


def library() -> Any:
    """The shim's library with the speaker path's functions (aec3_tuned.ShimUnavailable)."""
    global _lib, _held
    lib, held = capture_native.handles()
    if _lib is lib:
        return _lib
    if not hasattr(lib, "spk_new"):  # a shim built before speaker_path.cpp was there
        raise aec3_tuned.ShimUnavailable("built without the speaker path")
    vp, c_int, c_double = ctypes.c_void_p, ctypes.c_int, ctypes.c_double
    dp = ctypes.POINTER(c_double)
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "po_config_fields": (c_int, []),
        "po_new": (vp, [dp]),
        "po_free": (None, [vp]),
        "po_push": (None, [vp, vp, c_int, c_double]),
        "po_pull": (None, [vp, c_int, vp]),
        "po_stats": (None, [vp, dp]),
        "spk_new": (vp, [dp]),
        "spk_free": (None, [vp]),
        "spk_playout": (vp, [vp]),
        "spk_set_pairing": (None, [vp, vp]),
        "spk_set_generation": (None, [vp, c_int, c_int]),
        "spk_counters": (c_int, [vp, dp, dp]),
        "spk_trace": (None, [vp, c_int]),
        "spk_trace_take": (c_int, [vp, dp, c_int]),
        "spk_bind": (vp, [vp, c_int, c_int, c_double, c_int, vp, vp, vp]),
        "spk_unbind": (None, [vp]),
        "spk_stream_underflows": (ctypes.c_int64, [vp]),
        "spk_play_time": (None, [vp, c_double, c_double, c_int, dp]),
        "spk_test_report": (None, [vp, c_double]),
        "spk_test_clocks": (None, [vp, vp]),
        "spk_pulse_write": (None, [vp, ctypes.c_size_t, vp]),
        "spk_pulse_underflow": (None, [vp, vp]),
    }
    # PyDLL (the GIL kept) for all: each call only copies under a lock that the speaker's
    # thread holds for one block's pull, never waiting on the GIL.
    capture_native.bind(signatures, lib, held)
    if lib.po_config_fields() != len(fields(PlayoutConfig)):
        raise aec3_tuned.ShimUnavailable("built for another PlayoutConfig")
    _lib, _held = lib, held
    return lib


def available() -> bool:
    """The speaker path in C can be used (built, the C stage on, not refused by the knob)."""
    return (
        os.environ.get(KNOB) != "0" and capture_native.available() and capture_native.loads(library)
    )


def _config(config: PlayoutConfig) -> Any:
    values = [float(getattr(config, f.name)) for f in fields(PlayoutConfig)]
    return (ctypes.c_double * len(values))(*values)


class NativePlayout:
    """PlayoutBuffer in C: ``push`` from the event loop, ``pull`` from the card (tests;
    a :class:`NativeSpeaker`'s is pulled by its write callback in C)."""

    def __init__(self, config: PlayoutConfig | None = None, *, handle: int | None = None,
                 owner: Any = None) -> None:  # fmt: skip
        library()
        self.config = config or PlayoutConfig()
        self._held = _held
        self._owner = owner  # (a speaker's: it keeps the speaker, which frees it)
        self._own = handle is None
        self.handle = _held.po_new(_config(self.config)) if handle is None else handle
        self._stats = (ctypes.c_double * _STATS)()
        self._out = np.zeros(0, dtype=np.int16)

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle and getattr(self, "_own", False):
            self._held.po_free(handle)

    def push(self, samples: Samples, now: float | None = None) -> None:
        samples = np.ascontiguousarray(samples, dtype=np.int16)
        self._held.po_push(self.handle, samples.ctypes.data, len(samples),
                           math.nan if now is None else now)  # fmt: skip

    def pull(self, n: int) -> Samples:
        out = np.empty(n, dtype=np.int16)
        self._held.po_pull(self.handle, n, out.ctypes.data)
        return out

    def _stat(self) -> list[float]:
        self._held.po_stats(self.handle, self._stats)
        return list(self._stats)

    @property
    def depth(self) -> int:
        return int(self._stat()[0])

    @property
    def target(self) -> int:
        return int(self._stat()[1])

    @property
    def priming(self) -> bool:
        return bool(self._stat()[2])

    _priming = priming  # (PlayoutBuffer's name, which bench/m2e_trace reads)

    @property
    def underruns(self) -> int:
        return int(self._stat()[3])

    @property
    def overflow_drops(self) -> int:
        return int(self._stat()[4])

    @property
    def samples_removed(self) -> int:
        return int(self._stat()[5])

    @property
    def samples_inserted(self) -> int:
        return int(self._stat()[6])

    @property
    def accelerated(self) -> int:
        return int(self._stat()[7])

    @property
    def output_dbfs(self) -> float:
        return self._stat()[9]

    @property
    def average_depth(self) -> float:
        """The drift controller's smoothed depth (DriftController.average_depth)."""
        return self._stat()[10]

    @property
    def tolerance(self) -> int:
        return int(self._stat()[11])

    def stats(self) -> PlayoutStats:
        s = self._stat()
        return PlayoutStats(
            depth_ms=s[0] * 1000 / SAMPLE_RATE, underruns=int(s[3]), overflow_drops=int(s[4]),
            samples_removed=int(s[5]), samples_inserted=int(s[6]), output_dbfs=s[9],
            target_ms=s[1] * 1000 / SAMPLE_RATE, jitter_ms=s[8],
        )  # fmt: skip


class NativeSpeaker:
    """One ``device:`` speaker's blocks from C (see the module's doc), for a DeviceSink."""

    def __init__(self, config: PlayoutConfig) -> None:
        lib = library()
        self._lib, self._held = lib, _held
        self.handle = lib.spk_new(_config(config))
        self.playout = NativePlayout(config, handle=lib.spk_playout(self.handle), owner=self)
        self._counters = (ctypes.c_double * 4)()
        self._times = (ctypes.c_double * UNDERFLOW_TIMES)()

    def __del__(self) -> None:
        handle, self.handle = getattr(self, "handle", None), None
        if handle:
            self._lib.spk_free(handle)  # (freed once the last stream bound to it let go)

    def set_pairing(self, processor: Any) -> None:
        """Feed ``processor`` (a capture_native.NativeProcessor) each block, or none."""
        self._held.spk_set_pairing(self.handle, processor.handle if processor else None)

    def set_generation(self, generation: int, *, fresh: bool) -> None:
        self._held.spk_set_generation(self.handle, generation, int(fresh))

    def counters(self) -> tuple[float, int, float | None, float | None, list[float]]:
        """(last block's time.monotonic(), the card's underruns, the last switch's gap in
        ms or None, when what was played so far ends or None, the last underrun times)."""
        n = self._held.spk_counters(self.handle, self._counters, self._times)
        last, under, gap, end = self._counters
        return (last, int(under), None if math.isnan(gap) else gap,
                None if math.isnan(end) else end, list(self._times[:n]))  # fmt: skip

    def trace(self, on: bool) -> None:
        """Keep a record per block for the m2e trace (bench/m2e_trace/)."""
        self._held.spk_trace(self.handle, int(on))

    def trace_take(self, most: int = 256) -> list[tuple[float, ...]]:
        """The kept records, oldest first: (time, n, priming, underflow, card (DAC time
        minus the request's time), the server's underflow messages, depth and target in
        samples before the pull, samples pushed so far)."""
        buf = (ctypes.c_double * (most * TRACE_FIELDS))()
        n = self._held.spk_trace_take(self.handle, buf, most)
        return [tuple(buf[i * TRACE_FIELDS : (i + 1) * TRACE_FIELDS]) for i in range(n)]

    def bind(self, generation: int, blocksize: int, latency: float, raw_timing: bool) -> Binding:
        return Binding(self, generation, blocksize, latency, raw_timing)


class Binding:
    """A pulse playback stream's side of a :class:`NativeSpeaker`: its userdata for
    ``spk_pulse_write`` and ``spk_pulse_underflow``. Unbind only after the stream is
    disconnected and its thread joined."""

    def __init__(self, speaker: NativeSpeaker, generation: int, blocksize: int,
                 latency: float, raw_timing: bool) -> None:  # fmt: skip
        from hello_tui.media import pulse_lib as pa

        lib, raw = speaker._lib, pa.lib()
        self._lib = lib
        self.speaker = speaker  # (kept: the C side counts on it too)
        self.blocksize = blocksize

        def address(fn: Any) -> int:
            return ctypes.cast(fn, ctypes.c_void_p).value or 0

        self.handle = lib.spk_bind(speaker.handle, generation, blocksize, latency,
                                   int(raw_timing), address(raw.pa_stream_write),
                                   address(raw.pa_stream_get_timing_info),
                                   address(raw.pa_stream_get_latency))  # fmt: skip
        self.callback_address = address(lib.spk_pulse_write)
        self.underflow_address = address(lib.spk_pulse_underflow)
        self._out = (ctypes.c_double * 2)()

    @property
    def underflows(self) -> int:
        """The server's underflow messages for this stream."""
        return int(self._lib.spk_stream_underflows(self.handle)) if self.handle else 0

    def play_time(self, measured: float, now: float, told: bool) -> tuple[float, bool]:
        """PulseStream._play_time for one block's request (tests)."""
        self._lib.spk_play_time(self.handle, measured, now, int(told), self._out)
        return self._out[0], bool(self._out[1])

    def unbind(self) -> None:
        handle, self.handle = self.handle, None
        if handle:
            self._lib.spk_unbind(handle)
