"""A libopus encoder through ``ctypes``, set up as FFmpeg's libopus wrapper would be.

The send path encoded through PyAV's ``CodecContext("libopus")``, which loads
all of FFmpeg (and its video codecs) for one ``opus_encode`` per 20 ms. This
calls the same system ``libopus.so.0`` directly (loaded and reported as by
:mod:`hello_tui.media.opus_decoder`, one :class:`OpusError`), with the CTLs
FFmpeg's ``libopusenc.c`` sets for the options the adapter passed it
(``application=voip``, ``b``, ``fec``, ``packet_loss``,
``compression_level``), and its defaults for the rest: unconstrained VBR, no
DTX, phase inversion allowed, no bandwidth cap. ``tests/media/test_opus_encoder.py``
reads the settings back, and checks that the packets decode to the input
and carry LBRR when FEC is on.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np
import numpy.typing as npt

from hello_tui.media.opus_decoder import OpusError, _error, _lib

__all__ = ["APPLICATION_VOIP", "OpusEncoder"]

APPLICATION_VOIP = 2048
MAX_PACKET = 4000  # bytes: libopus's recommended output buffer (opus_encode docs)

# opus_defines.h request codes: SET_x, and GET_x = SET_x + 1.
SET_BITRATE = 4002
SET_VBR = 4006
SET_COMPLEXITY = 4010
SET_INBAND_FEC = 4012
SET_PACKET_LOSS_PERC = 4014
SET_DTX = 4016
SET_VBR_CONSTRAINT = 4020
GET_LOOKAHEAD = 4027
SET_PHASE_INVERSION_DISABLED = 4046


@cache
def _encoder_lib() -> ctypes.CDLL:
    lib = _lib()
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [
        ctypes.c_int32,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.POINTER(ctypes.c_int),
    ]
    lib.opus_encoder_destroy.restype = None
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,  # const opus_int16 *pcm: a numpy array's address
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int32,
    ]
    lib.opus_encoder_ctl.restype = ctypes.c_int  # variadic: arguments typed per call
    return lib


class OpusEncoder:
    """One libopus encoder: ``encode`` one frame of int16 PCM (interleaved) into a packet."""

    def __init__(
        self,
        rate: int = 48_000,
        channels: int = 1,
        *,
        bitrate: int = 32_000,
        fec: bool = True,
        packet_loss_pct: int = 10,
        complexity: int = 10,
        application: int = APPLICATION_VOIP,
    ) -> None:
        lib = _encoder_lib()
        err = ctypes.c_int(0)
        state = lib.opus_encoder_create(rate, channels, application, ctypes.byref(err))
        if err.value != 0 or not state:
            raise OpusError(f"opus_encoder_create: {_error(err.value)}")
        self._state: int | None = state
        self.rate = rate
        self.channels = channels
        self._out = ctypes.create_string_buffer(MAX_PACKET)
        # FFmpeg's libopus_configure_encoder, in its order, with its defaults.
        self._set(SET_BITRATE, bitrate)
        self._set(SET_COMPLEXITY, max(0, min(10, complexity)))
        self._set(SET_VBR, 1)
        self._set(SET_VBR_CONSTRAINT, 0)
        self._set(SET_PACKET_LOSS_PERC, max(0, min(100, packet_loss_pct)))
        self._set(SET_INBAND_FEC, 1 if fec else 0)
        self._set(SET_DTX, 0)
        self._set(SET_PHASE_INVERSION_DISABLED, 0)

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        if self._state is not None:
            _encoder_lib().opus_encoder_destroy(self._state)
            self._state = None

    def _set(self, request: int, value: int) -> None:
        code = _encoder_lib().opus_encoder_ctl(
            ctypes.c_void_p(self._live()), ctypes.c_int(request), ctypes.c_int32(value)
        )
        if code != 0:
            raise OpusError(f"opus_encoder_ctl({request}, {value}): {_error(code)}")

    def get(self, request: int) -> int:
        """A ``GET`` CTL's value (``SET_x + 1``, e.g. ``SET_BITRATE + 1``)."""
        value = ctypes.c_int32(0)
        code = _encoder_lib().opus_encoder_ctl(
            ctypes.c_void_p(self._live()), ctypes.c_int(request), ctypes.byref(value)
        )
        if code != 0:
            raise OpusError(f"opus_encoder_ctl({request}): {_error(code)}")
        return value.value

    def _live(self) -> int:
        if self._state is None:
            raise OpusError("encoder closed")
        return self._state

    def native(self) -> tuple[int, int]:
        """(this encoder's libopus state, ``opus_encode``'s address in the library that
        made it): what the send path in C encodes with (media/native_send.py), so a
        frame encoded there continues this encoder's stream. Only one side may encode at
        a time; the state stays this object's (freed by :meth:`close`)."""
        address = ctypes.cast(_encoder_lib().opus_encode, ctypes.c_void_p).value
        assert address is not None
        return self._live(), address

    def encode(self, pcm: npt.NDArray[np.int16]) -> bytes:
        """One frame (2.5-60 ms; 20 ms here) of interleaved int16 ``pcm``."""
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        n = _encoder_lib().opus_encode(
            self._live(), pcm.ctypes.data, len(pcm) // self.channels, self._out, MAX_PACKET
        )
        if n < 0:
            raise OpusError(f"opus_encode: {_error(n)}")
        return ctypes.string_at(self._out, n)
