"""libpulse through ctypes: the few functions, structs and constants the pulse backend uses.

Only this module touches ctypes (the streams are :mod:`hello_tui.media.pulse_streams`).
``libpulse.so.0`` (Debian ``libpulse0``; PipeWire's pulse server speaks the same
protocol) is loaded on first use; :func:`lib` raises :class:`PulseMissing` when it
cannot be. Structs declare only the leading fields we read: libpulse owns them and
passes pointers, so a prefix is enough. Calls through :func:`lib` release the GIL
(CDLL), which the threaded mainloop's callbacks need to run while Python waits on it;
:func:`held` keeps it, for the few non-blocking calls made inside those callbacks.
"""

from __future__ import annotations

import ctypes
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_uint8,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any

__all__ = [
    "BufferAttr",
    "DeviceInfo",
    "PulseMissing",
    "SampleSpec",
    "ServerInfo",
    "TimingInfo",
    "held",
    "lib",
]

SAMPLE_S16LE = 3
CHANNEL_POSITION_MONO = 0

# pa_context_state_t
CONTEXT_READY, CONTEXT_FAILED, CONTEXT_TERMINATED = 4, 5, 6
CONTEXT_NOAUTOSPAWN = 1
# pa_stream_state_t
STREAM_READY, STREAM_FAILED, STREAM_TERMINATED = 2, 3, 4
# pa_stream_flags_t
STREAM_INTERPOLATE_TIMING = 0x2
STREAM_AUTO_TIMING_UPDATE = 0x8
STREAM_ADJUST_LATENCY = 0x2000
STREAM_START_CORKED = 0x1
SEEK_RELATIVE = 0
OPERATION_RUNNING = 0
ERR_NODATA = 8
UNSET = 0xFFFFFFFF  # (uint32_t) -1: "server's choice" in a buffer attribute


class PulseMissing(OSError):
    """libpulse cannot be loaded."""


class SampleSpec(Structure):
    _fields_ = [("format", c_int), ("rate", c_uint32), ("channels", c_uint8)]


class BufferAttr(Structure):
    _fields_ = [
        ("maxlength", c_uint32),
        ("tlength", c_uint32),
        ("prebuf", c_uint32),
        ("minreq", c_uint32),
        ("fragsize", c_uint32),
    ]


class ServerInfo(Structure):  # pa_server_info, the fields up to the defaults
    _fields_ = [
        ("user_name", c_char_p),
        ("host_name", c_char_p),
        ("server_version", c_char_p),
        ("server_name", c_char_p),
        ("sample_spec", SampleSpec),
        ("default_sink_name", c_char_p),
        ("default_source_name", c_char_p),
    ]


class TimeVal(Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class TimingInfo(Structure):  # pa_timing_info, the fields up to the read index
    _fields_ = [
        ("timestamp", TimeVal),  # when the server took the indices (gettimeofday)
        ("synchronized_clocks", c_int),
        ("sink_usec", c_uint64),
        ("source_usec", c_uint64),
        ("transport_usec", c_uint64),
        ("playing", c_int),
        ("write_index_corrupt", c_int),
        ("write_index", c_int64),
        ("read_index_corrupt", c_int),
        ("read_index", c_int64),
    ]


class DeviceInfo(Structure):  # the common prefix of pa_sink_info and pa_source_info
    _fields_ = [("name", c_char_p), ("index", c_uint32), ("description", c_char_p)]


ContextNotify = CFUNCTYPE(None, c_void_p, c_void_p)
StreamNotify = CFUNCTYPE(None, c_void_p, c_void_p)
StreamRequest = CFUNCTYPE(None, c_void_p, c_size_t, c_void_p)
ServerInfoCb = CFUNCTYPE(None, c_void_p, POINTER(ServerInfo), c_void_p)
DeviceInfoCb = CFUNCTYPE(None, c_void_p, POINTER(DeviceInfo), c_int, c_void_p)
MainloopOnce = CFUNCTYPE(None, c_void_p, c_void_p)

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "pa_threaded_mainloop_new": (c_void_p, []),
    "pa_threaded_mainloop_free": (None, [c_void_p]),
    "pa_threaded_mainloop_start": (c_int, [c_void_p]),
    "pa_threaded_mainloop_stop": (None, [c_void_p]),
    "pa_threaded_mainloop_lock": (None, [c_void_p]),
    "pa_threaded_mainloop_unlock": (None, [c_void_p]),
    "pa_threaded_mainloop_wait": (None, [c_void_p]),
    "pa_threaded_mainloop_signal": (None, [c_void_p, c_int]),
    "pa_threaded_mainloop_get_api": (c_void_p, [c_void_p]),
    "pa_threaded_mainloop_in_thread": (c_int, [c_void_p]),
    "pa_mainloop_api_once": (None, [c_void_p, MainloopOnce, c_void_p]),
    "pa_context_new": (c_void_p, [c_void_p, c_char_p]),
    "pa_context_connect": (c_int, [c_void_p, c_char_p, c_int, c_void_p]),
    "pa_context_disconnect": (None, [c_void_p]),
    "pa_context_unref": (None, [c_void_p]),
    "pa_context_get_state": (c_int, [c_void_p]),
    "pa_context_errno": (c_int, [c_void_p]),
    "pa_context_set_state_callback": (None, [c_void_p, ContextNotify, c_void_p]),
    "pa_context_get_server_info": (c_void_p, [c_void_p, ServerInfoCb, c_void_p]),
    "pa_context_get_sink_info_list": (c_void_p, [c_void_p, DeviceInfoCb, c_void_p]),
    "pa_context_get_source_info_list": (c_void_p, [c_void_p, DeviceInfoCb, c_void_p]),
    "pa_context_get_sink_info_by_name": (c_void_p, [c_void_p, c_char_p, DeviceInfoCb, c_void_p]),
    "pa_context_get_source_info_by_name": (
        c_void_p,
        [c_void_p, c_char_p, DeviceInfoCb, c_void_p],
    ),
    "pa_operation_get_state": (c_int, [c_void_p]),
    "pa_operation_unref": (None, [c_void_p]),
    "pa_strerror": (c_char_p, [c_int]),
    "pa_stream_new": (c_void_p, [c_void_p, c_char_p, POINTER(SampleSpec), c_void_p]),
    "pa_stream_unref": (None, [c_void_p]),
    "pa_stream_get_state": (c_int, [c_void_p]),
    "pa_stream_set_state_callback": (None, [c_void_p, StreamNotify, c_void_p]),
    "pa_stream_set_write_callback": (None, [c_void_p, StreamRequest, c_void_p]),
    "pa_stream_set_read_callback": (None, [c_void_p, StreamRequest, c_void_p]),
    "pa_stream_set_underflow_callback": (None, [c_void_p, StreamNotify, c_void_p]),
    "pa_stream_connect_playback": (
        c_int,
        [c_void_p, c_char_p, POINTER(BufferAttr), c_int, c_void_p, c_void_p],
    ),
    "pa_stream_connect_record": (c_int, [c_void_p, c_char_p, POINTER(BufferAttr), c_int]),
    "pa_stream_disconnect": (c_int, [c_void_p]),
    "pa_stream_write": (
        c_int,
        [c_void_p, c_void_p, c_size_t, c_void_p, c_int64, c_int],
    ),
    "pa_stream_peek": (c_int, [c_void_p, POINTER(c_void_p), POINTER(c_size_t)]),
    "pa_stream_drop": (c_int, [c_void_p]),
    "pa_stream_get_latency": (c_int, [c_void_p, POINTER(c_uint64), POINTER(c_int)]),
    "pa_stream_get_buffer_attr": (POINTER(BufferAttr), [c_void_p]),
    "pa_stream_get_device_name": (c_char_p, [c_void_p]),
    "pa_stream_get_timing_info": (POINTER(TimingInfo), [c_void_p]),
}

# Called from the mainloop's own thread inside a stream callback (its lock held): they
# never block, so they keep the GIL (PyDLL). Through CDLL each call gives the GIL away
# and takes it back, and taking it back waits up to the switch interval (5 ms) while
# the event loop runs Python: three such calls made a 10 ms refill 15 ms late.
IN_CALLBACK = (
    "pa_stream_write",
    "pa_stream_peek",
    "pa_stream_drop",
    "pa_stream_get_latency",
    "pa_stream_get_state",
    "pa_stream_get_timing_info",
)

_lib: Any = None
_held: Any = None


def lib() -> Any:
    """The loaded libpulse with its prototypes declared (PulseMissing when absent)."""
    global _lib
    if _lib is None:
        try:
            handle = ctypes.CDLL("libpulse.so.0")
        except OSError as exc:
            raise PulseMissing(f"libpulse is not installed ({exc})") from None
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = restype, argtypes
        _lib = handle
    return _lib


def held() -> Any:
    """The functions of :data:`IN_CALLBACK`, called without releasing the GIL (PyDLL):
    for a stream callback only, where the mainloop's lock is held and they never block."""
    global _held
    if _held is None:
        lib()  # PulseMissing first
        handle = ctypes.PyDLL("libpulse.so.0")
        for name in IN_CALLBACK:
            fn = getattr(handle, name)
            fn.restype, fn.argtypes = _SIGNATURES[name]
        _held = handle
    return _held
