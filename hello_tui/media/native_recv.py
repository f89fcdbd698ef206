"""The audio receive path in C (``recv_path.cpp``, in the AEC3 shim's library): a thin
ctypes wrapper.

With the speaker's blocks in C (the pulse backend's default) and unless
``HELLO_TUI_NATIVE_RECV=0`` (the A/B knob), a thread of C reads the ICE pair's socket
while the call's path allows it (a direct UDP pair, DTLS up, the audio stream known: the
adapter decides, ``aiortc_adapter._NativeReceiver``): the stream's SRTP packets are
unprotected, counted, put through the jitter buffer, decoded and played there, and the
event loop is not woken per packet. Every other datagram comes back to Python through a
bounded ring. This module knows nothing of aiortc: it is handed addresses (the receiver's
libopus state and ``opus_decode``, a libsrtp session and ``srtp_unprotect``, the playout
buffer), a socket, the stream's SSRC and payload type, and it moves the jitter buffer's
and the receiver statistics' state in and out.
"""

from __future__ import annotations

import ctypes
import os
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from hello_tui.media import aec3_tuned, capture_native

__all__ = [
    "KNOB", "NativeRecv", "RecvCounters", "available", "consume", "consumers", "enabled", "library",
]  # fmt: skip

KNOB = "HELLO_TUI_NATIVE_RECV"
MAX_HELD = 256  # recv_path.cpp's kMaxHeld: a larger jitter buffer capacity stays Python
MAX_PAYLOAD = 1500  # recv_path.cpp's kMaxPayload
SLOT = 2048  # recv_path.cpp's kSlot: the ring's datagrams
JITTER_FIELDS = 24
STATS_FIELDS = 12
COUNTER_FIELDS = 18
WINDOW = 128

_lib: Any = None
_held: Any = None
# The sinks whose speaker plays from C (DeviceSink on the pulse backend): each answers
# ``track`` (what it plays), ``native_playout()`` (the C playout buffer, or None while it
# cannot take PCM from C) and ``native_received(frames, samples)`` (what C played for it).
_CONSUMERS: weakref.WeakSet[Any] = weakref.WeakSet()


def consume(sink: Any) -> None:
    """``sink`` may be fed by the receive path in C (see ``_CONSUMERS``)."""
    _CONSUMERS.add(sink)


def consumers() -> list[Any]:
    return list(_CONSUMERS)


def library() -> Any:
    """The shim's library with the receive path's functions (aec3_tuned.ShimUnavailable)."""
    global _lib, _held
    lib, held = capture_native.handles()
    if _lib is lib:
        return _lib
    if not hasattr(lib, "rp_new") or not hasattr(lib, "po_push"):
        raise aec3_tuned.ShimUnavailable("built without the receive path")
    vp, c_int, u32, dp = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_void_p
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "rp_new": (vp, [vp, vp, dp]),
        "rp_free": (None, [vp]),
        "rp_stop": (None, [vp]),
        "rp_ring_fd": (c_int, [vp]),
        "rp_set_jitter": (None, [vp, dp, dp, c_int]),
        "rp_hold": (c_int, [vp, c_int, u32, ctypes.c_char_p, c_int]),
        "rp_get_jitter": (c_int, [vp, dp, dp]),
        "rp_held": (c_int, [vp, c_int, dp, vp]),
        "rp_set_stats": (None, [vp, dp]),
        "rp_get_stats": (None, [vp, dp]),
        "rp_counters": (None, [vp, dp]),
        "rp_test_add": (None, [vp, c_int, u32, ctypes.c_char_p, c_int, ctypes.c_double]),
        "rp_test_packet": (None, [vp, ctypes.c_char_p, c_int, ctypes.c_double, ctypes.c_double]),
        "rp_test_take": (c_int, [vp, vp, c_int]),
        "rp_start": (c_int, [vp, c_int, u32, c_int, vp, vp, vp]),
        "rp_ring_pop": (c_int, [vp, vp, vp, c_int, ctypes.POINTER(c_int)]),
    }
    # CDLL (the GIL given away) for what joins the thread or decodes; PyDLL for the
    # reads of a few counters (a lock the thread holds for one packet at most).
    capture_native.bind(signatures, lib, held)
    _lib, _held = lib, held
    return lib


def available() -> bool:
    """The shim has the receive path (built with ``recv_path.cpp``, loadable)."""
    return capture_native.loads(library)


def enabled() -> bool:
    """The shim has the receive path and ``HELLO_TUI_NATIVE_RECV`` is not ``0``."""
    return os.environ.get(KNOB) != "0" and available()


@dataclass(frozen=True, slots=True)
class RecvCounters:
    """What C did so far (``rp_counters``)."""

    wire_bytes: int  # the stream's SRTP datagrams (the transport's rx counters)
    wire_packets: int
    rtp_packets: int  # unprotected and parsed: the receiver's
    auth_failures: int  # SRTP authentication failures (dropped)
    replays: int  # SRTP replays (dropped)
    malformed: int  # RTP that does not parse, or a payload over 1500 bytes (dropped)
    to_python: int  # other datagrams handed to the loop
    ring_drops: int  # of those, dropped: the ring full, or over 2048 bytes
    read_errors: int
    frames: int  # decoded frames pushed to the playout
    samples: int
    decode_errors: int
    failed: bool  # the socket failed: Python takes over
    last_arrival: float  # time.time() of the last RTP packet, 0 before one
    cpu_seconds: float  # the thread's CPU on the stream's packets
    held: int  # packets the jitter buffer holds


def _doubles(n: int) -> Any:
    return (ctypes.c_double * n)()


class NativeRecv:
    """One receive path: a jitter buffer and decoder in C, and its thread once started."""

    def __init__(
        self, decoder: int, decode_fn: int, tuning: tuple[float, ...], *, keep: tuple[Any, ...]
    ) -> None:
        """``tuning``: min_depth_ms, max_depth_ms, capacity, max_conceal_ms, decode_fec;
        ``keep``: what owns ``decoder`` (and later the session and the playout)."""
        self._keep = keep
        lib = library()
        self._lib, self._held = lib, _held
        t = (ctypes.c_double * 5)(*tuning)
        handle = lib.rp_new(decoder, decode_fn, t)
        if not handle:
            raise OSError("no eventfd for the receive path")
        self.handle: int | None = handle
        self.ring_fd = int(lib.rp_ring_fd(handle))
        self._counters = _doubles(COUNTER_FIELDS)
        self._stats = _doubles(STATS_FIELDS)
        self._jitter = _doubles(JITTER_FIELDS)
        self._delays = _doubles(WINDOW)
        self._out = ctypes.create_string_buffer(SLOT)
        self._host = ctypes.create_string_buffer(64)
        self._port = ctypes.c_int(0)
        self.started = False

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        handle, self.handle = self.handle, None
        if handle:
            self._lib.rp_free(handle)  # (stops and joins the thread first)

    def _live(self) -> int:
        if self.handle is None:
            raise OSError("receive path closed")
        return self.handle

    def start(
        self, fd: int, ssrc: int, pt: int, srtp: int, unprotect_fn: int, playout: int,
        *, keep: tuple[Any, ...],
    ) -> bool:  # fmt: skip
        """Read (a dup of) socket ``fd`` on C's thread from now on."""
        self._keep = (*self._keep, *keep)
        ok = self._lib.rp_start(self._live(), fd, ssrc & 0xFFFF_FFFF, pt, srtp, unprotect_fn,
                                playout) == 0  # fmt: skip
        self.started = self.started or ok
        return bool(ok)

    def stop(self) -> None:
        """Stop the thread (returns once it is joined: no packet is on its way after)."""
        if self.handle is not None:
            self._lib.rp_stop(self.handle)

    def pop(self) -> tuple[bytes, tuple[str, int]] | None:
        """The next datagram for Python and its sender's address, or None."""
        n = self._held.rp_ring_pop(
            self._live(), self._out, self._host, 64, ctypes.byref(self._port)
        )
        if n < 0:
            return None
        return self._out.raw[:n], (self._host.value.decode(), int(self._port.value))

    def counters(self) -> RecvCounters:
        self._held.rp_counters(self._live(), self._counters)
        c = list(self._counters)
        return RecvCounters(
            wire_bytes=int(c[0]), wire_packets=int(c[1]), rtp_packets=int(c[2]),
            auth_failures=int(c[3]), replays=int(c[4]), malformed=int(c[5]),
            to_python=int(c[6]), ring_drops=int(c[7]), read_errors=int(c[8]), frames=int(c[9]),
            samples=int(c[10]), decode_errors=int(c[11]), failed=bool(c[12]),
            last_arrival=c[13], cpu_seconds=c[14], held=int(c[15]),
        )  # fmt: skip

    # --- the receiver statistics (aiortc's StreamStatistics fields, as numbers)
    def set_stats(self, values: list[float]) -> None:
        self._held.rp_set_stats(self._live(), (ctypes.c_double * STATS_FIELDS)(*values))

    def stats(self) -> list[float]:
        self._held.rp_get_stats(self._live(), self._stats)
        return list(self._stats)

    # --- the jitter buffer's state (SpeechJitterBuffer's fields, as numbers)
    def set_jitter(
        self, fields: list[float], delays: list[float], held: list[tuple[int, int, bytes]]
    ) -> bool:
        """The buffer's state and held packets (seq, timestamp, payload); False: a held
        packet did not fit (the caller keeps Python's buffer)."""
        d = (ctypes.c_double * WINDOW)(*delays[-WINDOW:])
        self._held.rp_set_jitter(self._live(), (ctypes.c_double * JITTER_FIELDS)(*fields), d,
                                 min(len(delays), WINDOW))  # fmt: skip
        return all(
            self._held.rp_hold(self._live(), seq, ts, data, len(data)) == 0
            for seq, ts, data in held
        )

    def jitter(self) -> tuple[list[float], list[float], list[tuple[int, int, bytes]]]:
        n = self._held.rp_get_jitter(self._live(), self._jitter, self._delays)
        fields = list(self._jitter)
        held = []
        out = ctypes.create_string_buffer(MAX_PAYLOAD)
        seq_ts = _doubles(2)
        for i in range(int(fields[20])):
            length = self._held.rp_held(self._live(), i, seq_ts, out)
            if length >= 0:
                held.append((int(seq_ts[0]), int(seq_ts[1]), out.raw[:length]))
        return fields, list(self._delays[:n]), held

    # --- tests
    def test_add(self, seq: int, timestamp: int, payload: bytes, now: float) -> None:
        """A payload through the buffer and the decoder at time.monotonic() ``now``."""
        self._lib.rp_test_add(self._live(), seq, timestamp & 0xFFFF_FFFF, payload, len(payload),
                              now)  # fmt: skip

    def test_packet(self, packet: bytes, wall: float, now: float) -> None:
        """A plain RTP packet through the parse, the statistics and the buffer."""
        self._lib.rp_test_packet(self._live(), packet, len(packet), wall, now)

    def test_take(self) -> np.ndarray:
        """The PCM decoded so far (no playout: collected), taken."""
        out = np.zeros(48_000 * 10, dtype=np.int16)
        pieces = []
        while True:
            n = self._lib.rp_test_take(self._live(), out.ctypes.data, len(out))
            if n <= 0:
                break
            pieces.append(out[:n].copy())
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
