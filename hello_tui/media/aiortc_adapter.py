"""The one module that touches aiortc internals: a speech jitter buffer, Opus tuning, raw RTT.

aiortc 1.16's audio path is built for robustness, not conversation:

- its audio ``JitterBuffer(capacity=16, prefetch=4)`` releases frame *n* only
  once packet *n+4* arrived (80 ms before the first frame, and 80 ms on every
  frame after it), and a lost packet stalls it until 16 packets pile up
  (~320 ms), after which it releases one frame per packet, so latency stays
  high;
- its ``OpusEncoder`` is fixed at 96 kbit/s stereo, no in-band FEC, no
  expected-loss setting.

This module replaces both **per peer connection**, never globally:
:func:`adapt_peer_connection` shadows the connection's private
``__createTransceiver`` on the instance, so every audio transceiver it makes
gets, on its receiver, a :class:`SpeechJitterBuffer` and a decoder queue that
unpacks its multi-frame releases (:class:`_ExpandingQueue`), and, on its
sender, an ``send()`` wrapper that pre-sets a :class:`SpeechOpusEncoder` when
Opus was negotiated. aiortc internals touched (all name-mangled private
attributes, checked here and by ``tests/media/test_aiortc_adapter.py``):

- ``RTCPeerConnection._RTCPeerConnection__createTransceiver`` (wrapped on the instance)
- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`` (replaced; its ``add(packet)
  -> (pli, JitterFrame | None)`` contract is kept)
- ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue`` / ``__decoder_thread``
  (replaced before the decoder thread starts)
- ``RTCRtpSender._RTCRtpSender__encoder`` (pre-set; aiortc creates one only if None)
- none for the encoder: :class:`SpeechOpusEncoder` is an ``aiortc.codecs.base.Encoder``
  on libopus itself (``opus_encoder.py``), so an audio-only process can run
  without PyAV (``av_standin.py``: docs/media.md, "PyAV out of an audio-only call")
- ``RemoteStreamTrack._queue`` of an audio track (replaced by an
  :class:`~hello_tui.media.eager.EagerQueue` at the connection's first ``track``
  event: :func:`eager_track_queue`)

Separately, :func:`watch_rtcp` *observes* (changes nothing) the RTCP of a
connection's senders to measure the round-trip time per report, unsmoothed:
aiortc's ``roundTripTime`` is an EWMA moving 15 % per report and only counts
a report that answers the very last SR sent. It wraps, on each
``RTCRtpSender`` instance, ``_send_rtcp`` (to note when each SR left) and
``_handle_rtcp_packet`` (to read the RR/SR report blocks about our stream),
and reads ``RTCRtpSender._ssrc`` and ``.kind``.

The quality collector reads two things aiortc keeps private (read only,
through the named functions below, never by attribute elsewhere):

- :func:`negotiated_codecs`: ``RTCRtpTransceiver._codecs`` (what the sender
  encodes with, after negotiation);
- :func:`jitter_counts`: the lost packets our own jitter buffer recovered
  from in-band FEC, and the late ones it dropped (``RTCRtpReceiver.__jitter_buffer``);
- :func:`nominated_candidates`: ``RTCIceTransport._connection`` (the aioice
  ``Connection``) and its ``_nominated`` pairs (aiortc has no candidate-pair
  stats), so aioice is pinned too (:data:`SUPPORTED_AIOICE`).

:func:`gather_every_turn` makes a connection ask every TURN server at once
(aiortc passes aioice only the first): it wraps the instance's
``__createDtlsTransport`` and shadows, on each aioice ``Connection``,
``get_component_candidates`` (reading ``_protocols``, ``_transport_policy``,
clearing ``turn_server``). It is about reaching the peer, not the audio
path, so ``HELLO_TUI_AIORTC_ADAPTER=0`` leaves it on.

The receive path in C (``_NativeReceiver``, with the speaker's blocks in C; knob
``HELLO_TUI_NATIVE_RECV``) reads and writes, on an adapted audio receiver,
``__remote_streams`` (each ``StreamStatistics``'s ``base_seq``, ``max_seq``, ``cycles``,
``packets_received``, ``_jitter_q4``, ``_last_arrival``, ``_last_timestamp``; with
``_clockrate``, which stream is live after an SSRC change), reads ``__codecs``,
``_enabled`` and ``_track``, sets ``__active_ssrc``, derives the rx SRTP key again
(``RTCDtlsTransport._ssl``, ``_role``, ``_srtp_profiles``), adds to the transport's rx
counters, and pauses and resumes asyncio's datagram transport of the pair's
``StunProtocol`` (``pause_reading``/``resume_reading``; on Python 3.11.2, whose datagram
transports have neither, the selector's ``_remove_reader``/``_add_reader`` with the
transport's ``_sock_fd`` and ``_read_ready``, as later 3.11 releases do).

:func:`pace_checks` starts ICE checks four per aioice tick (a 5 ms pacing
instead of 20 ms), shadowing ``Connection._check_periodic`` on the instance
and reading ``Connection._check_list``.

And :func:`choose_host_addresses` wraps aioice's module function
``aioice.ice.get_host_addresses`` (not public API), so a caller can scope
which interface addresses ICE gathers host candidates on.
:func:`interface_addresses` calls the original (the addresses a network change
moves), and :func:`reuse_certificate` sets ``RTCPeerConnection.__certificates``
(a call's renewed transport presents the same DTLS certificate, so the check
code need not change: docs/calls.md, "A new transport within the call").

It is pinned: importing it with another aiortc version raises
:class:`AiortcVersionError`, and adapting an object whose internals are not
where 1.16 keeps them raises :class:`AiortcAdapterError` (never a silent
fallback to the old behaviour). Set ``HELLO_TUI_AIORTC_ADAPTER=0`` to run
aiortc unmodified (benchmarks compare both).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import math
import os
import queue
import socket
import struct
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import aioice
import aioice.ice
import aiortc
import numpy as np
import pylibsrtp
from aioice import Candidate
from aioice.ice import StunProtocol as _Stun
from aiortc import (
    RTCPeerConnection,
    RTCRtpCodecParameters,
    RTCRtpTransceiver,
)
from aiortc.codecs.base import Encoder
from aiortc.codecs.opus import SAMPLE_RATE, SAMPLES_PER_FRAME
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcdtlstransport import State as _DtlsState
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCEncodedFrame, RTCRtpSender
from aiortc.rtp import AnyRtcpPacket, RtcpRrPacket, RtcpSrPacket, RtpPacket
from av import AudioFrame  # the real av, or media/av_standin.py's in an audio-only process
from av.frame import Frame
from av.packet import Packet

from hello_tui.media import av_standin
from hello_tui.media.audio_format import make_frame
from hello_tui.media.eager import EagerQueue, eager_enabled
from hello_tui.media.opus_decoder import OpusDecoder, OpusError, has_lbrr
from hello_tui.media.opus_encoder import OpusEncoder as LibOpusEncoder

__all__ = [
    "SUPPORTED_AIOICE",
    "SUPPORTED_AIORTC",
    "AiortcAdapterError",
    "AiortcVersionError",
    "AudioTuning",
    "RtcpWatch",
    "RttReading",
    "SpeechJitterBuffer",
    "SpeechOpusEncoder",
    "adapt_peer_connection",
    "choose_host_addresses",
    "enabled",
    "fast_enabled",
    "fast_path",
    "gather_every_turn",
    "install_fast_path",
    "interface_addresses",
    "is_adapted",
    "jitter_counts",
    "negotiated_codecs",
    "nominated_candidates",
    "pace_checks",
    "reuse_certificate",
    "rtt_from_report",
    "run_eagerly",
    "watch_rtcp",
]

log = logging.getLogger(__name__)

SUPPORTED_AIORTC = ("1.16.0",)
SUPPORTED_AIOICE = ("0.13",)  # minor series (pyproject: aioice>=0.13,<0.14)


class AiortcVersionError(ImportError):
    """aiortc is not a version this adapter was verified against."""


class AiortcAdapterError(RuntimeError):
    """aiortc's internals are not where the adapter expects them."""


def check_version(version: str) -> None:
    if version not in SUPPORTED_AIORTC:
        raise AiortcVersionError(
            f"hello_tui.media.aiortc_adapter was verified with aiortc {SUPPORTED_AIORTC} "
            f"but aiortc {version} is installed: it patches aiortc internals, so re-check "
            "jitterbuffer.py, codecs/opus.py, rtcrtpreceiver.py, rtcrtpsender.py and "
            "rtcpeerconnection.py, then update SUPPORTED_AIORTC (see docs/media.md)"
        )


def check_aioice_version(version: str) -> None:
    if not any(version == v or version.startswith(v + ".") for v in SUPPORTED_AIOICE):
        raise AiortcVersionError(
            f"hello_tui.media.aiortc_adapter was verified with aioice {SUPPORTED_AIOICE} "
            f"but aioice {version} is installed: it reads aioice internals, so re-check "
            "ice.py (Connection._nominated), then update SUPPORTED_AIOICE (see docs/media.md)"
        )


check_version(aiortc.__version__)
check_aioice_version(aioice.__version__)

_CREATE = "_RTCPeerConnection__createTransceiver"
_JITTER = "_RTCRtpReceiver__jitter_buffer"
_DQUEUE = "_RTCRtpReceiver__decoder_queue"
_TRACK_QUEUE = "_queue"  # RemoteStreamTrack: asyncio.Queue of decoded frames, None ends it
_DTHREAD = "_RTCRtpReceiver__decoder_thread"
_ENCODER = "_RTCRtpSender__encoder"
_TRACK = "_RTCRtpSender__track"
_NEXT_FRAME = "_next_encoded_frame"  # RTCRtpSender: async (codec) -> RTCEncodedFrame | None
_SEND_RTCP = "_send_rtcp"  # RTCRtpSender: async (packets: list) -> None; SRs go out here
_HANDLE_RTCP = "_handle_rtcp_packet"  # RTCRtpSender: async (packet) -> None; RRs come in here
_CODECS = "_codecs"  # RTCRtpTransceiver: list[RTCRtpCodecParameters], [] until negotiated

# What the adapter keeps per connection, beside it (weakly) rather than as attributes on it.
_ADAPTED: weakref.WeakSet[RTCPeerConnection] = weakref.WeakSet()
_CONNECTED = _DtlsState.CONNECTED
_WATCHES: weakref.WeakKeyDictionary[RTCPeerConnection, RtcpWatch] = weakref.WeakKeyDictionary()
_ICE_CONNECTION = "_connection"  # RTCIceTransport: the aioice.Connection
_NOMINATED = "_nominated"  # aioice.Connection: dict[component, CandidatePair]
for _cls, _name in (
    (RTCPeerConnection, _CREATE),
    (RTCRtpSender, _SEND_RTCP),
    (RTCRtpSender, _HANDLE_RTCP),
):
    if not callable(getattr(_cls, _name, None)):  # pragma: no cover - only on an upgrade
        raise AiortcAdapterError(f"aiortc {aiortc.__version__}: {_cls.__name__}.{_name} is gone")

ENABLED: bool | None = None  # None: the HELLO_TUI_AIORTC_ADAPTER environment variable decides


def enabled() -> bool:
    """Whether new peer connections get the adapter (default: yes)."""
    if ENABLED is not None:
        return ENABLED
    return os.environ.get("HELLO_TUI_AIORTC_ADAPTER", "1").strip().lower() not in (
        "0",
        "off",
        "no",
        "false",
    )


@dataclass(frozen=True)
class AudioTuning:
    """Speech settings for the Opus encoder and the receive jitter buffer."""

    bitrate: int = 32_000  # bit/s; Opus VBR aims at it
    fec: bool = True  # in-band FEC (LBRR): the next packet carries a coarse copy
    packet_loss_pct: int = 10  # the loss the encoder expects (drives how much FEC it spends)
    complexity: int = 10  # libopus 0..10; ~1 % of a core at 32 kbit/s mono here
    # The send path in C's packet duration ([audio] ptime_ms; HELLO_TUI_PTIME_MS overrides
    # it for A/Bs): 10 sends each processed 10 ms block as it is made, 10 ms sooner than a
    # 20 ms frame, for twice the packets (docs/media.md, "10 ms packets"). The Python path
    # stays at 20 ms (its frames come to the loop whole).
    ptime_ms: int = 10
    stereo: bool | None = None  # None: as negotiated (the peer's fmtp stereo=1), else mono
    min_depth_ms: int = 20  # the jitter buffer's wait for a missing packet: floor ...
    max_depth_ms: int = 80  # ... and ceiling
    capacity: int = 32  # packets held at most (640 ms of 20 ms frames)
    max_conceal_ms: int = 100  # concealment frames for one gap; beyond, just skip
    # Recover a lost packet from the next one's in-band FEC (any sender's);
    # HELLO_TUI_OPUS_FEC=0 turns it off (benchmarks compare both).
    decode_fec: bool = field(default_factory=lambda: os.environ.get("HELLO_TUI_OPUS_FEC") != "0")


PTIME_KNOB = "HELLO_TUI_PTIME_MS"


def send_ptime_ms(tuning: AudioTuning) -> int:
    """The send path in C's packet duration: ``HELLO_TUI_PTIME_MS`` when it is 10 or 20
    (anything else is ignored, with a log line), else the tuning's (the config's)."""
    value = os.environ.get(PTIME_KNOB)
    if value is None:
        return tuning.ptime_ms
    if value.strip() in ("10", "20"):
        return int(value)
    log.warning("%s=%.20r ignored: 10 or 20", PTIME_KNOB, value)
    return tuning.ptime_ms


# ----------------------------------------------------------------- jitter buffer


def _seq_diff(a: int, b: int) -> int:
    """a - b for 16-bit sequence numbers, in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def _ts_diff(a: int, b: int) -> int:
    """a - b for 32-bit RTP timestamps, signed."""
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


class ConcealFrame(JitterFrame):
    """A lost frame: a one-byte Opus packet (TOC, code 0, no frame data), which
    libopus decodes as packet-loss concealment."""

    def __init__(self, data: bytes, timestamp: int, samples: int = SAMPLES_PER_FRAME) -> None:
        super().__init__(data=data, timestamp=timestamp)
        self.samples = samples  # the lost frame's duration at 48 kHz


class FecFrame(ConcealFrame):
    """The lost frame just before a received packet: ``data`` is that next packet,
    whose in-band FEC (LBRR) data recovers this one (``opus_decode(decode_fec=1)``).
    ``lbrr``: the packet does carry FEC (else libopus conceals). A decoder that
    cannot use FEC gets a plain :class:`ConcealFrame` (:func:`_as_conceal`)."""

    def __init__(
        self, data: bytes, timestamp: int, samples: int = SAMPLES_PER_FRAME, lbrr: bool = False
    ) -> None:
        super().__init__(data=data, timestamp=timestamp, samples=samples)
        self.lbrr = lbrr


def _as_conceal(frame: FecFrame) -> ConcealFrame:
    return ConcealFrame(bytes([frame.data[0] & 0xFC]), frame.timestamp, frame.samples)


def _retimed(frame: JitterFrame, timestamp: int) -> JitterFrame:
    """The same frame (kind, data) at another timestamp."""
    if isinstance(frame, FecFrame):
        return FecFrame(frame.data, timestamp, frame.samples, frame.lbrr)
    if isinstance(frame, ConcealFrame):
        return ConcealFrame(frame.data, timestamp, frame.samples)
    return JitterFrame(data=frame.data, timestamp=timestamp)


class JitterBundle(JitterFrame):
    """Several consecutive frames released at once (data/timestamp: the first's)."""

    def __init__(self, parts: list[JitterFrame]) -> None:
        super().__init__(data=parts[0].data, timestamp=parts[0].timestamp)
        self.parts = parts


@dataclass
class JitterStats:
    released: int = 0
    concealed: int = 0  # concealment frames emitted (FEC frames included)
    recovered: int = 0  # of those, FEC frames whose next packet carries FEC data
    gaps: int = 0  # gaps skipped
    late: int = 0  # packets that came after their gap was skipped (dropped)
    duplicates: int = 0
    resets: int = 0
    target_ms: float = 0.0
    jitter_ms: float = 0.0  # the lateness the target was derived from


class SpeechJitterBuffer:
    """An audio jitter buffer for conversation, with aiortc's ``add()`` contract.

    Driven by packet arrivals (aiortc has no playout clock here; the sink's
    playout buffer smooths timing). In-order packets are released at once —
    the first frame at the first packet. A missing packet is waited for only
    until more than ``target`` ms of later audio has arrived (so a packet
    overtaken by the next one is still in time); then the gap is skipped
    and one concealment frame per lost 20 ms (up to ``max_conceal_ms``) goes
    to the decoder, which fills it with Opus PLC: a loss never stalls the
    stream longer than the target. The target adapts to measured arrival
    jitter: the 95th percentile of how late packets arrive relative to the
    earliest-arriving one of the last ~2.5 s, rounded up to whole frames and
    clamped to ``min_depth_ms``..``max_depth_ms``. At most ``capacity``
    packets are held; a packet behind the release point is dropped.
    """

    WINDOW = 128  # packets of arrival history for the jitter estimate
    MAX_MISORDER = 100  # further behind than this: the sender restarted

    def __init__(
        self,
        tuning: AudioTuning | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rate: int = SAMPLE_RATE,
    ) -> None:
        self.tuning = tuning or AudioTuning()
        self._clock = clock
        self._rate = rate
        self._held: dict[int, RtpPacket] = {}
        self._next: int | None = None  # sequence number to release next
        self._last_ts: int | None = None  # RTP timestamp of the last released frame
        self._last_seq: int | None = None  # ... and its sequence number
        self._last_toc: int | None = None
        self._frame = SAMPLES_PER_FRAME  # samples per packet, learnt from timestamps
        self._ref_ts: int | None = None  # timestamp unwrapping for the jitter estimate
        self._ext_ts = 0
        self._delays: deque[float] = deque(maxlen=self.WINDOW)
        self._since_estimate = 0
        self.target_ms = float(self.tuning.min_depth_ms)
        self.jitter_ms = 0.0
        self.stats = JitterStats(target_ms=self.target_ms)

    @property
    def capacity(self) -> int:
        return self.tuning.capacity

    def __len__(self) -> int:
        return len(self._held)

    # aiortc's interface
    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self._observe(packet)
        seq = packet.sequence_number
        if self._next is None:
            self._next = seq
        d = _seq_diff(seq, self._next)
        if d < 0:
            if d < -self.MAX_MISORDER:
                self._reset(seq)
            else:
                self.stats.late += 1
                return False, None
        elif d >= 0x4000:  # a jump far ahead: the stream restarted
            self._reset(seq)
        if seq in self._held:
            self.stats.duplicates += 1
            return False, None
        self._held[seq] = packet
        return False, self._release()

    def _reset(self, seq: int) -> None:
        self.stats.resets += 1
        self._held.clear()
        self._next = seq
        self._last_ts = None

    def _release(self) -> JitterFrame | None:
        out: list[JitterFrame] = []
        t = self.tuning
        assert self._next is not None
        while self._held:
            packet = self._held.pop(self._next, None)
            if packet is not None:
                out.append(self._frame_of(packet))
                self._next = (self._next + 1) & 0xFFFF
                continue
            # A gap at self._next: how much later audio do we hold?
            gap_at = self._next  # an int here; the lambda would see the attribute's Optional
            first_seq = min(self._held, key=lambda s: _seq_diff(s, gap_at))
            newest = max(self._held.values(), key=lambda p: _seq_diff(p.sequence_number, first_seq))
            first = self._held[first_seq]
            expected_ts = (
                (self._last_ts + self._frame) & 0xFFFF_FFFF
                if self._last_ts is not None
                else first.timestamp
            )
            ahead = _ts_diff(newest.timestamp, expected_ts) * 1000 / self._rate
            if ahead <= self.target_ms and len(self._held) < t.capacity:
                break  # keep waiting for the missing packet
            self.stats.gaps += 1
            missing_ts = _ts_diff(first.timestamp, expected_ts)
            n = min(
                max(missing_ts // self._frame, 0),
                t.max_conceal_ms * self._rate // 1000 // self._frame,
            )
            if self._last_toc is not None:
                toc = bytes([self._last_toc & 0xFC])
                # The frame right before ``first`` can come back from its FEC data,
                # when the gap is not longer than what is concealed.
                fec = t.decode_fec and n > 0 and n * self._frame == missing_ts
                for k in range(n - 1 if fec else n):
                    ts = (expected_ts + k * self._frame) & 0xFFFF_FFFF
                    out.append(ConcealFrame(toc, ts, self._frame))
                if fec:
                    ts = (expected_ts + (n - 1) * self._frame) & 0xFFFF_FFFF
                    data = getattr(first, "_data", first.payload)
                    lbrr = has_lbrr(data)
                    out.append(FecFrame(data, ts, self._frame, lbrr))
                    self.stats.recovered += lbrr
                self.stats.concealed += n
            self._next = first_seq
        if not out:
            return None
        self.stats.released += len(out)
        return out[0] if len(out) == 1 else JitterBundle(out)

    def _frame_of(self, packet: RtpPacket) -> JitterFrame:
        data = getattr(packet, "_data", packet.payload)
        if self._last_ts is not None and self._last_seq is not None:
            # Per packet since the last one released (after a gap, the step spans the
            # concealed packets too): a sender may change its duration mid-stream (ours
            # hands a 10 ms stretch in C back to 20 ms Python frames), learnt at once.
            packets = _seq_diff(packet.sequence_number, self._last_seq)
            step = _ts_diff(packet.timestamp, self._last_ts)
            if packets > 0 and step % packets == 0 and 0 < step // packets <= 6 * SAMPLES_PER_FRAME:
                self._frame = step // packets  # (120 ms: Opus's longest packet)
        self._last_ts = packet.timestamp
        self._last_seq = packet.sequence_number
        if data:
            self._last_toc = data[0]
        return JitterFrame(data=data, timestamp=packet.timestamp)

    def _observe(self, packet: RtpPacket) -> None:
        """Track how late each packet arrives relative to the earliest of the window."""
        now = self._clock()
        if self._ref_ts is None:
            self._ref_ts = packet.timestamp
        else:
            self._ext_ts += _ts_diff(packet.timestamp, self._ref_ts)
            self._ref_ts = packet.timestamp
        self._delays.append(now - self._ext_ts / self._rate)
        self._since_estimate += 1
        if self._since_estimate >= 8 or len(self._delays) < 8:
            self._since_estimate = 0
            self._estimate()

    # The receive path in C (media/native_recv.py) carries this state on and gives it back.
    def export_state(self) -> tuple[list[float], list[float], list[tuple[int, int, bytes]]]:
        """(the fields as recv_path.cpp's rp_set_jitter takes them, the arrival delays
        oldest first, the held packets as (seq, timestamp, payload))."""
        s = self.stats
        fields = [
            float(self._next is not None), float(self._next or 0),
            float(self._last_ts is not None), float(self._last_ts or 0),
            float(self._last_toc is not None), float(self._last_toc or 0), float(self._frame),
            float(self._ref_ts is not None), float(self._ref_ts or 0), float(self._ext_ts),
            float(self._since_estimate), self.target_ms, self.jitter_ms,
            *(float(v) for v in (s.released, s.concealed, s.recovered, s.gaps, s.late,
                                 s.duplicates, s.resets)),
            float(len(self._held)), float(self._last_seq or 0),
        ]  # fmt: skip
        held = [
            (seq, p.timestamp, bytes(getattr(p, "_data", p.payload)))
            for seq, p in self._held.items()
        ]
        return fields, list(self._delays), held

    def import_state(
        self, fields: list[float], delays: list[float], held: list[tuple[int, int, bytes]]
    ) -> None:
        """Go on from what :meth:`export_state` (or recv_path.cpp's rp_get_jitter) gave."""
        self._next = int(fields[1]) if fields[0] else None
        self._last_ts = int(fields[3]) if fields[2] else None
        self._last_seq = int(fields[21]) if fields[2] else None
        self._last_toc = int(fields[5]) if fields[4] else None
        self._frame = int(fields[6])
        self._ref_ts = int(fields[8]) if fields[7] else None
        self._ext_ts = int(fields[9])
        self._since_estimate = int(fields[10])
        self.target_ms, self.jitter_ms = fields[11], fields[12]
        s = self.stats
        (s.released, s.concealed, s.recovered, s.gaps, s.late, s.duplicates,
         s.resets) = (int(v) for v in fields[13:20])  # fmt: skip
        s.target_ms, s.jitter_ms = self.target_ms, round(self.jitter_ms, 2)
        self._delays = deque(delays, maxlen=self.WINDOW)
        self._held = {}
        for seq, ts, data in held:
            packet = RtpPacket(payload_type=0, sequence_number=seq, timestamp=ts, payload=data)
            packet._data = data  # type: ignore[attr-defined]  # aiortc's depayloaded copy
            self._held[seq] = packet

    def _estimate(self) -> None:
        arrived = sorted(self._delays)  # lateness relative to the earliest: minus arrived[0]
        p95 = (arrived[min(len(arrived) - 1, int(len(arrived) * 0.95))] - arrived[0]) * 1000
        frame_ms = self._frame * 1000 / self._rate
        frames = -(-p95 // frame_ms)  # ceil
        t = self.tuning
        self.jitter_ms = p95
        self.target_ms = float(min(max(frames * frame_ms, t.min_depth_ms), t.max_depth_ms))
        self.stats.target_ms = self.target_ms
        self.stats.jitter_ms = round(p95, 2)


# What aiortc's receiver puts on its decoder queue: a frame with its codec; None stops it.
_DecoderItem = tuple[RTCRtpCodecParameters, JitterFrame] | None


class _ExpandingQueue(queue.Queue[_DecoderItem]):
    """The receiver's decoder queue: unpacks :class:`JitterBundle` s (their first
    timestamp was mapped by the receiver; the others follow it) and drops
    concealment frames for codecs that are not Opus."""

    def put(self, item: _DecoderItem, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)
            return
        codec, frame = item
        opus = codec.mimeType.lower() == "audio/opus"
        if not isinstance(frame, JitterBundle):
            if opus or not isinstance(frame, ConcealFrame):
                self._deliver(codec, frame, opus)
            return
        mapped, raw = frame.timestamp, frame.parts[0].timestamp  # the receiver mapped .timestamp
        for part in frame.parts:
            if opus or not isinstance(part, ConcealFrame):
                self._deliver(codec, _retimed(part, mapped + _ts_diff(part.timestamp, raw)), opus)

    def _deliver(self, codec: RTCRtpCodecParameters, frame: JitterFrame, opus: bool) -> None:
        """Hand one frame to the decoder: here, aiortc's decoder thread (FFmpeg's
        libopus: no FEC, so an FEC frame is concealed instead)."""
        if isinstance(frame, FecFrame):
            frame = _as_conceal(frame)
        super().put((codec, JitterFrame(data=frame.data, timestamp=frame.timestamp)))


class _InlineDecoderQueue(_ExpandingQueue):
    """The decoder queue that decodes Opus itself, on the event loop, as each frame
    leaves the jitter buffer, and puts the PCM straight on the remote track's queue.

    aiortc's path costs two thread hand-offs per 20 ms frame (the loop wakes its
    decoder thread; the thread wakes the loop with ``run_coroutine_threadsafe``,
    a new task per frame) for a decode of ~50 µs: here, none. Opus is decoded to
    mono (libopus downmixes a stereo stream; every sink plays mono), so the
    sink's conversion is a view. Other codecs still go to aiortc's thread, which
    otherwise waits on an empty queue; ``put(None)`` still stops it.

    The decoder is libopus itself (:class:`~hello_tui.media.opus_decoder.OpusDecoder`,
    not FFmpeg's wrapper), so a :class:`FecFrame` is recovered from the next
    packet's in-band FEC and a :class:`ConcealFrame` concealed by libopus PLC."""

    def __init__(self, receiver: RTCRtpReceiver) -> None:
        super().__init__()
        self._receiver = receiver
        self._decoder: OpusDecoder | None = None
        self._opus_missing = False

    def _deliver(self, codec: RTCRtpCodecParameters, frame: JitterFrame, opus: bool) -> None:
        track = self._receiver._track
        if not opus or track is None:
            super()._deliver(codec, frame, opus)
            return
        if self._decoder is None:
            try:
                self._decoder = OpusDecoder(SAMPLE_RATE, 1)
            except OpusError as exc:
                # No system libopus (a pipx install on a machine without libopus0):
                # FFmpeg's decoder, as before FEC; a lost frame stays a gap.
                log.warning("opus: %s; decoding without FEC recovery", exc)
                self._opus_missing = True
        if self._opus_missing:
            if not isinstance(frame, FecFrame | ConcealFrame):
                super()._deliver(codec, frame, opus)
            return
        assert self._decoder is not None
        try:
            if isinstance(frame, FecFrame):
                pcm = self._decoder.recover(frame.data, frame.samples)
            elif isinstance(frame, ConcealFrame):
                pcm = self._decoder.conceal(frame.samples)
            else:
                pcm = self._decoder.decode(frame.data)
        except OpusError as exc:  # as aiortc's thread: keep the decoder, drop the frame
            log.warning("opus: failed to decode a frame: %s", exc)
            return
        if pcm.size:
            track._queue.put_nowait(make_frame(pcm, frame.timestamp))


# ----------------------------------------------------------------- Opus encoder


class SpeechOpusEncoder(Encoder):
    """aiortc's Opus encoder with speech settings: bitrate, channels, FEC, loss,
    complexity; libopus through ctypes (:class:`~hello_tui.media.opus_encoder.OpusEncoder`,
    the settings FFmpeg's wrapper made from the same options), not PyAV's FFmpeg.

    Frames in the codec's format (s16, 48 kHz, 20 ms: what every source here
    sends) go straight to libopus; a frame of the other channel count is
    mixed or duplicated, other lengths are re-chunked to 20 ms, anything else
    goes through PyAV's resampler first (the real av only). The RTP timestamp
    counts the samples encoded from 0, continuous as FFmpeg's resampler made it
    (a source's skipped frames must not become a timestamp jump the far side
    reads as jitter)."""

    def __init__(self, tuning: AudioTuning | None = None, channels: int = 1) -> None:
        t = tuning or AudioTuning()
        self.codec = LibOpusEncoder(
            SAMPLE_RATE,
            channels,
            bitrate=t.bitrate,
            fec=t.fec,
            packet_loss_pct=t.packet_loss_pct,
            complexity=t.complexity,
        )
        self.channels = channels
        self.tuning = t
        self._layout = "stereo" if channels == 2 else "mono"
        self._frame = SAMPLES_PER_FRAME * channels  # int16 values per packet
        self._pending = np.zeros(0, dtype=np.int16)  # a partial frame (odd-sized input)
        self._resampler: Any = None  # PyAV's, for a frame not in s16 at 48 kHz
        self._next_pts = 0  # samples encoded so far: the next packet's RTP timestamp

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        assert isinstance(frame, AudioFrame)
        pcm = self._pcm(frame)
        if not len(self._pending) and len(pcm) == self._frame:  # the usual 20 ms
            timestamp = self._next_pts
            self._next_pts += SAMPLES_PER_FRAME
            return [self.codec.encode(pcm)], timestamp
        if len(self._pending):
            pcm = np.concatenate([self._pending, pcm])
        timestamp, payloads = self._next_pts, []
        while len(pcm) >= self._frame:
            payloads.append(self.codec.encode(pcm[: self._frame]))
            pcm = pcm[self._frame :]
            self._next_pts += SAMPLES_PER_FRAME
        self._pending = pcm.copy()
        return payloads, timestamp

    def hands_over(self) -> bool:
        """The stream can go on in C (media/send_path.cpp: 20 ms mono frames through this
        libopus state): mono, nothing pending, no resampler in the way."""
        return self.channels == 1 and not len(self._pending) and self._resampler is None

    @property
    def next_pts(self) -> int:
        """The next packet's RTP timestamp (from 0); C's frames advance it too."""
        return self._next_pts

    @next_pts.setter
    def next_pts(self, pts: int) -> None:
        self._next_pts = pts

    def _pcm(self, frame: AudioFrame) -> np.ndarray:
        """``frame``'s samples, interleaved int16 in the codec's channel count."""
        if frame.format.name == "s16" and frame.sample_rate == SAMPLE_RATE:
            channels = len(frame.layout.channels)
            pcm = np.frombuffer(
                memoryview(frame.planes[0]), dtype=np.int16, count=frame.samples * channels
            )
        else:
            if self._resampler is None:
                from av import AudioResampler  # the real av: a file's frames (the stand-in raises)

                self._resampler = AudioResampler(
                    format="s16", layout=self._layout, rate=SAMPLE_RATE
                )
            frame.pts = None  # we count samples ourselves
            out = self._resampler.resample(frame)
            if not out:
                return np.zeros(0, dtype=np.int16)
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.int16)
            return pcm
        if channels == self.channels:
            return pcm
        if self.channels == 2:  # mono into a stereo stream: both sides at full level
            return np.repeat(pcm, 2)  # (FFmpeg's upmix: each at -3 dB, so a mono decode 3 dB down)
        pairs = pcm.reshape(-1, channels).astype(np.int32)  # down to mono: the mean
        mono: np.ndarray = (pairs.sum(axis=1) // channels).astype(np.int16)
        return mono

    def pack(self, packet: Packet[Any]) -> tuple[list[bytes], int]:
        """A pre-encoded packet, as aiortc's ``OpusEncoder.pack``."""
        return AiortcOpusEncoder.pack(self, packet)  # type: ignore[arg-type]  # reads only pts


# ----------------------------------------------------------------- installation


def _require(obj: Any, name: str) -> None:
    if name not in vars(obj):
        raise AiortcAdapterError(
            f"aiortc {aiortc.__version__}: {type(obj).__name__} has no {name}; "
            "the adapter must be updated for this aiortc"
        )


def _require_method(obj: Any, name: str) -> None:
    if not callable(getattr(obj, name, None)):
        raise AiortcAdapterError(
            f"aiortc {aiortc.__version__}: {type(obj).__name__} has no method {name}; "
            "the adapter must be updated for this aiortc"
        )


def adapt_receiver(receiver: RTCRtpReceiver, tuning: AudioTuning | None = None) -> None:
    """Give an audio receiver the speech jitter buffer (before it starts receiving)."""
    for name in (_JITTER, _DQUEUE, _DTHREAD, "_track"):
        _require(receiver, name)
    _require_method(receiver, _HANDLE_RTP)
    if getattr(receiver, _DTHREAD) is not None:
        raise AiortcAdapterError("the receiver is already receiving: adapt it before")
    setattr(receiver, _JITTER, SpeechJitterBuffer(tuning))
    setattr(receiver, _DQUEUE, _InlineDecoderQueue(receiver))
    _AUDIO_RECEIVERS.add(receiver)


def eager_track_queue(track: Any) -> None:
    """Give an audio ``RemoteStreamTrack`` an :class:`~hello_tui.media.eager.EagerQueue`
    for its ``_queue`` (in aiortc 1.16 an ``asyncio.Queue``, read by ``recv()`` with
    ``get``, written by the decoder thread with ``put`` and by the inline decoder with
    ``put_nowait``): a frame decoded in the datagram callback (the fast path) then
    runs the sink's task in that callback, one loop iteration instead of two.

    Run as the connection's first ``track`` listener (:func:`adapt_peer_connection`
    registers it when the connection is made), so before any reader can wait on
    the old queue; a queue that already holds frames is left alone."""
    if getattr(track, "kind", None) != "audio":
        return
    _require(track, _TRACK_QUEUE)
    own = getattr(track, _TRACK_QUEUE)
    if not isinstance(own, asyncio.Queue | EagerQueue):
        raise AiortcAdapterError(
            f"aiortc {aiortc.__version__}: the remote track's {_TRACK_QUEUE} is not an "
            "asyncio.Queue; the adapter must be updated for this aiortc"
        )
    if isinstance(own, asyncio.Queue) and own.empty():
        setattr(track, _TRACK_QUEUE, EagerQueue())


def adapt_sender(sender: RTCRtpSender, tuning: AudioTuning | None = None) -> None:
    """Make an audio sender encode Opus with :class:`SpeechOpusEncoder`, inline."""
    for name in (_ENCODER, _TRACK, "_enabled"):
        _require(sender, name)
    _require_method(sender, _NEXT_FRAME)
    t = tuning or AudioTuning()
    original_send = sender.send

    async def send(parameters: RTCRtpSendParameters) -> None:
        codec = parameters.codecs[0] if parameters.codecs else None
        if (
            codec is not None
            and codec.mimeType.lower() == "audio/opus"
            and getattr(sender, _ENCODER) is None
        ):
            stereo = t.stereo
            if stereo is None:
                stereo = str(codec.parameters.get("stereo", "0")) == "1"
            setattr(sender, _ENCODER, SpeechOpusEncoder(t, channels=2 if stereo else 1))
        await original_send(parameters)

    # The adapter's job: aiortc's method wrapped on this one instance (typeshed-style
    # stubs call assigning to a method an error; it is what patching per instance is).
    sender.send = send  # type: ignore[method-assign]
    setattr(sender, _NEXT_FRAME, _inline_encoding(sender, getattr(sender, _NEXT_FRAME)))
    if fast_enabled():
        for name in (_RTP_STARTED, _RTP_EXITED, _RTP_HISTORY, _SENDER_EXT_MAP, *_SR_FIELDS):
            _require(sender, name)
        _require(getattr(sender, _SENDER_EXT_MAP), _EXT_IDS)
        _require_method(sender, _RUN_RTP)
        setattr(sender, _RUN_RTP, _fast_rtp_loop(sender, getattr(sender, _RUN_RTP)))
        own_replace = sender.replaceTrack

        def replace_track(track: Any) -> None:
            native = native_sender(sender)
            if native is not None:  # the old track's frames stop going to C at once
                native.stop_now()
            own_replace(track)

        sender.replaceTrack = replace_track  # type: ignore[method-assign]


def _inline_encoding(
    sender: RTCRtpSender,
    aiortcs: Callable[[RTCRtpCodecParameters], Awaitable[RTCEncodedFrame | None]],
) -> Callable[[RTCRtpCodecParameters], Awaitable[RTCEncodedFrame | None]]:
    """``RTCRtpSender._next_encoded_frame`` for a :class:`SpeechOpusEncoder`: the
    frame is encoded on the event loop, where it arrived (aiortc hands each 20 ms
    frame to a thread pool and back: two thread hand-offs for ~100 µs of libopus),
    and its RFC 6465 level computed with numpy (aiortc's is a Python loop over
    every sample). Any other encoder: aiortc's own method."""

    async def next_encoded_frame(codec: RTCRtpCodecParameters) -> RTCEncodedFrame | None:
        encoder = getattr(sender, _ENCODER)
        if not isinstance(encoder, SpeechOpusEncoder):
            return await aiortcs(codec)
        data = await getattr(sender, _TRACK).recv()
        if not sender._enabled:  # aiortc's rule: read the track, send nothing
            return None
        if isinstance(data, AudioFrame):
            level: int | None = audio_level_dbov(data)
            payloads, timestamp = encoder.encode(data)
        else:  # a pre-encoded packet
            level = None
            payloads, timestamp = encoder.pack(data)
        if not payloads:
            return None
        return RTCEncodedFrame(payloads, timestamp, level)  # type: ignore[arg-type]  # aiortc's None

    return next_encoded_frame


def audio_level_dbov(frame: AudioFrame) -> int:
    """aiortc's ``rtp.compute_audio_level_dbov`` (RFC 6465 App. A: -127..0, the
    RMS over the frame's first plane per sample), vectorised."""
    count = frame.samples * len(frame.layout.channels)  # the plane may be padded
    pcm = np.frombuffer(memoryview(frame.planes[0]), dtype=np.int16, count=count).astype(np.float64)
    rms = math.sqrt(float(np.dot(pcm, pcm)) / (frame.samples * 32767 * 32767))
    if rms <= 0:
        return -127
    return round(min(max(20 * math.log10(rms), -127), 0))


def adapt_peer_connection(
    pc: RTCPeerConnection, tuning: AudioTuning | None = None
) -> RTCPeerConnection:
    """Adapt every audio transceiver ``pc`` has or will create; idempotent; returns ``pc``."""
    if pc in _ADAPTED:
        return pc
    t = tuning or AudioTuning()
    original = getattr(pc, _CREATE)

    def create(direction: str, kind: str, sender_track: Any = None) -> Any:
        transceiver = original(direction, kind, sender_track)
        if kind == "audio":
            adapt_receiver(transceiver.receiver, t)
            adapt_sender(transceiver.sender, t)
            opus_only_without_av(transceiver)
        return transceiver

    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            adapt_receiver(transceiver.receiver, t)
            adapt_sender(transceiver.sender, t)
            opus_only_without_av(transceiver)
    setattr(pc, _CREATE, create)
    if fast_enabled():
        install_fast_path(pc)
    if eager_enabled():
        pc.on("track", eager_track_queue)  # first listener: before any sink reads the track
    _ADAPTED.add(pc)
    return pc


def opus_only_without_av(transceiver: RTCRtpTransceiver) -> None:
    """In a process with av's stand-in (``av_standin.py``), an audio transceiver offers
    and accepts Opus only: aiortc's G.711 and G.722 codecs are FFmpeg's, so a peer
    without Opus fails negotiation (one line) rather than the call's encoder later.
    Every peer of ours and every browser offers Opus first, so it is what they get anyway."""
    if av_standin.installed():
        transceiver.setCodecPreferences(
            [c for c in RTCRtpSender.getCapabilities("audio").codecs
             if c.mimeType.lower() == "audio/opus"]
        )  # fmt: skip


def is_adapted(pc: RTCPeerConnection) -> bool:
    """Whether :func:`adapt_peer_connection` adapted ``pc``."""
    return pc in _ADAPTED


# ----------------------------------------------------------------- RTCP: raw RTT


def rtt_from_report(arrival: float, sr_sent_at: float, dlsr: int) -> float:
    """RFC 3550 §6.4.1 round-trip time of one report block, in seconds (≥ 0).

    ``arrival`` and ``sr_sent_at`` are our own clock (when the report came in,
    when the SR it answers — its LSR — went out); ``dlsr`` is the peer's
    "delay since last SR" in 1/65536 s. The RFC's ``A − LSR − DLSR`` with our
    send time instead of the SR's NTP field, which aiortc fills with the time
    of the last *RTP* packet (up to 20 ms earlier than the SR).
    """
    return max(0.0, arrival - sr_sent_at - dlsr / 65536.0)


@dataclass(frozen=True, slots=True)
class RttReading:
    """One unsmoothed RTT measurement from one RTCP report block."""

    rtt_s: float
    at: float  # the watch's clock (monotonic) when the report arrived
    kind: str  # the sender's kind: "audio" / "video"


class RtcpWatch:
    """Per-report RTT of each watched sender's stream (see :func:`watch_rtcp`).

    For every SR a sender sends, its LSR (the middle 32 bits of the SR's NTP
    timestamp, what the peer echoes) and our send time are kept (the last
    :attr:`HISTORY`). Each RR/SR report block about the sender's SSRC whose
    LSR we know gives one RTT = arrival − sent − DLSR; the latest per sender
    is :meth:`readings`. A report answering an *older* SR still counts (aiortc
    drops it), so every report measures.
    """

    HISTORY = 16  # SRs remembered per sender (≥ 16 s at aiortc's 0.5-1.5 s)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sent: dict[int, dict[int, float]] = {}  # id(sender) -> LSR -> sent at
        self._latest: dict[int, RttReading] = {}
        self.reports = 0  # report blocks about our streams seen
        self.measured = 0  # ... that gave an RTT

    def watching(self, sender: RTCRtpSender) -> bool:
        return id(sender) in self._sent

    def attach(self, sender: RTCRtpSender) -> bool:
        """Start watching ``sender`` (idempotent); False if it already was."""
        key = id(sender)
        if key in self._sent:
            return False
        for name in (_SEND_RTCP, _HANDLE_RTCP, "_ssrc"):
            if getattr(sender, name, None) is None:
                raise AiortcAdapterError(
                    f"aiortc {aiortc.__version__}: RTCRtpSender.{name} is gone; "
                    "the adapter must be updated for this aiortc"
                )
        self._sent[key] = {}
        send_rtcp, handle_rtcp = getattr(sender, _SEND_RTCP), getattr(sender, _HANDLE_RTCP)

        async def send(packets: list[AnyRtcpPacket]) -> None:
            self.sr_sent(key, packets)
            await send_rtcp(packets)

        async def handle(packet: AnyRtcpPacket) -> None:
            self.rtcp_received(key, sender._ssrc, sender.kind, packet)
            await handle_rtcp(packet)

        setattr(sender, _SEND_RTCP, send)
        setattr(sender, _HANDLE_RTCP, handle)
        return True

    def sr_sent(self, key: int, packets: list[AnyRtcpPacket]) -> None:
        """Note the send time of each SR among ``packets`` (called before they leave)."""
        history = self._sent.setdefault(key, {})
        now = self._clock()
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                lsr = (packet.sender_info.ntp_timestamp >> 16) & 0xFFFF_FFFF
                history.pop(lsr, None)  # re-insert: the dict stays in send order
                history[lsr] = now
                while len(history) > self.HISTORY:
                    del history[next(iter(history))]

    def rtcp_received(self, key: int, ssrc: int, kind: str, packet: AnyRtcpPacket) -> None:
        """Measure from an incoming RR/SR's report blocks about stream ``ssrc``."""
        if not isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            return
        now = self._clock()
        history = self._sent.get(key, {})
        for report in packet.reports:
            if report.ssrc != ssrc:
                continue
            self.reports += 1
            sent_at = history.get(report.lsr) if report.lsr else None
            if sent_at is None:  # no SR received yet (LSR 0), or one we did not see leave
                continue
            self.measured += 1
            self._latest[key] = RttReading(rtt_from_report(now, sent_at, report.dlsr), now, kind)

    def readings(self) -> dict[int, RttReading]:
        """The latest reading per watched sender, keyed by ``id(sender)`` (aiortc's stats
        ids are ``remote-inbound-rtp_<id(sender)>``)."""
        return dict(self._latest)


def watch_rtcp(pc: RTCPeerConnection) -> RtcpWatch:
    """The connection's :class:`RtcpWatch`, now watching every sender it has (idempotent:
    call it again to pick up transceivers added since). Observes only; aiortc's own
    stats are unchanged. Independent of :func:`enabled`."""
    watch = _WATCHES.get(pc)
    if watch is None:
        watch = _WATCHES[pc] = RtcpWatch()
    for transceiver in pc.getTransceivers():
        if not watch.watching(transceiver.sender):
            watch.attach(transceiver.sender)
    return watch


# ----------------------------------------------------------------- reading private state


def jitter_counts(transceiver: RTCRtpTransceiver) -> tuple[int, int] | None:
    """``(recovered, late)``: packets of ``transceiver``'s received audio recovered
    from in-band FEC so far, and dropped for arriving after their gap was skipped
    (``SpeechJitterBuffer.stats``); None when it has no speech jitter buffer
    (video, or the adapter off). Reads ``RTCRtpReceiver.__jitter_buffer``."""
    buffer = vars(transceiver.receiver).get(_JITTER)
    if not isinstance(buffer, SpeechJitterBuffer):
        return None
    return buffer.stats.recovered, buffer.stats.late


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs negotiated for ``transceiver``, the one its sender encodes with
    first; empty before negotiation. Reads ``RTCRtpTransceiver._codecs``."""
    _require(transceiver, _CODECS)
    return list(getattr(transceiver, _CODECS))


def nominated_candidates(transceiver: RTCRtpTransceiver) -> tuple[Candidate, Candidate] | None:
    """``(local, remote)``: the aioice candidates of the pair ICE nominated for
    component 1 of ``transceiver``'s transport; None before nomination (or
    without a transport). Reads ``RTCIceTransport._connection`` and aioice's
    ``Connection._nominated``."""
    dtls = transceiver.sender.transport
    if dtls is None:
        return None
    ice = dtls.transport
    _require(ice, _ICE_CONNECTION)
    connection = getattr(ice, _ICE_CONNECTION)
    _require(connection, _NOMINATED)
    pair = getattr(connection, _NOMINATED).get(1)
    if pair is None:
        return None
    return pair.local_candidate, pair.remote_candidate


# ----------------------------------------------------------------- ICE host addresses

_GET_HOST_ADDRESSES = aioice.ice.get_host_addresses  # aioice's own, called by gather_candidates
_host_chooser: Callable[[], Sequence[str] | None] | None = None


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _host_chooser() if _host_chooser is not None else None
    if chosen is None:
        return _GET_HOST_ADDRESSES(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]


def choose_host_addresses(choose: Callable[[], Sequence[str] | None]) -> None:
    """Make aioice gather host candidates only on the addresses ``choose()`` returns
    when it gathers (None: every interface, aioice's own list). Process-wide:
    replaces the module function ``aioice.ice.get_host_addresses`` once; a later
    call replaces ``choose``."""
    global _host_chooser
    _host_chooser = choose
    aioice.ice.get_host_addresses = _host_addresses


def interface_addresses() -> frozenset[str]:
    """Every interface address ICE would gather on (aioice's own list, whatever
    :func:`choose_host_addresses` scoped): a change means the network changed."""
    return frozenset(_GET_HOST_ADDRESSES(use_ipv4=True, use_ipv6=True))


# ----------------------------------------------------------------- a renewed transport

_CERTIFICATES = "_RTCPeerConnection__certificates"


def reuse_certificate(pc: RTCPeerConnection, previous: RTCPeerConnection) -> None:
    """Make ``pc`` (before its first description) present ``previous``'s DTLS
    certificate: the same fingerprint, so a renewed transport within a call keeps
    its check code. aiortc makes a new certificate per connection and has no
    public way to pass one (``RTCConfiguration`` has no ``certificates``)."""
    _require(pc, _CERTIFICATES)
    _require(previous, _CERTIFICATES)
    setattr(pc, _CERTIFICATES, list(getattr(previous, _CERTIFICATES)))


# ----------------------------------------------------------------- every TURN server

_CREATE_DTLS = "_RTCPeerConnection__createDtlsTransport"
_GATHER = "get_component_candidates"  # aioice.Connection: host/srflx/relay of one component
RELAY_GRACE = 0.25  # s: once one relay answered, how long the others get
_TURN_LOCAL_PREF = {"udp": 65535, "tcp": 65534, "tls": 65533}  # a UDP relay first


@dataclass(frozen=True)
class TurnServer:
    host: str
    port: int
    transport: str  # "udp" or "tcp"
    tls: bool
    username: str | None
    password: str | None

    @property
    def kind(self) -> str:
        return "tls" if self.tls else self.transport


def turn_servers(servers: Sequence[Any]) -> list[TurnServer]:
    """Every TURN URL of ``servers`` (``RTCIceServer``) that aioice can use, in order."""
    from aiortc.rtcicetransport import parse_stun_turn_uri

    found = []
    for server in servers:
        for uri in [server.urls] if isinstance(server.urls, str) else server.urls:
            if not uri.startswith(("turn:", "turns:")):
                continue
            parsed = parse_stun_turn_uri(uri)
            tls = parsed["scheme"] == "turns"
            if parsed["transport"] not in ("udp", "tcp") or (tls and parsed["transport"] != "tcp"):
                continue
            found.append(TurnServer(parsed["host"], parsed["port"], parsed["transport"], tls,
                                    server.username, server.credential))  # fmt: skip
    return found


def gather_every_turn(pc: RTCPeerConnection, servers: Sequence[Any]) -> RTCPeerConnection:
    """Make ``pc`` gather a relay candidate from *every* TURN URL, not only the first.

    aiortc hands aioice one TURN server (the first URL): with ``turn:…?transport=udp``
    first, a network that blocks UDP gets no relay at all, and the allocation it
    waits for holds gathering for 5 s. Here each ICE connection ``pc`` creates
    (``RTCPeerConnection.__createDtlsTransport``, wrapped on the instance) asks
    all of them at once; once one relay is granted the rest get
    :data:`RELAY_GRACE` more, then are dropped. A UDP relay is preferred over
    TCP and TLS (ICE local preference). Touches ``aioice.Connection.turn_server``
    (cleared: aioice's own single relay is replaced) and
    ``Connection.get_component_candidates`` (shadowed on the instance)."""
    turns = turn_servers(servers)
    if len(turns) < 2:
        return pc  # aiortc's own way does the same with one

    def adapt(connection: Any) -> None:
        for name in ("turn_server", "_protocols", "_transport_policy"):
            _require(connection, name)
        _require_method(connection, _GATHER)
        connection.turn_server = None
        setattr(connection, _GATHER, _gatherer(connection, getattr(connection, _GATHER), turns))

    return _on_each_ice_connection(pc, adapt)


def _on_each_ice_connection(
    pc: RTCPeerConnection, adapt: Callable[[Any], None]
) -> RTCPeerConnection:
    """Call ``adapt`` on each ``aioice.Connection`` that ``pc`` creates, as it is
    created: ``RTCPeerConnection.__createDtlsTransport`` wrapped on the instance
    (the one place aiortc makes one; the adapters above and below share it)."""
    return _on_each_transport(pc, lambda connection, _dtls: adapt(connection))


def _on_each_transport(
    pc: RTCPeerConnection, adapt: Callable[[Any, Any], None]
) -> RTCPeerConnection:
    """Call ``adapt(connection, dtls)`` on each ``aioice.Connection`` that ``pc``
    creates and the ``RTCDtlsTransport`` over it (see :func:`_on_each_ice_connection`)."""
    _require_method(pc, _CREATE_DTLS)
    original = getattr(pc, _CREATE_DTLS)

    def create() -> Any:
        dtls = original()
        ice = dtls.transport
        _require(ice, _ICE_CONNECTION)
        adapt(getattr(ice, _ICE_CONNECTION), dtls)
        return dtls

    setattr(pc, _CREATE_DTLS, create)
    return pc


def _gatherer(connection: Any, own: Callable[..., Any], turns: list[TurnServer]) -> Any:
    import asyncio

    from aioice.candidate import candidate_priority
    from aioice.ice import StunProtocol, TransportPolicy, relayed_candidate

    async def relay(component: int, turn: TurnServer) -> tuple[Candidate, Any]:
        candidate, protocol = await relayed_candidate(
            component=component,
            hide_related_address=connection._transport_policy == TransportPolicy.RELAY,
            protocol_factory=lambda: StunProtocol(connection),
            turn_server=(turn.host, turn.port),
            turn_username=turn.username,
            turn_password=turn.password,
            turn_ssl=turn.tls,
            turn_transport=turn.transport,
        )
        candidate.priority = candidate_priority(component, "relay", _TURN_LOCAL_PREF[turn.kind])
        return candidate, protocol

    async def relays(component: int, timeout: float) -> list[Candidate]:
        tasks = [asyncio.ensure_future(relay(component, t)) for t in turns]
        got: list[Candidate] = []
        pending = set(tasks)
        deadline = asyncio.get_running_loop().time() + timeout
        while pending:
            left = deadline - asyncio.get_running_loop().time()
            if got:
                left = min(left, RELAY_GRACE)
            if left <= 0:
                break
            done, pending = await asyncio.wait(
                pending, timeout=left, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                break
            for task in done:
                if task.exception() is None:
                    candidate, protocol = task.result()
                    got.append(candidate)
                    connection._protocols.append(protocol)
        for task in pending:
            task.cancel()
        return got

    async def gather(component: int, addresses: list[str], timeout: int = 5) -> list[Candidate]:
        found, relayed = await asyncio.gather(
            own(component=component, addresses=addresses, timeout=timeout),
            relays(component, timeout),
        )
        return [*found, *relayed]

    return gather


# ----------------------------------------------------------------- ICE check pacing

_CHECK_PERIODIC = "_check_periodic"  # aioice.Connection: starts one check, connect() calls it
CHECKS_PER_TICK = 4  # aioice ticks every 20 ms: 4 checks a tick is a 5 ms pacing (Ta)
_CHECK_LIST = "_check_list"  # aioice.Connection: CandidatePair list, sorted by priority
_CHECK_LIST_DONE = "_check_list_done"  # aioice.Connection: completed, failed or closed
_EXPECTED = "_remote_candidates_expected"  # aioice.Connection: () -> bool, trickle still open


def pace_checks(pc: RTCPeerConnection, per_tick: int = CHECKS_PER_TICK) -> RTCPeerConnection:
    """Start ICE connectivity checks ``per_tick`` at a time on each of ``pc``'s ICE
    connections: aioice starts one per 20 ms (its Ta), so with host, server-reflexive
    and three relay candidates a side the first relay-to-relay pair — the one two
    NATed homes need, ranked below every pair with a host candidate — waits 60 ms
    or more before its first packet leaves. The order is aioice's (the highest
    Waiting pair, else the highest Frozen one), so a direct pair is still tried
    first; nomination is unchanged. Once every pair has started, the tick says so
    at once (aioice's own answer: False once no more remote candidates are
    expected), so ``connect()`` stops pacing and waits for the result instead of
    sleeping one more Ta (20 ms, on both sides, before DTLS could start).

    "Started" is "has its check task" (``CandidatePair.task``): aioice 0.13's
    ``check_start_task`` only creates the task, and the pair stays Waiting or
    Frozen until the task first runs, i.e. after the tick. Asked by state alone
    (session 6's version), every tick re-picked the same pair, so one check
    started per tick and ``connect()`` always slept 20 ms after the first check
    of a one-pair (loopback, LAN) call, however soon its answer came. Shadows
    ``aioice.Connection._check_periodic`` on the instance (through
    ``RTCPeerConnection.__createDtlsTransport``, wrapped on ``pc``), reading
    ``Connection._check_list``, ``_check_list_done`` and ``_remote_candidates_expected``."""

    def adapt(connection: Any) -> None:
        _require_method(connection, _CHECK_PERIODIC)
        _require_method(connection, _EXPECTED)
        _require_method(connection, "check_start_task")
        _require(connection, _CHECK_LIST)
        _require(connection, _CHECK_LIST_DONE)

        def unstarted(state: str) -> Any:
            for pair in getattr(connection, _CHECK_LIST):  # sorted: highest priority first
                if pair.state.name == state and getattr(pair, "task", None) is None:
                    return pair
            return None

        def periodic() -> bool:
            if getattr(connection, _CHECK_LIST_DONE):  # completed, failed or closed
                return False
            for _ in range(per_tick):
                pair = unstarted("WAITING") or unstarted("FROZEN")
                if pair is None:
                    break
                connection.check_start_task(pair)
            if unstarted("WAITING") or unstarted("FROZEN"):
                return True
            return bool(getattr(connection, _EXPECTED)())

        setattr(connection, _CHECK_PERIODIC, periodic)

    return _on_each_ice_connection(pc, adapt)


# ----------------------------------------------------------------- the per-packet fast path

_RX_SRTP = "_rx_srtp"  # RTCDtlsTransport: pylibsrtp Session once DTLS connected, else None
_TX_SRTP = "_tx_srtp"
_DTLS_STATE = "_state"  # RTCDtlsTransport: its State enum
_RX_BYTES = "_RTCDtlsTransport__rx_bytes"  # its transport stats, kept as aiortc keeps them
_RX_PACKETS = "_RTCDtlsTransport__rx_packets"
_TX_BYTES = "_RTCDtlsTransport__tx_bytes"
_TX_PACKETS = "_RTCDtlsTransport__tx_packets"
_ROUTER = "_rtp_router"  # RTCDtlsTransport: RtpRouter (route_rtp by SSRC / payload type)
_EXT_MAP = "_rtp_header_extensions_map"
_HANDLE_RTCP_DATA = "_handle_rtcp_data"  # RTCDtlsTransport: async (plain RTCP bytes)
_HANDLE_RTP = "_handle_rtp_packet"  # RTCRtpReceiver: async (packet, arrival_time_ms)
_SEND_RTP = "_send_rtp"  # RTCDtlsTransport: async (RTP/RTCP bytes), SRTP-protects and sends
_DATA_RECEIVED = "data_received"  # aioice.Connection: (data, component), what is not STUN
_PROTOCOLS = "_protocols"  # aioice.Connection: its StunProtocols (one per local candidate)
_NTP_EPOCH_S = 2_208_988_800  # 1900 -> 1970: aiortc's clock.current_ms counts from 1900
_RTP_HEADER = struct.Struct("!BBHLL")

# Receivers whose packets need no header extensions parsed (the adapted audio ones:
# only a video receiver reads abs-send-time, for its bandwidth estimate).
_AUDIO_RECEIVERS: weakref.WeakSet[RTCRtpReceiver] = weakref.WeakSet()


def fast_enabled() -> bool:
    """Whether adapted connections get the per-packet fast path (default: yes;
    ``HELLO_TUI_FAST_RTP=0`` turns it off, for A/B benchmarks)."""
    return os.environ.get("HELLO_TUI_FAST_RTP", "1").strip().lower() not in ("0", "off", "no")


def run_eagerly(coro: Coroutine[Any, Any, Any]) -> None:
    """Run ``coro`` now, in the caller's stack, as far as it goes without waiting;
    if it does wait, a task finishes it (Python 3.12's eager tasks, by hand).

    aiortc's per-packet handlers are coroutines that, for audio, never wait:
    starting a task for each would cost a loop iteration and a few allocations
    per packet for nothing."""
    try:
        waited = coro.send(None)
    except StopIteration:
        return
    except Exception:  # as a task would: logged, the packet dropped
        log.exception("packet handler failed")
        return
    task = asyncio.ensure_future(_finish(coro, waited))
    _FINISHING.add(task)  # a reference until it is done (the loop keeps only a weak one)
    task.add_done_callback(_FINISHING.discard)


_FINISHING: set[asyncio.Future[None]] = set()


async def _finish(coro: Coroutine[Any, Any, Any], waited: Any) -> None:
    """Drive ``coro`` on from the future it yielded (see :func:`run_eagerly`)."""
    while True:
        try:
            if waited is None:  # a bare yield: asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                await waited
        except BaseException as exc:
            if waited is None or not waited.done():  # we were cancelled: so is coro
                try:
                    waited = coro.throw(exc)
                except (StopIteration, asyncio.CancelledError):
                    return
                continue
            # else: the future failed; coro reads that itself below
        try:
            waited = coro.send(None)
        except StopIteration:
            return


class _FastPath:
    """One DTLS transport's per-packet path, shortened.

    aiortc receives a datagram through aioice's ``StunProtocol`` (a STUN parse
    that fails with an exception for every media packet), an ``asyncio.Queue``,
    the DTLS transport's reader task (a loop iteration later), SRTP, a full RTP
    parse (header extensions decoded into a dataclass) and a chain of
    coroutines; it sends through five nested coroutines down to ``sendto``.
    Here, once DTLS is connected, an SRTP/SRTCP datagram goes from the socket
    callback straight to SRTP and the receiver, in the same loop iteration
    (:func:`run_eagerly`), and an audio packet is parsed without its header
    extensions (nothing reads them for audio); a sent packet is protected and
    handed to the socket directly. STUN (consent checks) and DTLS take aiortc's
    own path, unchanged, as does everything before DTLS connects."""

    def __init__(self, connection: Any, dtls: Any) -> None:
        self._connection = connection
        self._dtls = dtls
        self._own_received = getattr(connection, _DATA_RECEIVED)
        self._own_send = getattr(dtls, _SEND_RTP)
        self._hooked: weakref.WeakSet[Any] = weakref.WeakSet()
        self.fast_in = 0  # datagrams taken by the fast path (tests read these)
        self.fast_out = 0
        self.rtp_in = 0  # RTP packets routed to a receiver here (not while C reads)

    def data_received(self, data: bytes, component: int) -> None:
        """``aioice.Connection.data_received``: what its protocols got that is not STUN."""
        dtls = self._dtls
        rx = dtls._rx_srtp
        if rx is None or component != 1 or not 127 < data[0] < 192 or dtls._state is not _CONNECTED:
            self._own_received(data, component)  # aiortc's queue and reader task
            return
        if not self.fast_in:
            self._hook_protocols()
        self.fast_in += 1
        # aiortc's RTCDtlsTransport._recv_next, SRTP branch
        dtls._RTCDtlsTransport__rx_bytes += len(data)
        dtls._RTCDtlsTransport__rx_packets += 1
        try:
            if 192 <= data[1] <= 208:  # rtp.is_rtcp
                run_eagerly(dtls._handle_rtcp_data(rx.unprotect_rtcp(data)))
            else:
                self._rtp(rx.unprotect(data))
        except pylibsrtp.Error as exc:
            log.debug("SRTP unprotect failed: %s", exc)

    def _rtp(self, data: bytes) -> None:
        dtls = self._dtls
        if len(data) < 12:
            return
        first, m_pt, seq, ts, ssrc = _RTP_HEADER.unpack_from(data)
        packet = RtpPacket(m_pt & 0x7F, m_pt >> 7, seq, ts, ssrc)
        receiver = dtls._rtp_router.route_rtp(packet)
        if receiver is None:
            return
        self.rtp_in += 1
        if receiver in _AUDIO_RECEIVERS:
            native = _NATIVE_RECEIVERS.get(receiver, _UNWATCHED)
            if native is _UNWATCHED:
                _watch_receiver(receiver, self)
            elif native is not None and native.recv is not None:
                native.python_rtp(packet)  # C holds the jitter buffer: it hands back first
        if receiver in _AUDIO_RECEIVERS and first & 0x2F == 0 and first >> 6 == 2:
            # version 2, no padding, no CSRC: the payload follows the extensions
            pos = 12
            if first & 0x10:
                if len(data) < 16:
                    return
                pos = 16 + 4 * ((data[14] << 8) | data[15])
                if len(data) < pos:
                    return
            packet.payload = data[pos:]
        else:
            try:
                packet = RtpPacket.parse(data, dtls._rtp_header_extensions_map)
            except ValueError:
                return
        arrival_ms = int((time.time() + _NTP_EPOCH_S) * 1000)  # aiortc's clock.current_ms
        run_eagerly(receiver._handle_rtp_packet(packet, arrival_time_ms=arrival_ms))

    def _hook_protocols(self) -> None:
        """Skip aioice's STUN parse for media datagrams: each ``StunProtocol`` of the
        connection gets, on the instance, a ``datagram_received`` that hands an
        SRTP/SRTCP datagram (first byte 128-191, never STUN's 0-3) straight here."""
        from aioice.ice import StunProtocol

        for protocol in getattr(self._connection, _PROTOCOLS):
            if not isinstance(protocol, StunProtocol) or protocol in self._hooked:
                continue
            self._hooked.add(protocol)
            own = protocol.datagram_received
            component = protocol.local_candidate.component

            def received(data: Any, addr: Any, own: Any = own, component: int = component) -> None:
                if data and 127 < data[0] < 192:
                    self.data_received(data, component)
                else:
                    own(data, addr)

            protocol.datagram_received = received  # type: ignore[method-assign]

    async def send_rtp(self, data: bytes) -> None:
        """``RTCDtlsTransport._send_rtp``: protect, then the nominated pair's socket."""
        dtls = self._dtls
        pair = self._connection._nominated.get(1)
        if dtls._state is not _CONNECTED or pair is None or type(pair.protocol) is not _Stun:
            await self._own_send(data)
            return
        tx = dtls._tx_srtp
        data = tx.protect_rtcp(data) if 192 <= data[1] <= 208 else tx.protect(data)
        pair.protocol.transport.sendto(data, pair.remote_addr)  # StunProtocol.send_data's body
        dtls._RTCDtlsTransport__tx_bytes += len(data)
        dtls._RTCDtlsTransport__tx_packets += 1
        self.fast_out += 1


# ----------------------------------------------------------------- the sender's per-packet loop

_RTP_STARTED = "_RTCRtpSender__rtp_started"  # asyncio.Event
_RTP_EXITED = "_RTCRtpSender__rtp_exited"  # asyncio.Event: stop() waits for it
_RTP_HISTORY = "_RTCRtpSender__rtp_history"  # seq % RTP_HISTORY_SIZE -> RtpPacket (NACKs)
_MID = "_RTCRtpSender__mid"
_SENDER_EXT_MAP = "_RTCRtpSender__rtp_header_extensions_map"
_EXT_IDS = "_HeaderExtensionsMap__ids"  # HeaderExtensionsMap: a HeaderExtensions of ids
_SR_FIELDS = (  # what the sender's SRs and stats read
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)
_RUN_RTP = "_run_rtp"  # RTCRtpSender: async (codec), started by send()


def _ntp_now() -> int:
    """aiortc's ``clock.current_ntp_time()`` (64-bit NTP) from ``time.time()``,
    without its datetime arithmetic (~3 µs, twice per packet there)."""
    t = time.time() + _NTP_EPOCH_S
    high = int(t)
    return (high << 32) | int((t - high) * 4_294_967_296)


class RtpAudioWriter:
    """Serialises an audio sender's RTP packets as aiortc's ``RtpPacket.serialize``
    does (same bytes: RFC 5285 one-byte header extensions mid, abs-send-time and
    audio level, in aiortc's order), with the constant part built once rather
    than through two lists and a dataclass per packet. ``None`` from
    :meth:`for_map` when the negotiated extensions need more (two-byte headers)."""

    def __init__(self, mid_id: int, mid: bytes, abs_id: int, level_id: int) -> None:
        self._mid = bytes([(mid_id << 4) | (len(mid) - 1)]) + mid if mid_id and mid else b""
        self._abs = (abs_id << 4) | 2 if abs_id else 0
        self._level = level_id << 4 if level_id else None
        # What the send path in C writes the same way (send_path.cpp's sp_set_rtp).
        self.native_ids = (self._mid, abs_id, level_id)

    @classmethod
    def for_map(cls, ext_map: Any, mid: str | None) -> RtpAudioWriter | None:
        ids = getattr(ext_map, _EXT_IDS)
        mid_b = mid.encode() if mid is not None else b""
        used = [i for i in (ids.mid if mid_b else None, ids.abs_send_time, ids.audio_level) if i]
        if any(i > 14 for i in used) or len(mid_b) > 16:
            return None
        return cls(ids.mid or 0, mid_b, ids.abs_send_time or 0, ids.audio_level or 0)

    def serialize(
        self, pt: int, marker: int, seq: int, ts: int, ssrc: int, payload: bytes,
        abs_send_time: int, level: int | None,
    ) -> bytes:  # fmt: skip
        ext = self._mid
        if self._abs:
            ext += bytes([self._abs]) + abs_send_time.to_bytes(3, "big")
        if level is not None and self._level is not None:
            ext += bytes([self._level, -level & 0x7F])
        if not ext:
            return _RTP_HEADER.pack(0x80, (marker << 7) | pt, seq, ts, ssrc) + payload
        ext += b"\x00" * (-len(ext) % 4)
        head = _RTP_HEADER.pack(0x90, (marker << 7) | pt, seq, ts, ssrc)
        return head + _EXT_HEADER.pack(0xBEDE, len(ext) >> 2) + ext + payload


_EXT_HEADER = struct.Struct("!HH")


def _fast_rtp_loop(
    sender: RTCRtpSender, aiortcs: Callable[[RTCRtpCodecParameters], Awaitable[None]]
) -> Callable[[RTCRtpCodecParameters], Awaitable[None]]:
    """``RTCRtpSender._run_rtp`` for a :class:`SpeechOpusEncoder`: aiortc's loop
    (next encoded frame, one packet per payload, history for NACKs, the SR
    fields) with the packet written by :class:`RtpAudioWriter`, one clock read
    per packet instead of two datetime computations, and no per-packet debug
    formatting. Any other encoder, or extensions it cannot write: aiortc's."""
    from aiortc.mediastreams import MediaStreamError
    from aiortc.rtcrtpsender import random_sequence_number
    from aiortc.rtp import RTP_HISTORY_SIZE
    from aiortc.utils import random32

    async def run_rtp(codec: RTCRtpCodecParameters) -> None:
        writer = RtpAudioWriter.for_map(getattr(sender, _SENDER_EXT_MAP), getattr(sender, _MID))
        if not isinstance(getattr(sender, _ENCODER), SpeechOpusEncoder) or writer is None:
            await aiortcs(codec)
            return
        getattr(sender, _RTP_STARTED).set()
        history = getattr(sender, _RTP_HISTORY)
        mid = getattr(sender, _MID)
        pt, ssrc = codec.payloadType or 0, sender._ssrc  # negotiated: never None here
        seq, origin = random_sequence_number(), random32()  # as aiortc
        ext = seq  # the extended sequence number: libsrtp's packet index (ROC 0 at first)
        native = _NativeSender(sender, pt, writer) if native_send_enabled() else None
        try:
            while True:
                if not getattr(sender, _TRACK):
                    await asyncio.sleep(0.02)
                    continue
                if native is not None and native.due():
                    seq, ext = await native.stretch(seq, ext, origin)
                frame = await sender._next_encoded_frame(codec)
                if frame is None:
                    continue
                ts = (origin + frame.timestamp) & 0xFFFF_FFFF
                last = len(frame.payloads) - 1
                for i, payload in enumerate(frame.payloads):
                    ntp = _ntp_now()
                    marker = 1 if i == last else 0
                    packet = RtpPacket(pt, marker, seq, ts, ssrc, payload)  # for NACKs
                    packet.extensions.mid = mid
                    packet.extensions.abs_send_time = (ntp >> 14) & 0x00FF_FFFF
                    level = frame.audio_level
                    if level is not None:
                        packet.extensions.audio_level = (False, -level)
                    history[seq % RTP_HISTORY_SIZE] = packet
                    data = writer.serialize(
                        pt, marker, seq, ts, ssrc, payload, (ntp >> 14) & 0x00FF_FFFF, level
                    )
                    await sender.transport._send_rtp(data)
                    sender._RTCRtpSender__ntp_timestamp = ntp  # type: ignore[attr-defined]
                    sender._RTCRtpSender__rtp_timestamp = ts  # type: ignore[attr-defined]
                    sender._RTCRtpSender__octet_count += len(payload)  # type: ignore[attr-defined]
                    sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
                    seq = (seq + 1) & 0xFFFF
                    ext += 1
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:  # as aiortc: rtp_exited must be set, or stop() hangs
            log.warning("RTP sender failed", exc_info=True)
        track = getattr(sender, _TRACK)
        if track:
            track.stop()
            setattr(sender, _TRACK, None)
        setattr(sender, _ENCODER, None)
        getattr(sender, _RTP_EXITED).set()

    return run_rtp


# ----------------------------------------------------------------- the send path in C
#
# With the microphone's read callback in C (unless HELLO_TUI_NATIVE_SEND=0), the capture thread
# encodes, packetises, protects and sends each frame itself (media/send_path.cpp) while
# the call's path is a plain one; the sender's loop above hands it the stream between two
# frames and takes it back on any change (docs/media.md, "The send path in C").

_SSL = "_ssl"  # RTCDtlsTransport: the OpenSSL DTLS connection (its keying material)
_ROLE = "_role"  # RTCDtlsTransport: "client" | "server" (which half of the material is ours)
_SRTP_PROFILES = "_srtp_profiles"  # RTCDtlsTransport: the SRTPProtectionProfiles it offers
_SRTP_T = "_srtp"  # pylibsrtp.Session: the cffi "srtp_t *" it owns
_ENABLED = "_enabled"  # RTCRtpSender: False while the direction does not send (hold)
NATIVE_TICK_S = 0.1  # the parked loop's look at the stretch (SR fields, changes)
NATIVE_CHECK_EVERY = 25  # frames the Python loop sends between looks at whether C may
# libsrtp's sender guesses the index from its last one within 2^15 packets: aiortc's own
# session (back after a stretch) must never be further behind than that.
NATIVE_MAX_STRETCH = 30_000
NATIVE_MAX_FAILURES = 3  # stretches C gave up on, after which this sender stays Python
# 10 ms packets (AudioTuning.ptime_ms) only while the far end reports less loss than this
# of our stream (an RR's fraction lost, over its ~1 s interval): past it, the sender goes
# back to 20 ms for the rest of the call (half the packets to lose, FEC per 20 ms, half
# the overhead on a path that may be congested). Not measured: a guard, not a tuning.
NATIVE_SHORT_MAX_LOSS = 0.05


def native_send_enabled() -> bool:
    """The shim has the send path and ``HELLO_TUI_NATIVE_SEND`` is not ``0``."""
    if os.environ.get("HELLO_TUI_NATIVE_SEND") == "0":
        return False
    from hello_tui.media import native_send

    return native_send.available()


def tx_srtp_key(dtls: Any, *, rx: bool = False) -> tuple[bytes, int]:
    """(master key and salt, libsrtp profile) of the transport's outbound SRTP (``rx``:
    inbound), derived again as aiortc's ``RTCDtlsTransport._setup_srtp`` derived them (it
    keeps only the sessions): the exporter is deterministic for one DTLS connection."""
    for name in (_SSL, _ROLE, _SRTP_PROFILES):
        _require(dtls, name)
    ssl = getattr(dtls, _SSL)
    selected = ssl.get_selected_srtp_profile()
    profile = next(
        (p for p in getattr(dtls, _SRTP_PROFILES) if p.openssl_profile == selected), None
    )
    if profile is None:
        raise AiortcAdapterError("DTLS negotiated no SRTP profile aiortc offered")
    view = ssl.export_keying_material(
        b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length)
    )
    server = getattr(dtls, _ROLE) == "server"
    return profile.get_key_and_salt(view, 1 if server != rx else 0), (profile.libsrtp_profile)


def sender_srtp_session(dtls: Any, ssrc: int) -> pylibsrtp.Session:
    """A second outbound SRTP session with aiortc's tx key, for ``ssrc``'s RTP only.

    An RTP packet's keystream is a function of the session keys, the SSRC and its 48-bit
    index only (RFC 3711 4.1.1, RFC 7714 8.1), and SRTCP has keys and an index of its
    own: two sessions that protect disjoint indexes never reuse keystream, and aiortc's
    keeps RTCP. The stream is made for the SSRC at once (so its ROC can be set)."""
    key, profile = tx_srtp_key(dtls)
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC, ssrc_value=ssrc, srtp_profile=profile
    )
    policy.allow_repeat_tx = True  # as aiortc's tx policy
    policy.window_size = 1024
    return pylibsrtp.Session(policy)


@functools.cache
def _srtp_lib() -> ctypes.CDLL:
    """pylibsrtp's own libsrtp (2.7, statically in its extension, every srtp_* exported):
    the library aiortc's sessions already run on, so nothing else is loaded."""
    from pylibsrtp import _binding

    lib = ctypes.CDLL(_binding.__file__)
    lib.srtp_set_stream_roc.restype = ctypes.c_int
    lib.srtp_set_stream_roc.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint32]
    return lib


def srtp_native(session: pylibsrtp.Session) -> tuple[int, int]:
    """(the session's ``srtp_t``, ``srtp_protect``'s address) for C. The session must
    outlive C's use of it, and only one thread may use it at a time."""
    from pylibsrtp._binding import ffi  # type: ignore[import-not-found]  # (cffi's, untyped)

    _require(session, _SRTP_T)
    pointer = int(ffi.cast("uintptr_t", getattr(session, _SRTP_T)[0]))
    address = ctypes.cast(_srtp_lib().srtp_protect, ctypes.c_void_p).value
    assert address is not None
    return pointer, address


def set_srtp_roc(session: pylibsrtp.Session, ssrc: int, roc: int) -> None:
    """Start ``session``'s stream for ``ssrc`` at rollover counter ``roc`` (a fresh
    session guesses 0; libsrtp 2.7 takes a pending ROC >= 1 as "advanced" and starts
    there: srtp.c, srtp_estimate_index)."""
    pointer, _ = srtp_native(session)
    if _srtp_lib().srtp_set_stream_roc(pointer, ssrc, roc) != 0:
        raise AiortcAdapterError("libsrtp refused the stream's rollover counter")


def direct_pair(connection: Any) -> tuple[Any, str, int] | None:
    """(the socket, the remote host, port) of aioice's nominated pair for RTP when it is
    a plain UDP one (a ``StunProtocol``'s own socket; a TURN relay: None)."""
    pair = getattr(connection, _NOMINATED).get(1)
    if pair is None or type(pair.protocol) is not _Stun or pair.local_candidate.type == "relay":
        return None
    # A relayed candidate's protocol is a StunProtocol too, on aioice's TurnTransport
    # (no socket of its own, not an asyncio transport): only asyncio's UDP one is sent on.
    transport = pair.protocol.transport
    if not isinstance(transport, asyncio.BaseTransport) or transport.is_closing():
        return None
    sock = transport.get_extra_info("socket")
    if sock is None or sock.type != socket.SOCK_DGRAM:
        return None
    host, port = pair.remote_addr[:2]
    return sock, host, port


def _native_source(sender: RTCRtpSender, stop: Callable[[], None]) -> Any:
    """The microphone behind the sender's track when C may send its frames (duck-typed:
    each of our wrappers answers ``native_source(stop)``, a muted gate None; ``stop`` is
    called at once when that changes), else None."""
    track = getattr(sender, _TRACK)
    ask = getattr(track, "native_source", None)
    return ask(stop) if ask is not None else None


class _NativeSender:
    """One audio sender's stretches of C sending (see the section's comment)."""

    def __init__(self, sender: RTCRtpSender, pt: int, writer: RtpAudioWriter) -> None:
        for name in (_ENABLED, _TRACK, _ENCODER, *_SR_FIELDS):
            _require(sender, name)
        self.sender, self.pt, self.writer = sender, pt, writer
        self.countdown = NATIVE_CHECK_EVERY  # (Python sends first: aiortc's session has the stream)
        self.send: Any = None  # the NativeSend of the stretch running
        self._wake: asyncio.Future[None] | None = None
        self.stretches = 0  # (tests and benchmarks read these)
        self.native_frames = 0
        self.cpu_seconds = 0.0
        self.ends: dict[str, int] = {}  # why stretches ended: how often
        self._end = ""  # why the running stretch ended
        self.short_ok = True  # 10 ms packets allowed (no lossy report seen yet)
        _require_method(sender, _HANDLE_RTCP)
        own_rtcp = getattr(sender, _HANDLE_RTCP)

        async def handle_rtcp(packet: AnyRtcpPacket) -> None:
            self.rtcp(packet)
            await own_rtcp(packet)

        setattr(sender, _HANDLE_RTCP, handle_rtcp)
        _NATIVE_SENDERS[sender] = self

    def frames_in_c(self) -> int:
        """Frames C sent so far, the running stretch's included."""
        send = self.send
        return self.native_frames + (send.state().frames if send is not None else 0)

    def rtcp(self, packet: AnyRtcpPacket) -> None:
        """A report of the far end's on our stream: too much loss ends 10 ms packets."""
        if not self.short_ok or not isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            return
        ssrc = self.sender._ssrc
        for report in packet.reports:
            if report.ssrc == ssrc and report.fraction_lost / 256 >= NATIVE_SHORT_MAX_LOSS:
                self.short_ok = False
                log.info("10 ms packets: %.1f %% lost, 20 ms from now on",
                         report.fraction_lost / 2.56)  # fmt: skip
                self._poke()  # (a stretch at 10 ms ends at this look)

    def due(self) -> bool:
        if self.ends.get("failed", 0) >= NATIVE_MAX_FAILURES:
            return False
        self.countdown -= 1
        if self.countdown > 0:
            return False
        self.countdown = NATIVE_CHECK_EVERY
        return True

    def stop_now(self) -> None:
        """Frames go back to Python from the next one (mute, a new track: at once)."""
        send = self.send
        if send is not None:
            send.detach()
            self._poke()

    def _poke(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def _eligible(self) -> tuple[Any, Any, tuple[Any, str, int]] | None:
        """(the microphone, the encoder, the pair) when C may send now, else None."""
        found = self.check()
        return found if isinstance(found, tuple) else None

    def check(self) -> tuple[Any, Any, tuple[Any, str, int]] | str:
        """What :meth:`_eligible` finds, or why C may not send now (tests, logs)."""
        sender = self.sender
        encoder = getattr(sender, _ENCODER)
        if not getattr(sender, _ENABLED):
            return "the sender is disabled (direction)"
        if not isinstance(encoder, SpeechOpusEncoder) or not encoder.hands_over():
            return "the encoder is not a plain mono SpeechOpusEncoder"
        dtls = sender.transport
        path = fast_path(dtls)
        if path is None or dtls._state is not _CONNECTED or dtls._tx_srtp is None:
            return "no fast path, or DTLS not connected"
        pair = direct_pair(path._connection)
        if pair is None:
            return "the nominated pair is not a plain UDP one"
        source = _native_source(sender, self.stop_now)
        if source is None:
            return "no microphone with its frames in C behind the track (or muted)"
        return source, encoder, pair

    async def stretch(self, seq: int, ext: int, origin: int) -> tuple[int, int]:
        """Let C send from ``seq`` (index ``ext``) while nothing changes; returns where
        Python goes on from. Does nothing when C may not send now."""
        from hello_tui.media.native_send import NativeSend

        found = self._eligible()
        if found is None:
            return seq, ext
        source, encoder, (sock, host, port) = found
        sender, ssrc = self.sender, self.sender._ssrc
        try:
            session = sender_srtp_session(sender.transport, ssrc)
            if ext >> 16:
                set_srtp_roc(session, ssrc, ext >> 16)
            (state, encode), (srtp, protect) = encoder.codec.native(), srtp_native(session)
            ptime = send_ptime_ms(encoder.tuning) if self.short_ok else 20
            samples = SAMPLES_PER_FRAME * ptime // 20
            send = NativeSend(
                state, encode, srtp, protect, keep=(encoder, session), samples=samples
            )
        except (AiortcAdapterError, OSError, pylibsrtp.Error) as exc:
            log.info("send path in C not used: %s", exc)
            return seq, ext
        try:
            if not send.set_peer(sock.fileno(), host, port):
                return seq, ext
            send.set_rtp(self.pt, ssrc, seq, origin + encoder.next_pts, *self.writer.native_ids)
            if not source.native_idle() or not send.attach(source.native_capture):
                return seq, ext
            self.send = send
            self.stretches += 1
            self._end = "cancelled"
            if self.stretches == 1:
                log.info("send path in C: the capture thread sends (%s:%d)", host, port)
            await self._run(send, source, sock, host, port)
        finally:
            if self.send is send:  # (cancelled too: the counters stay true)
                self.send = None
                send.detach()
                state = send.state()
                log.info(
                    "send path in C: stretch %d over (%s) after %d packets of %d ms, %.0f us "
                    "a packet, %d send errors", self.stretches, self._end, state.frames,
                    send.samples // 48, state.cpu_seconds * 1e6 / max(1, state.frames),
                    state.send_errors,
                )  # fmt: skip
                seq, ext = state.seq, ext + state.frames
                # (10 ms packets: the samples C took may end mid-frame; Python's next 20 ms
                # frame starts at the next sample, and so does its timestamp.)
                encoder.next_pts += send.samples * state.frames
                source.native_sent(send.samples * state.frames)
                self.native_frames += state.frames
                self.cpu_seconds += state.cpu_seconds
            send.close()
        return seq, ext

    async def _run(self, send: Any, source: Any, sock: Any, host: str, port: int) -> None:
        """Park while C sends: every tick the SR fields and the transport's counters
        from C's, and a look for anything that ends the stretch."""
        sender, loop = self.sender, asyncio.get_running_loop()
        dtls, track = sender.transport, getattr(sender, _TRACK)
        base = [getattr(sender, name) for name in _SR_FIELDS]
        wire = [0, 0]  # what was added to the transport's counters so far
        metered = getattr(track, "level_from", None)

        def apply(state: Any) -> None:
            if state.packets:
                setattr(sender, _SR_FIELDS[0], state.ntp)
                setattr(sender, _SR_FIELDS[1], state.rtp)
            setattr(sender, _SR_FIELDS[2], base[2] + state.octets)
            setattr(sender, _SR_FIELDS[3], base[3] + state.packets)
            setattr(dtls, _TX_BYTES, getattr(dtls, _TX_BYTES) + state.wire_bytes - wire[0])
            setattr(dtls, _TX_PACKETS, getattr(dtls, _TX_PACKETS) + state.wire_packets - wire[1])
            wire[:] = [state.wire_bytes, state.wire_packets]

        if metered is not None:
            metered(lambda: float(send.state().level))
        loop.add_reader(send.fd, self._poke)
        try:
            while True:
                self._wake = wake = loop.create_future()
                timer = loop.call_later(NATIVE_TICK_S, self._poke)
                try:
                    await wake
                finally:
                    timer.cancel()
                state = send.state()
                apply(state)
                source.native_sent(0)  # (its counters: last block, overflows, voice)
                end = self._ended(state, send, source, track, sock, host, port)
                if end:
                    self.ends[end] = self.ends.get(end, 0) + 1
                    self._end = end
                    break
        finally:
            self._wake = None
            loop.remove_reader(send.fd)
            send.detach()  # no frame on its way to C after this
            if metered is not None:
                metered(None)
            apply(send.state())

    def _ended(
        self, state: Any, send: Any, source: Any, track: Any, sock: Any, host: str, port: int
    ) -> str:
        """Why the stretch must end now ("" : it goes on)."""
        if not send.attached:
            return "stopped"  # mute or a new track (stop_now)
        if state.failed:
            return "failed"
        if send.samples < SAMPLES_PER_FRAME and not self.short_ok:
            return "lossy"  # (the next stretch sends 20 ms packets)
        if state.packets >= NATIVE_MAX_STRETCH:
            return "long"
        if getattr(self.sender, _TRACK) is not track:
            return "track"
        found = self._eligible()
        if found is None:
            return "ineligible"
        if found[0] is not source or found[2] != (sock, host, port):
            return "pair"
        return ""


_NATIVE_SENDERS: weakref.WeakKeyDictionary[RTCRtpSender, _NativeSender] = (
    weakref.WeakKeyDictionary()
)


def native_sender(sender: RTCRtpSender) -> _NativeSender | None:
    """The sender's C send path's bookkeeping (None: the knob is off, or not started)."""
    return _NATIVE_SENDERS.get(sender)


# ----------------------------------------------------------------- the receive path in C
#
# With the speaker's blocks in C (a pulse DeviceSink), a thread of C (media/native_recv.py,
# recv_path.cpp) reads the nominated pair's socket while the path allows it, and the loop
# is not woken per received packet: the stream's SRTP is unprotected with a session of its
# own (the rx key derived again), the receiver statistics, the jitter buffer and the
# decoder's state are carried on from Python's and given back at the end of the stretch.
# Every other datagram (STUN, DTLS, SRTCP, other streams) comes back through a ring to the
# pair's StunProtocol, as if asyncio had read it. Internals read here: the receiver's
# __remote_streams (StreamStatistics: written back every tick, so its RRs and getStats
# are C's), __codecs, __active_ssrc, _enabled, _track; the transport's rx counters.

_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"  # ssrc -> StreamStatistics
_RX_CODECS = "_RTCRtpReceiver__codecs"  # payload type -> RTCRtpCodecParameters
_ACTIVE_SSRC = "_RTCRtpReceiver__active_ssrc"  # ssrc -> datetime (getSynchronizationSources)
_STATS_FIELDS = ("base_seq", "max_seq", "cycles", "packets_received", "_jitter_q4",
                 "_last_arrival", "_last_timestamp", "_clockrate")  # fmt: skip
NATIVE_RECV_MAX_STRETCH = 30_000  # packets: aiortc's session guesses the index within 2^15
NATIVE_ELSEWHERE_TICKS = 10  # ticks the receive path stays off a pair the stream left
SRTP_FAILURES_PER_TICK = 4  # of the stream's packets in 100 ms, none authenticated: hand back


def native_recv_enabled() -> bool:
    """The shim has the receive path and ``HELLO_TUI_NATIVE_RECV`` is not ``0``."""
    if os.environ.get("HELLO_TUI_NATIVE_RECV") == "0":
        return False
    from hello_tui.media import native_recv

    return native_recv.available()


def rx_srtp_session(dtls: Any, ssrc: int) -> pylibsrtp.Session:
    """An inbound SRTP session with aiortc's rx key (derived again, as :func:`tx_srtp_key`
    does the tx one), for ``ssrc``'s RTP only (SRTCP stays aiortc's)."""
    key, profile = tx_srtp_key(dtls, rx=True)
    policy = pylibsrtp.Policy(
        key=key, ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC, ssrc_value=ssrc, srtp_profile=profile
    )
    policy.allow_repeat_tx = True  # as aiortc's rx policy
    policy.window_size = 1024
    return pylibsrtp.Session(policy)


def _stats_fields(stream: Any) -> list[float]:
    """A StreamStatistics as recv_path.cpp's rp_set_stats takes it."""
    base, top, cycles, received, q4, arrival, ts, rate = (getattr(stream, n) for n in _STATS_FIELDS)
    return [float(base is not None), float(base or 0), float(top is not None), float(top or 0),
            float(cycles), float(received), float(q4), float(arrival is not None),
            float(arrival or 0), float(ts is not None), float(ts or 0), float(rate)]  # fmt: skip


def _apply_stats(stream: Any, v: list[float]) -> None:
    stream.base_seq = int(v[1]) if v[0] else None
    stream.max_seq = int(v[3]) if v[2] else None
    stream.cycles, stream.packets_received, stream._jitter_q4 = int(v[4]), int(v[5]), int(v[6])
    stream._last_arrival = int(v[8]) if v[7] else None
    stream._last_timestamp = int(v[10]) if v[9] else None


def _live_stream(streams: dict[int, Any]) -> int | None:
    """The SSRC of the one remote stream with a packet in the last second (a far side's
    SSRC change leaves the old stream's statistics behind), or None."""
    if len(streams) == 1:
        return int(next(iter(streams)))
    now = time.time()
    live = [
        ssrc
        for ssrc, s in streams.items()
        if s._last_arrival is not None and now - s._last_arrival / s._clockrate < 1
    ]
    return live[0] if len(live) == 1 else None


def _sink_of(track: Any) -> Any:
    """The sink playing ``track`` with its blocks in C (through wrappers that keep the
    track they forward as ``.track``), or None."""
    from hello_tui.media import native_recv

    for sink in native_recv.consumers():
        t = getattr(sink, "track", None)
        for _ in range(4):
            if t is None:
                break
            if t is track:
                return sink
            t = getattr(t, "track", None)
    return None


_PAUSED = "_hello_tui_paused"  # a datagram transport we paused by hand (Python 3.11.2)


def _pauses_itself(transport: Any) -> bool:
    """Whether asyncio's datagram transport has ``pause_reading`` of its own: Python 3.11.2
    (Debian 12's, what pipx uses there) has it on stream transports only (later 3.11
    releases moved it to ``_SelectorTransport``), and the inherited one raises."""
    return type(transport).pause_reading is not asyncio.ReadTransport.pause_reading


def pause_datagram_reading(transport: Any) -> None:
    """The loop stops reading the transport's socket (the kernel keeps what arrives);
    where the transport cannot, what later 3.11 releases do: the selector forgets the fd."""
    if _pauses_itself(transport):
        transport.pause_reading()
        return
    missing = [
        n for n in ("_loop", "_sock_fd", "_closing", "_read_ready") if not hasattr(transport, n)
    ]
    if missing:  # (_loop is a slot, _read_ready a method: hasattr, not vars)
        raise AiortcAdapterError(f"{type(transport).__name__} has no {', '.join(missing)}")
    if transport._closing or getattr(transport, _PAUSED, False):
        return
    transport._loop._remove_reader(transport._sock_fd)
    setattr(transport, _PAUSED, True)


def resume_datagram_reading(transport: Any) -> None:
    """Undo :func:`pause_datagram_reading` (a closed transport: nothing)."""
    if _pauses_itself(transport):
        transport.resume_reading()
        return
    if transport._closing or not getattr(transport, _PAUSED, False):
        return
    setattr(transport, _PAUSED, False)
    transport._loop._add_reader(transport._sock_fd, transport._read_ready)


class _NativeReceiver:
    """One audio receiver's stretches of C receiving (see the section's comment)."""

    def __init__(self, receiver: RTCRtpReceiver, path: _FastPath) -> None:
        for name in (_REMOTE_STREAMS, _RX_CODECS, _ACTIVE_SSRC, _JITTER, _DQUEUE, "_track",
                     "_enabled"):  # fmt: skip
            _require(receiver, name)
        self.receiver = weakref.ref(receiver)
        self.path = path
        self.recv: Any = None  # the NativeRecv of the stretch running
        self.stretches = 0  # (tests and benchmarks read these)
        self.packets_in_c = 0
        self.cpu_seconds = 0.0
        self.ends: dict[str, int] = {}
        self.refused: dict[str, int] = {}  # why C could not take over at a tick: how often
        self.last: Any = None
        self._before: Any = None  # the counters at the tick before
        self._rtp_seen = -1  # path.rtp_in when the last stretch ended
        self._pair: Any = None
        self._sink: Any = None
        self._ssrc = 0
        self._pt = 0
        # After a hand-back for the stream coming through another socket, the same pair
        # is not read from C again for a while (each such stretch would end at once).
        self._elsewhere: Any = None
        self._elsewhere_ticks = 0
        self._protocol: Any = None  # the pair's StunProtocol and transport C reads for
        self._transport: Any = None
        self._base = [0, 0, 0, 0]  # wire bytes, packets, frames, samples applied so far
        _NATIVE_RECEIVERS[receiver] = self

    def check(self) -> tuple[Any, Any, int, int, Any] | str:
        """(the pair, the sink, the SSRC, the payload type, the decoder) when C may
        receive now, or why not."""
        receiver = self.receiver()
        if receiver is None:
            return "the receiver is gone"
        if not receiver._enabled:
            return "the receiver is disabled (direction)"
        dtls = receiver.transport
        if dtls._state is not _CONNECTED or dtls._rx_srtp is None:
            return "DTLS not connected"
        pair = direct_pair(self.path._connection)
        if pair is None:
            return "the nominated pair is not a plain UDP one"
        queue = getattr(receiver, _DQUEUE)
        decoder = getattr(queue, "_decoder", None)
        if not isinstance(queue, _InlineDecoderQueue) or decoder is None:
            return "no libopus decoder yet"
        jb = getattr(receiver, _JITTER)
        if not isinstance(jb, SpeechJitterBuffer) or jb.capacity > 256:
            return "not the speech jitter buffer"
        ssrc = _live_stream(getattr(receiver, _REMOTE_STREAMS))
        opus = [pt for pt, c in getattr(receiver, _RX_CODECS).items()
                if c.mimeType.lower() == "audio/opus"]  # fmt: skip
        if ssrc is None or len(opus) != 1:
            return "not one remote stream of one Opus payload type"
        track = receiver._track
        sink = _sink_of(track) if track is not None else None
        if track is None or sink is None or sink.native_playout() is None:
            return "no speaker with its blocks in C plays the track"
        if not track._queue.empty():
            return "decoded frames wait for the sink"
        if pair == self._elsewhere and self._elsewhere_ticks > 0:
            self._elsewhere_ticks -= 1
            return "the far side sends to another socket than the nominated pair's"
        return pair, sink, ssrc, opus[0], decoder

    async def run(self) -> None:
        """Every tick: a stretch starts when C may receive, ends when it may no longer."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                await asyncio.sleep(NATIVE_TICK_S)
                receiver = self.receiver()
                if receiver is None or receiver.transport._state in (
                    _DtlsState.CLOSED, _DtlsState.FAILED,
                ):  # fmt: skip
                    self.stop("ended")
                    return
                if self.recv is None:
                    if self.ends.get("failed", 0) + self.ends.get("srtp", 0) >= (
                        NATIVE_MAX_FAILURES
                    ):  # the socket or C's session failed C more than once: Python keeps
                        continue  # it (a wrong session drops each stretch's first packets)
                    if self.path.rtp_in > self._rtp_seen:  # aiortc's session saw the stream
                        self._start(loop)
                    continue
                self.sync()
                end = self._ended()
                if end:
                    self.stop(end)
        except Exception:  # a bug here must not leave the socket unread: Python's again
            log.exception("receive path in C: handing the stream back")
            self.stop("error")
            raise
        finally:
            self.stop("cancelled")
            receiver = self.receiver()
            if receiver is not None:  # (this object holds the transport, which holds the
                _NATIVE_RECEIVERS[receiver] = None  # type: ignore[assignment]  # receiver)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        from hello_tui.media.native_recv import NativeRecv

        found = self.check()
        if isinstance(found, str):
            self.refused[found] = self.refused.get(found, 0) + 1
            return
        (sock, host, port), sink, ssrc, pt, decoder = found
        receiver = self.receiver()
        assert receiver is not None
        jb, dtls = getattr(receiver, _JITTER), receiver.transport
        stream = getattr(receiver, _REMOTE_STREAMS)[ssrc]
        t = jb.tuning
        try:
            session = rx_srtp_session(dtls, ssrc)
            if stream.cycles >> 16:
                set_srtp_roc(session, ssrc, stream.cycles >> 16)
            srtp, _ = srtp_native(session)
            unprotect = ctypes.cast(_srtp_lib().srtp_unprotect, ctypes.c_void_p).value or 0
            state, decode = decoder.native()
            tuning = (t.min_depth_ms, t.max_depth_ms, t.capacity, t.max_conceal_ms,
                      float(t.decode_fec))  # fmt: skip
            recv = NativeRecv(state, decode, tuning, keep=(decoder, session))
        except (AiortcAdapterError, OSError, pylibsrtp.Error) as exc:
            log.info("receive path in C not used: %s", exc)
            self._rtp_seen = self.path.rtp_in
            return
        if not recv.set_jitter(*jb.export_state()):
            recv.close()
            return
        recv.set_stats(_stats_fields(stream))
        playout = sink.native_playout()
        protocol = getattr(self.path._connection, _NOMINATED)[1].protocol
        transport = protocol.transport
        try:
            pause_datagram_reading(transport)  # the loop reads this socket no more: C does
        except AiortcAdapterError as exc:  # another loop's transport: Python keeps reading
            log.info("receive path in C not used: %s", exc)
            recv.close()
            self._rtp_seen = self.path.rtp_in
            return
        if not recv.start(sock.fileno(), ssrc, pt, srtp, unprotect, playout.handle,
                          keep=(playout, sink)):  # fmt: skip
            resume_datagram_reading(transport)
            recv.close()
            self._rtp_seen = self.path.rtp_in
            return
        self.recv, self._pair, self._sink, self._ssrc = recv, (sock, host, port), sink, ssrc
        self._pt = pt
        self._protocol, self._transport = protocol, transport
        self._base = [0, 0, 0, 0]
        self.last = self._before = None
        loop.add_reader(recv.ring_fd, self.drain)
        self.stretches += 1
        if self.stretches == 1:
            log.info("receive path in C: a thread reads %s:%d's stream", host, port)

    def drain(self) -> None:
        """The datagrams C handed back, to the pair's protocol as asyncio would."""
        recv = self.recv
        if recv is None:
            return
        for _ in range(64):
            if self.recv is not recv:
                return  # (a datagram just delivered ended the stretch: see python_rtp)
            item = recv.pop()
            if item is None:
                return
            self._deliver(item)

    def _deliver_all(self, items: list[tuple[bytes, tuple[str, int]]]) -> None:
        for item in items:
            self._deliver(item)

    def _deliver(self, item: tuple[bytes, tuple[str, int]]) -> None:
        try:
            self._protocol.datagram_received(*item)
        except Exception:  # as asyncio's _read_ready: logged, the next one goes on
            log.exception("datagram handler failed")

    def sync(self) -> None:
        """C's counters into what aiortc, the quality panel and the sink read."""
        recv, receiver = self.recv, self.receiver()
        if recv is None or receiver is None:
            return
        c = recv.counters()
        self.last = c
        dtls = receiver.transport
        stream = getattr(receiver, _REMOTE_STREAMS).get(self._ssrc)
        if stream is not None:
            _apply_stats(stream, recv.stats())
        if c.rtp_packets:
            from aiortc import clock

            getattr(receiver, _ACTIVE_SSRC)[self._ssrc] = clock.current_datetime()
        b = self._base
        setattr(dtls, _RX_BYTES, getattr(dtls, _RX_BYTES) + c.wire_bytes - b[0])
        setattr(dtls, _RX_PACKETS, getattr(dtls, _RX_PACKETS) + c.wire_packets - b[1])
        self._sink.native_received(c.frames - b[2], c.samples - b[3])
        self._base = [c.wire_bytes, c.wire_packets, c.frames, c.samples]
        fields, _, _ = recv.jitter()
        s = getattr(receiver, _JITTER).stats
        (s.released, s.concealed, s.recovered, s.gaps, s.late, s.duplicates,
         s.resets) = (int(v) for v in fields[13:20])  # fmt: skip
        s.target_ms, s.jitter_ms = fields[11], round(fields[12], 2)

    def _ended(self) -> str:
        c, before = self.last, self._before
        self._before = c
        if c is not None and c.failed:
            return "failed"
        if (c is not None and before is not None and c.rtp_packets == before.rtp_packets
                and c.auth_failures - before.auth_failures >= SRTP_FAILURES_PER_TICK):  # fmt: skip
            # Packets come but none authenticates: C's session is wrong (a rollover counter
            # guessed wrong, keys changed): aiortc's own session takes the stream back.
            return "srtp"
        if c is not None and c.rtp_packets >= NATIVE_RECV_MAX_STRETCH:
            return "long"
        found = self.check()
        if isinstance(found, str):
            return "ineligible"
        if found[0] != self._pair or found[1] is not self._sink or found[2] != self._ssrc:
            return "pair"
        return ""

    def python_rtp(self, packet: RtpPacket) -> None:
        """Python's path is about to hand the receiver an authenticated RTP packet while C
        reads: C did not take it (the far side's new SSRC, another payload type) or it
        came through another socket (a new pair nominated). Python's jitter buffer gets
        it, so it must have C's state first: else the next tick's import would replace
        what it took meanwhile (packets lost, or played twice)."""
        if packet.ssrc != self._ssrc:
            why = "ssrc"
        elif packet.payload_type != self._pt:
            why = "payload type"
        else:
            why = "socket"
            self._elsewhere, self._elsewhere_ticks = self._pair, NATIVE_ELSEWHERE_TICKS
        self.stop(why, later=True)

    def stop(self, why: str, *, later: bool = False) -> None:
        """Hand the stream back to Python (the thread joined first: nothing is lost);
        ``later``: the ring's rest is delivered on the loop's next turn (after the packet
        being handled now, which came before them)."""
        recv, self.recv = self.recv, None
        if recv is None:
            return
        recv.stop()
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(recv.ring_fd)
        try:
            self.recv = recv  # (the last sync, then the ring's rest, then Python's again)
            self.sync()
            receiver = self.receiver()
            if receiver is not None:
                getattr(receiver, _JITTER).import_state(*recv.jitter())
            self.recv = None
            rest = []
            while (item := recv.pop()) is not None:  # (bounded: the ring's slots)
                rest.append(item)
            if later:
                asyncio.get_running_loop().call_soon(self._deliver_all, rest)
            else:
                self._deliver_all(rest)
        finally:
            self.recv = None
            resume_datagram_reading(self._transport)  # (a closed transport: nothing)
            self._rtp_seen = self.path.rtp_in
            recv.close()
        c = self.last
        self.ends[why] = self.ends.get(why, 0) + 1
        if c is not None:
            self.packets_in_c += c.rtp_packets
            self.cpu_seconds += c.cpu_seconds
            log.info(
                "receive path in C: stretch %d over (%s) after %d packets, %.0f us a packet, "
                "%d auth failures, %d replays, %d malformed, %d to Python (%d dropped)",
                self.stretches, why, c.rtp_packets, c.cpu_seconds * 1e6 / max(1, c.rtp_packets),
                c.auth_failures, c.replays, c.malformed, c.to_python, c.ring_drops,
            )  # fmt: skip


_UNWATCHED: Any = object()
_NATIVE_RECEIVERS: weakref.WeakKeyDictionary[RTCRtpReceiver, _NativeReceiver] = (
    weakref.WeakKeyDictionary()
)
_RECEIVER_TASKS: set[asyncio.Future[None]] = set()


def _watch_receiver(receiver: RTCRtpReceiver, path: _FastPath) -> None:
    """From the audio receiver's first packet on the fast path: its C stretches' task."""
    if not native_recv_enabled():
        _NATIVE_RECEIVERS[receiver] = None  # type: ignore[assignment]  # (never again)
        return
    try:
        native = _NativeReceiver(receiver, path)
    except AiortcAdapterError as exc:
        log.info("receive path in C not used: %s", exc)
        _NATIVE_RECEIVERS[receiver] = None  # type: ignore[assignment]
        return
    task = asyncio.ensure_future(native.run())
    _RECEIVER_TASKS.add(task)
    task.add_done_callback(_RECEIVER_TASKS.discard)


def native_receiver(receiver: RTCRtpReceiver) -> _NativeReceiver | None:
    """The receiver's C receive path's bookkeeping (None: the knob is off, or not started)."""
    return _NATIVE_RECEIVERS.get(receiver)


_FAST_PATHS: weakref.WeakKeyDictionary[Any, _FastPath] = weakref.WeakKeyDictionary()


def fast_path(dtls: Any) -> _FastPath | None:
    """The fast path of a DTLS transport (None: it has none)."""
    return _FAST_PATHS.get(dtls)


def install_fast_path(pc: RTCPeerConnection) -> RTCPeerConnection:
    """Give each DTLS transport ``pc`` creates the :class:`_FastPath`: aioice's
    ``Connection.data_received`` and aiortc's ``RTCDtlsTransport._send_rtp``
    shadowed on the instances (and each ``StunProtocol.datagram_received`` once
    media flows)."""

    def adapt(connection: Any, dtls: Any) -> None:
        for name in (_RX_SRTP, _TX_SRTP, _DTLS_STATE, _RX_BYTES, _RX_PACKETS, _TX_BYTES,
                     _TX_PACKETS, _ROUTER, _EXT_MAP):  # fmt: skip
            _require(dtls, name)
        for name in (_NOMINATED, _PROTOCOLS):
            _require(connection, name)
        _require_method(dtls, _HANDLE_RTCP_DATA)
        _require_method(dtls, _SEND_RTP)
        _require_method(connection, _DATA_RECEIVED)
        path = _FAST_PATHS[dtls] = _FastPath(connection, dtls)
        setattr(connection, _DATA_RECEIVED, path.data_received)
        setattr(dtls, _SEND_RTP, path.send_rtp)

    return _on_each_transport(pc, adapt)


# ----------------------------------------------------------------- first-use costs


_DTLS_CONTEXT = "_create_ssl_context"  # RTCCertificate: (srtp_profiles) -> SSL.Context


def _warm_dtls() -> None:
    """One DTLS handshake between two throwaway certificates, in memory (no
    socket): what ``RTCDtlsTransport.start`` runs, client and server side, up to
    the SRTP keys. In a process that has imported the call stack, its first
    DTLS context costs ~2 ms, every later one 0.5-0.7 ms (in a bare interpreter
    the first is 16-18 ms: the certificate's conversion imports); unwarmed, the
    first call paid it on each side after ICE, before its first DTLS flight,
    with the handshake's other first-time paths."""
    from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate
    from OpenSSL import SSL

    _require_method(RTCCertificate, _DTLS_CONTEXT)
    ends = []
    for accept in (False, True):
        context = getattr(RTCCertificate.generateCertificate(), _DTLS_CONTEXT)(
            srtp_profiles=SRTP_PROFILES
        )
        end = SSL.Connection(context)
        end.set_accept_state() if accept else end.set_connect_state()
        ends.append(end)
    done = [False, False]
    for _ in range(8):  # DTLS 1.2: two round trips
        for i, (end, other) in enumerate((ends, ends[::-1])):
            if not done[i]:
                try:
                    end.do_handshake()
                    done[i] = True
                except SSL.WantReadError:
                    pass
            with contextlib.suppress(SSL.WantReadError):
                while True:
                    other.bio_write(end.bio_read(4096))
        if all(done):
            break
    if not all(done):
        raise AiortcAdapterError("the warm-up's DTLS handshake did not complete")
    ends[0].export_keying_material(b"EXTRACTOR-dtls_srtp", 60)
    ends[0].get_peer_certificate(as_cryptography=True)


_WARMING = threading.Lock()
_warmed = False  # once per process: a session starts it early, the phone again


def warm_up() -> None:
    """Pay once, before the first call, what a process pays at its first call
    (blocking; any thread; never raises): OpenSSL's first key and certificate
    (aiortc makes one per connection: ~7-14 ms the first time, 0.4 ms after,
    before the offer or the answer), its first DTLS context and handshake
    (:func:`_warm_dtls`: ~2 ms the first time, 0.5-0.7 after, on both sides'
    path between ICE and the first DTLS flight), libopus's first encode (~4-12 ms, at the
    first packet sent) and the decoder's library (at the first packet received).
    Once per process: a second call (the phone's, after the session's) waits for
    the first and returns."""
    global _warmed
    with _WARMING:
        if _warmed:
            return
        _warmed = True
        try:
            _warm_dtls()
            SpeechOpusEncoder().encode(make_frame(np.zeros(SAMPLES_PER_FRAME, dtype=np.int16), 0))
            OpusDecoder(SAMPLE_RATE, 1)
        except Exception as exc:  # met again, and handled, where a call needs it
            log.info("warm-up: %s", exc)
