"""A libopus decoder through ``ctypes``: decode, conceal (PLC) and recover from in-band FEC.

FFmpeg's libopus wrapper (what PyAV and aiortc decode with) never calls
``opus_decode`` with ``decode_fec=1``, so the LBRR copy of packet *N* that
our encoder puts in packet *N+1* was thrown away. This is libopus called
directly: the copy PyAV's wheel bundles when there is one (loaded by path,
loading neither av nor FFmpeg; the same library FFmpeg used), else the
system ``libopus.so.0`` (Debian ``libopus0``); ``opuslib`` is only this
binding, so it is not a dependency. One :class:`OpusDecoder` per stream: PLC and FEC read the
decoder's state, so every frame of the stream must go through the same one.

:func:`has_lbrr` tells whether a packet carries FEC data (libopus 1.5's
``opus_packet_has_lbrr``, in Python: Debian 12 ships 1.3.1), so recoveries
are counted only when there was something to recover from.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.machinery
import os
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["OpusDecoder", "OpusError", "has_lbrr", "libopus_version"]

MAX_FRAME = 5760  # 120 ms at 48 kHz: the longest Opus packet


class OpusError(RuntimeError):
    """libopus is missing or refused a call; the message says which."""


SONAME = "libopus.so.0"


def bundled_libopus() -> str | None:
    """The libopus PyAV's wheel bundles (``av.libs/libopus-*.so*``: 1.6.1 here, where
    Debian 12 ships 1.3.1), found by path: neither av nor FFmpeg is loaded."""
    spec = importlib.machinery.PathFinder.find_spec("av")  # sys.path: never the stand-in
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).parent.glob("av.libs/libopus-*.so*"))
        if found:
            return str(found[-1])
    return None


@cache
def _lib() -> ctypes.CDLL:
    # PyAV's libopus when installed (what FFmpeg encoded and decoded with; ~25 % less
    # CPU per encoded frame than 1.3.1, docs/media.md), else the system's;
    # HELLO_TUI_LIBOPUS=system keeps the system's (A/B). The soname before
    # find_library: that runs `ldconfig -p` in a subprocess (10-80 ms, and the first
    # received packet of a call waits for it on the event loop).
    choice = os.environ.get("HELLO_TUI_LIBOPUS", "").strip().lower()
    bundled = bundled_libopus() if choice != "system" else None
    if bundled is not None:
        with contextlib.suppress(OSError):
            return _prototypes(ctypes.CDLL(bundled))
    try:
        lib = ctypes.CDLL(SONAME)
    except OSError:
        name = ctypes.util.find_library("opus") or SONAME
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise OpusError(f"libopus not found ({name}): install libopus0") from exc
    return _prototypes(lib)


def _prototypes(lib: ctypes.CDLL) -> ctypes.CDLL:
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decoder_destroy.restype = None
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decode.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int32,
        ctypes.POINTER(ctypes.c_int16),
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.opus_strerror.restype = ctypes.c_char_p
    lib.opus_strerror.argtypes = [ctypes.c_int]
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_get_version_string.argtypes = []
    return lib


def libopus_version() -> str:
    return str(_lib().opus_get_version_string().decode())


def _error(code: int) -> str:
    return str(_lib().opus_strerror(code).decode())


class OpusDecoder:
    """One libopus decoder: ``decode`` a packet, ``conceal`` a lost one, ``recover``
    a lost one from the next packet's FEC. Each returns int16 PCM, interleaved,
    ``frame_size`` samples per channel for ``conceal``/``recover``."""

    def __init__(self, rate: int = 48_000, channels: int = 1) -> None:
        lib = _lib()
        err = ctypes.c_int(0)
        state = lib.opus_decoder_create(rate, channels, ctypes.byref(err))
        if err.value != 0 or not state:
            raise OpusError(f"opus_decoder_create: {_error(err.value)}")
        self._state: int | None = state
        self.rate = rate
        self.channels = channels
        self._pcm = (ctypes.c_int16 * (MAX_FRAME * channels))()

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if self._state is not None:
            _lib().opus_decoder_destroy(self._state)
            self._state = None

    def native(self) -> tuple[int, int]:
        """(the decoder's ``OpusDecoder*``, ``opus_decode``'s address) for the receive path
        in C (media/native_recv.py): one decoder state whichever side decodes. This object
        must outlive C's use of it, and only one thread may decode at a time."""
        if self._state is None:
            raise OpusError("decoder closed")
        address = ctypes.cast(_lib().opus_decode, ctypes.c_void_p).value
        assert address is not None
        return self._state, address

    def _run(self, data: bytes | None, frame_size: int, fec: bool) -> np.ndarray:
        if self._state is None:
            raise OpusError("decoder closed")
        size = min(frame_size, MAX_FRAME)
        n = _lib().opus_decode(
            self._state, data, len(data) if data else 0, self._pcm, size, 1 if fec else 0
        )
        if n < 0:
            raise OpusError(f"opus_decode: {_error(n)}")
        pcm = np.frombuffer(memoryview(self._pcm), dtype=np.int16, count=n * self.channels)
        return pcm.copy()

    def decode(self, data: bytes) -> np.ndarray:
        """A received packet (any duration up to 120 ms)."""
        return self._run(data, MAX_FRAME, fec=False)

    def conceal(self, frame_size: int) -> np.ndarray:
        """Packet-loss concealment for ``frame_size`` samples (a multiple of 2.5 ms)."""
        return self._run(None, frame_size, fec=False)

    def recover(self, next_packet: bytes, frame_size: int) -> np.ndarray:
        """The lost packet just before ``next_packet``, from ``next_packet``'s LBRR
        (FEC) data; libopus falls back to concealment when it carries none. Then
        decode ``next_packet`` itself as usual."""
        return self._run(next_packet, frame_size, fec=True)


# Samples per frame (48 kHz) by TOC config >> 3 groups: SILK 10/20/40/60, hybrid 10/20,
# CELT 2.5/5/10/20 ms.
def _frame_samples(toc: int) -> int:
    config = toc >> 3
    if config < 12:  # SILK-only
        return (480, 960, 1920, 2880)[config & 3]
    if config < 16:  # hybrid
        return (480, 960)[config & 1]
    return (120, 240, 480, 960)[config & 3]


def _first_frame(packet: bytes) -> bytes:
    """The first frame's bytes of an Opus packet (RFC 6716 §3.2), b"" if malformed."""
    code = packet[0] & 3
    body = packet[1:]
    if code == 0:
        return body
    if code == 1:
        return body[: len(body) // 2]
    if code == 2:
        if not body:
            return b""
        size, used = body[0], 1
        if size >= 252:
            if len(body) < 2:
                return b""
            size, used = size + 4 * body[1], 2
        return body[used : used + size]
    if not body:  # code 3: frame count byte, optional padding, CBR or VBR sizes
        return b""
    count, vbr, padded = body[0] & 0x3F, body[0] & 0x80, body[0] & 0x40
    pos = 1
    padding = 0
    while padded:
        if pos >= len(body):
            return b""
        p = body[pos]
        pos += 1
        padding += 254 if p == 255 else p
        padded = p == 255
    if count == 0:
        return b""
    if vbr:
        if pos >= len(body):
            return b""
        size = body[pos]
        pos += 1
        if size >= 252:
            if pos >= len(body):
                return b""
            size += 4 * body[pos]
            pos += 1
        return body[pos : pos + size]
    return body[pos : pos + (len(body) - pos - padding) // count]


def has_lbrr(packet: bytes) -> bool:
    """Whether an Opus packet carries FEC (LBRR) data for the packet before it:
    the SILK header's LBRR flag of its first frame (libopus 1.5's
    ``opus_packet_has_lbrr``). CELT-only packets never do."""
    if not packet:
        return False
    toc = packet[0]
    if toc >> 3 >= 16:  # CELT-only
        return False
    frame = _first_frame(packet)
    if not frame:
        return False
    silk_frames = max(1, _frame_samples(toc) // 960)
    lbrr = (frame[0] >> (7 - silk_frames)) & 1
    if toc & 0x4:  # stereo: the side channel's flag follows the mid's
        lbrr |= (frame[0] >> (6 - 2 * silk_frames)) & 1
    return bool(lbrr)
