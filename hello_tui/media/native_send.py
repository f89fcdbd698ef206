"""The audio send path in C (``send_path.cpp``, in the AEC3 shim's library): a thin ctypes
wrapper.

With the microphone's read callback in C (the default) and unless
``HELLO_TUI_NATIVE_SEND=0`` (the A/B knob), the capture thread itself encodes,
packetises, protects and sends each 20 ms frame (or each 10 ms block: ``samples`` 480,
``[audio] ptime_ms`` 10) while the call's path allows it (a direct
UDP pair, DTLS up, not muted: the adapter decides, ``aiortc_adapter._NativeStretch``), and
the event loop is not woken per frame. This module knows nothing of aiortc: it is handed
addresses (the sender's libopus state and ``opus_encode``, a libsrtp session and
``srtp_protect``), a socket, the RTP fields to go on from, and gives back the state.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from hello_tui.media import aec3_tuned, capture_native
from hello_tui.media.audio_format import FRAME_SAMPLES, Samples

SHORT_SAMPLES = FRAME_SAMPLES // 2  # a 10 ms packet's samples (capture_path.cpp's kBlock)

__all__ = ["KNOB", "SHORT_SAMPLES", "NativeSend", "SendState", "available", "enabled", "library"]

KNOB = "HELLO_TUI_NATIVE_SEND"
PACKET_BUFFER = 4400  # send_path.cpp's largest packet (header, extensions, Opus, SRTP trailer)

_lib: Any = None
_held: Any = None


def library() -> Any:
    """The shim's library with the send path's functions (aec3_tuned.ShimUnavailable)."""
    global _lib, _held
    lib, held = capture_native.handles()
    if _lib is lib:
        return _lib
    if not hasattr(lib, "sp_new") or not hasattr(lib, "cap_set_send"):
        raise aec3_tuned.ShimUnavailable("built without the send path")
    vp, c_int, u32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "sp_new": (vp, [vp, vp, vp, vp, c_int]),
        "sp_free": (None, [vp]),
        "sp_fd": (c_int, [vp]),
        "sp_samples": (c_int, [vp]),
        "sp_set_peer": (c_int, [vp, c_int, ctypes.c_char_p, c_int]),
        # (pt, ssrc, seq, timestamp, mid element, its length, abs-send-time id, level id)
        "sp_set_rtp": (None, [vp, c_int, u32, c_int, u32, ctypes.c_char_p, c_int, c_int, c_int]),
        "sp_state": (None, [vp, ctypes.POINTER(ctypes.c_double)]),
        "sp_packet": (c_int, [vp, vp, ctypes.c_uint64, c_int, vp]),
        "cap_set_send": (c_int, [vp, vp, vp, c_int]),
    }
    # CDLL (the GIL given away) for what may wait for a captured block's processing
    # (cap_set_send takes the capture's block lock) or encodes; PyDLL for the snapshot.
    capture_native.bind(signatures, lib, held)
    _lib, _held = lib, held
    return lib


def available() -> bool:
    """The shim has the send path (built with ``send_path.cpp``, loadable)."""
    return capture_native.loads(library)


def enabled() -> bool:
    """The shim has the send path and ``HELLO_TUI_NATIVE_SEND`` is not ``0``."""
    return os.environ.get(KNOB) != "0" and available()


@dataclass(frozen=True, slots=True)
class SendState:
    """What C did in one stretch (``sp_state``)."""

    seq: int  # the next packet's sequence number
    timestamp: int  # the next packet's RTP timestamp
    frames: int  # frames taken (each one packet of NativeSend.samples, sent or lost on the wire)
    packets: int  # the SR's packet count over the stretch
    octets: int  # the SR's payload octets over the stretch
    ntp: int  # the last packet's NTP time (64-bit), 0 before one
    rtp: int  # the last packet's RTP timestamp
    wire_bytes: int  # SRTP bytes handed to the socket (the transport's counters)
    wire_packets: int
    send_errors: int  # sendto failures (the packet lost)
    failed: bool  # C gave up (its eventfd was written): Python takes over
    level: int  # the last frame's RFC 6465 level (dBov, -127..0)
    cpu_seconds: float  # the capture thread's CPU in the send path


class NativeSend:
    """One stretch of C sending for one sender (see the module's doc)."""

    def __init__(
        self, encoder: int, encode_fn: int, srtp: int, protect_fn: int, *,
        keep: tuple[Any, ...], samples: int = FRAME_SAMPLES,
    ) -> None:  # fmt: skip
        """``keep``: what owns ``encoder`` and ``srtp`` (they must outlive this object);
        ``samples``: a packet's, FRAME_SAMPLES (20 ms) or SHORT_SAMPLES (10 ms)."""
        self.handle: int | None = None
        self._capture: Any = None  # the NativeCapture it is attached to (kept alive by it)
        if samples not in (FRAME_SAMPLES, SHORT_SAMPLES):
            raise ValueError(f"a packet of {samples} samples: 480 or 960")
        self._keep = keep
        lib = library()
        self._lib, self._held = lib, _held
        handle = lib.sp_new(encoder, encode_fn, srtp, protect_fn, samples)
        if not handle:
            raise OSError("no eventfd for the send path")
        self.handle = handle
        self.fd = int(lib.sp_fd(handle))
        self.samples = int(lib.sp_samples(handle))  # the RTP timestamp's step a packet
        self._state = (ctypes.c_double * 14)()
        self._out = ctypes.create_string_buffer(PACKET_BUFFER)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        self.detach()
        handle, self.handle = self.handle, None
        if handle:
            self._lib.sp_free(handle)

    def _live(self) -> int:
        if self.handle is None:
            raise OSError("send path closed")
        return self.handle

    def set_peer(self, fd: int, host: str, port: int) -> bool:
        """Send on (a dup of) socket ``fd`` to ``host``:``port`` (numeric)."""
        return bool(self._lib.sp_set_peer(self._live(), fd, host.encode(), port) == 0)

    def set_rtp(
        self, pt: int, ssrc: int, seq: int, timestamp: int, mid: bytes, abs_id: int, level_id: int
    ) -> None:
        """Go on from ``seq``/``timestamp``; ``mid``: the mid extension's element (header
        byte and value) or b""; an id 0: that extension is not written."""
        self._lib.sp_set_rtp(self._live(), pt, ssrc & 0xFFFF_FFFF, seq & 0xFFFF,
                             timestamp & 0xFFFF_FFFF, mid, len(mid), abs_id, level_id)  # fmt: skip

    def attach(self, capture: Any) -> bool:
        """The capture's frames come here from now on; False (nothing changed) while
        frames already wait for Python (they go first, in order)."""
        ok = bool(
            self._lib.cap_set_send(capture.handle, self._lib.sp_frame, self._live(), self.samples)
        )
        if ok:
            self._capture = capture
        return ok

    def detach(self) -> None:
        """The frames go to Python again (returns once no frame is on its way here)."""
        capture, self._capture = self._capture, None
        if capture is not None and capture.handle:
            self._lib.cap_set_send(capture.handle, None, None, 0)

    @property
    def attached(self) -> bool:
        return self._capture is not None

    def state(self) -> SendState:
        self._held.sp_state(self._live(), self._state)
        s = list(self._state)
        return SendState(
            seq=int(s[0]), timestamp=int(s[1]), frames=int(s[2]), packets=int(s[3]),
            octets=int(s[4]), ntp=(int(s[5]) << 32) | int(s[6]), rtp=int(s[7]),
            wire_bytes=int(s[8]), wire_packets=int(s[9]), send_errors=int(s[10]),
            failed=bool(s[11]), level=int(s[12]), cpu_seconds=s[13],
        )  # fmt: skip

    def packet(self, pcm: Samples, ntp: int, *, protect: bool = False) -> bytes:
        """The packet C sends for ``pcm`` (one mono frame of ``samples``) at NTP time
        ``ntp``, plain or SRTP; advances as a send does (tests pin it to the Python path)."""
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        if len(pcm) != self.samples:
            raise ValueError(f"one mono frame of {self.samples} samples")
        n = self._lib.sp_packet(self._live(), pcm.ctypes.data, ntp, int(protect), self._out)
        if n < 0:
            raise OSError("the send path could not build the packet")
        return self._out.raw[:n]
