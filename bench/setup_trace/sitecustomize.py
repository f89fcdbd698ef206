"""A call's setup timeline, for bench/setup_timeline.py (never imported by hello-tui).

Put this folder first on ``PYTHONPATH`` with ``HELLO_TUI_SETUP_TRACE=DIR`` and each
hello-tui process writes one line per setup milestone to ``DIR/<command>-<pid>.trace``,
``SETUP <time.time()> <pid> <CPU ms> <label>``: a single clock across processes (the
side-by-side harness stamps its events with ``time.time()`` too). Functions are
wrapped as their modules load (an import hook), so nothing is imported earlier
than hello-tui itself would; only the first few calls of each are written.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import sys
import time

# module -> [(qualname, label, times)]: enter/exit lines of the first `times` calls
TARGETS: dict[str, list[tuple[str, str, int]]] = {
    "hello_tui.session.connect": [
        ("Session.__aenter__", "session ready (signed in)", 1),
        ("Session._warm_audio", "session: audio warm-up started", 1),
    ],
    "hello_tui.media.warmup": [("warm_audio_stack", "audio warm-up (thread)", 1)],
    "hello_tui.media.audio_processing": [
        ("_load_binding", "processing binding", 2),
        ("attach_processing", "attach processing", 1),
    ],
    "hello_tui.call.call": [
        ("Call._run_outgoing", "dial", 1),
        ("Call._new_offer", "offer", 1),
        ("Call._answer_offer", "answer", 1),
        ("Call._run_accept", "accept task", 1),
        ("Call.accept", "accept()", 1),
        ("Call._on_media_connected", "DTLS connected (pc)", 1),
        ("Call._on_first_frame", "first frame decoded", 1),
        ("Call._handle", "inbox", 6),
        ("Call._make_pc", "new pc", 1),
        ("Call.__init__", "Call()", 1),
    ],
    "hello_tui.call.trust": [
        ("CallTrust.stamp_offer", "stamp offer", 1),
        ("CallTrust.announce", "announce", 1),
    ],
    "hello_tui.call.identity_proof": [("stamp", "identity sign", 1)],
    "hello_tui.call.phone": [
        ("Phone._on_incoming", "incoming", 1),
        ("Phone._ring_time_status", "pins judge", 1),
    ],
    "hello_tui.call.media_policy": [
        ("CallMedia.prepare", "media.prepare", 3),
        ("CallMedia._open_endpoints", "open endpoints (thread)", 2),
        ("CallMedia.warm", "warm devices (thread)", 3),
        ("CallMedia._start_opened", "start devices (thread)", 2),
        ("CallMedia.connected", "media connected: mic kept", 1),
    ],
    "hello_tui.call.peer": [("local_description", "SDP + ICE gathering", 1)],
    "hello_tui.signaling.client": [
        ("SignalingClient.call", "req call", 1),
        ("SignalingClient.ringing", "req ringing", 1),
        ("SignalingClient.accept", "req accept", 1),
        ("SignalingClient.answer", "req answer", 1),
        ("SignalingClient._dispatch", "ws rx", 8),
    ],
    "hello_tui.media.sinks": [
        ("DeviceSink.warm", "speaker start", 2),
        ("DeviceSink._callback", "speaker callback (PortAudio thread)", 2),
    ],
    "hello_tui.media.sources": [
        ("DeviceSource.warm", "mic start", 2),
        ("DeviceSource._callback", "mic callback (PortAudio thread)", 60),
        ("DeviceSource.recv", "mic recv", 2),
        ("DeviceSource._push", "mic block on the loop", 2),
    ],
    "hello_tui.media.devices": [
        ("resolve_device", "device lookup", 2),
        ("open_on", "stream open", 2),
        ("start_stream", "stream start", 3),
    ],
    "aiortc.rtcpeerconnection": [
        ("RTCPeerConnection.setRemoteDescription", "setRemoteDescription", 1),
        ("RTCPeerConnection._RTCPeerConnection__connect", "pc connect", 2),
    ],
    "aiortc.rtcicetransport": [("RTCIceTransport.start", "ICE checks", 1)],
    "aiortc.rtcdtlstransport": [
        ("RTCDtlsTransport.start", "DTLS handshake", 1),
        ("RTCDtlsTransport._setup_srtp", "SRTP keys", 1),
        ("RTCDtlsTransport._send_rtp", "RTP out", 2),
        ("RTCDtlsTransport._handle_rtp_data", "RTP in", 2),
        ("RTCDtlsTransport._write_ssl", "DTLS flight out", 4),
        ("RTCDtlsTransport._recv_next", "DTLS flight in", 4),
        ("RTCDtlsTransport._validate_peer_identity", "DTLS peer fingerprint", 1),
        ("RTCCertificate.generateCertificate", "DTLS certificate", 3),
    ],
    "hello_tui.media.aiortc_adapter": [("warm_up", "aiortc warm-up (thread)", 2)],
    "aioice.ice": [
        ("Connection.gather_candidates", "aioice gather", 1),
        ("Connection.check_start", "STUN check", 4),
        ("Connection.request_received", "STUN request in", 4),
        ("Connection.check_complete", "STUN check complete", 4),
        ("StunProtocol.datagram_received", "udp in", 8),
    ],
    "aioice.stun": [("Transaction.response_received", "STUN response in", 4)],
}


_fd: list[int] = []


def _say(label: str) -> None:
    # A file of its own: PortAudio's probe silences fd 2 meanwhile (media/quiet.py).
    if not _fd:
        role = sys.argv[1] if len(sys.argv) > 1 else "x"
        path = os.path.join(os.environ["HELLO_TUI_SETUP_TRACE"], f"{role}-{os.getpid()}.trace")
        _fd.append(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    cpu = time.process_time() * 1000  # the process's CPU so far: busy, or waiting its turn?
    os.write(_fd[0], f"SETUP {time.time():.6f} {os.getpid()} {cpu:.1f} {label}\n".encode())


_calling: list[bool] = []  # from the first dial / incoming call on, imports are listed


def _wrap(fn, label: str, times: int):
    left = [times]

    def describe(args: tuple) -> str:
        if label in ("inbox", "ws rx") and len(args) > 1:
            arg = args[1]
            if isinstance(arg, str):  # a raw frame: its type
                head = arg[:60]
                return f"{label} {head.split(',')[0]}"
            return f"{label} {type(arg).__name__}"
        return label

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args, **kwargs):
            if left[0] <= 0:
                return await fn(*args, **kwargs)
            left[0] -= 1
            name = describe(args)
            if label in ("dial", "incoming"):
                _calling.append(True)
            _say(f"{name} >")
            try:
                return await fn(*args, **kwargs)
            finally:
                _say(f"{name} <")

        return awrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if left[0] <= 0:
            return fn(*args, **kwargs)
        left[0] -= 1
        name = describe(args)
        _say(f"{name} >")
        try:
            return fn(*args, **kwargs)
        finally:
            _say(f"{name} <")

    return wrapper


def _patch(module) -> None:
    for qualname, label, times in TARGETS.get(module.__name__, ()):
        owner, _, attr = qualname.rpartition(".")
        obj = getattr(module, owner) if owner else module
        fn = obj.__dict__.get(attr) if owner else getattr(module, attr, None)
        if fn is None:
            _say(f"(no {module.__name__}.{qualname})")
            continue
        if isinstance(fn, staticmethod):
            setattr(obj, attr, staticmethod(_wrap(fn.__func__, label, times)))
        elif isinstance(fn, classmethod):
            setattr(obj, attr, classmethod(_wrap(fn.__func__, label, times)))
        else:
            setattr(obj, attr, _wrap(fn, label, times))


class _Loader(importlib.abc.Loader):
    def __init__(self, inner) -> None:
        self.inner = inner

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module) -> None:
        self.inner.exec_module(module)
        _patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if _calling and not name.startswith("encodings"):
            _say(f"import {name}")  # imported on the call path
        if name not in TARGETS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def _gc(phase: str, info: dict) -> None:
    # A collection on the call's path: how long each pause took, and of which generation.
    if _calling and _gc_left[0] > 0:
        if phase == "stop":
            _gc_left[0] -= 1
        _say(f"gc gen{info['generation']} {'>' if phase == 'start' else '<'}")


_gc_left = [40]

if os.environ.get("HELLO_TUI_SETUP_TRACE"):
    sys.meta_path.insert(0, _Finder())
    import gc

    gc.callbacks.append(_gc)
