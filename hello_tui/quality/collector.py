"""``QualityCollector``: consecutive aiortc ``getStats()`` snapshots → ``QualitySample``.

aiortc 1.16's stats differ from the W3C webrtc-stats spec; this module is
where that is absorbed (each point is unit-tested in tests/quality):

* ``inbound-rtp.jitter`` / ``remote-inbound-rtp.jitter`` are the RFC 3550
  integers in RTP timestamp units: divided by the codec clock rate (48000 for
  Opus) → seconds → ms.
* ``remote-inbound-rtp.fractionLost`` is the raw 8-bit RTCP field: / 256.
* ``remote-inbound-rtp.roundTripTime`` (seconds) is an EWMA (α = 0.85) over
  RTCP reports, ``None`` until the first report answering our SR; there is
  no ``candidate-pair`` stat. A 200 ms step takes ~9 reports (~10 s) to show
  as +150 ms, so ``rtt_ms`` is the *latest raw* RTT of one RTCP report block
  instead (``RTT = arrival − LSR − DLSR``), measured by the adapter's
  :func:`~hello_tui.media.aiortc_adapter.watch_rtcp`; aiortc's smoothed value
  only fills in before the first raw one (or if the watch cannot attach).
* ``remote-inbound-rtp.ssrc`` is the *peer's* SSRC (the RR's sender), not
  the stream's; reports are matched to streams by aiortc's stats ids
  (``outbound-rtp_<id(sender)>`` ↔ ``remote-inbound-rtp_<id(sender)>``).
* ``inbound-rtp`` has no ``bytesReceived``: payload bytes in are estimated as
  packets received × the peer's average payload size, taken from its RTCP
  sender reports (``remote-outbound-rtp.bytesSent / packetsSent``, per SR
  interval). That is the W3C definition (payload bytes, no headers) and it
  matches ``outbound-rtp.bytesSent`` on the other side; the transport's
  ``bytesReceived`` would add SRTP/RTP/RTCP overhead and mix all streams.
* Stats entries are never removed: a stale ``remote-inbound-rtp`` (peer gone
  quiet) keeps its last values, so RTCP-derived fields older than
  ``STALE_AFTER`` seconds are reported as unknown (``None``).
* No audio level, jitter-buffer, frame or candidate-pair stats at all: levels
  and buffer depth come from our own media path (``SinkStats``, a
  :class:`~hello_tui.media.tracks.MeteredTrack` on the source), the candidate
  types from aioice's nominated pair, the network type from the OS
  (``/sys/class/net``).

What aiortc keeps private (the negotiated codecs, the nominated ICE pair) is
read through :mod:`hello_tui.media.aiortc_adapter`, never here.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiortc import RTCPeerConnection
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRemoteOutboundRtpStreamStats,
    RTCStats,
)

from hello_tui.media.aiortc_adapter import (
    AiortcAdapterError,
    RtcpWatch,
    jitter_counts,
    negotiated_codecs,
    nominated_candidates,
    watch_rtcp,
)
from hello_tui.media.sinks import SinkStats
from hello_tui.media.tracks import VideoReading
from hello_tui.quality.mos import bars_from_mos, estimate
from hello_tui.quality.sample import QualitySample
from hello_tui.signaling.protocol import CANDIDATE_TYPES, CandidateType, NetworkType, one_of

log = logging.getLogger(__name__)

STALE_AFTER = 5.0  # seconds: RTCP-derived values older than this are unknown
DEFAULT_CLOCK_RATES = {"audio": 48000, "video": 90000}
SYSFS_NET = Path("/sys/class/net")

# Linux ARPHRD_* values (include/uapi/linux/if_arp.h) seen in /sys/class/net/<if>/type.
ARPHRD_ETHER = 1
ARPHRD_RAWIP = 519  # raw-IP modems (qmi_wwan, mhi): cellular
ARPHRD_LOOPBACK = 772
CELLULAR_PREFIXES = ("wwan", "rmnet", "ccmni", "usb-modem")


# --- unit conversions (pure) -------------------------------------------------------------


def rtp_jitter_ms(jitter: int | float, clock_rate: int) -> float:
    """aiortc's jitter (RTP timestamp units) in milliseconds."""
    return float(jitter) * 1000.0 / clock_rate


def rtcp_fraction(raw: int | float) -> float:
    """RTCP's 8-bit ``fraction lost`` (0..255, a fixed-point fraction of 256) as 0..1."""
    return min(max(float(raw), 0.0), 255.0) / 256.0


def interval_loss(
    received_before: int, lost_before: int, received_now: int, lost_now: int
) -> tuple[int, float]:
    """``(packets lost, fraction lost)`` between two cumulative inbound-rtp readings.

    RFC 3550 A.3: expected = Δreceived + Δlost. Duplicates can make Δlost
    negative; that counts as no loss (as RTCP's fraction lost does).
    """
    lost = max(0, lost_now - lost_before)
    received = max(0, received_now - received_before)
    expected = received + lost
    return lost, (lost / expected if expected else 0.0)


def effective_loss(expected: int, lost: int, recovered: int, late: int = 0) -> float:
    """The interval's loss as heard, 0..1: of the ``expected`` packets, the ``lost``
    ones less those our decoder recovered from in-band FEC, plus those that came
    too late for the jitter buffer (received for RTP, never played). Counts from
    two sources a moment apart: clamped to 0..1."""
    if expected <= 0:
        return 0.0
    return min(1.0, max(0, lost - max(0, recovered) + max(0, late)) / expected)


def kbps(byte_count: float, seconds: float) -> float | None:
    """Bytes over an interval as kilobits per second (None for an empty interval)."""
    if seconds <= 0:
        return None
    return byte_count * 8.0 / seconds / 1000.0


def codec_name(mime_type: str, clock_rate: int, channels: int | None) -> str:
    """``opus/48000/2``: the SDP rtpmap form (subtype/clock/channels when > 1)."""
    name = mime_type.split("/", 1)[-1].lower()
    text = f"{name}/{clock_rate}"
    return f"{text}/{channels}" if channels and channels > 1 else text


# --- which stats belong to which stream --------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamRefs:
    """The stats ids of one transceiver's four RTP stats, and its codec."""

    kind: str
    inbound_id: str
    remote_outbound_id: str
    outbound_id: str
    remote_inbound_id: str
    clock_rate: int
    codec: str | None = None


def stream_refs(pc: RTCPeerConnection) -> list[StreamRefs]:
    """One :class:`StreamRefs` per transceiver, from aiortc's stats-id scheme.

    The negotiated codec is the transceiver's first (what its sender encodes
    with: :func:`~hello_tui.media.aiortc_adapter.negotiated_codecs`); the clock
    rate defaults per kind before negotiation.
    """
    refs = []
    for transceiver in pc.getTransceivers():
        codecs = negotiated_codecs(transceiver)
        codec = codecs[0] if codecs else None
        rid, sid = id(transceiver.receiver), id(transceiver.sender)
        refs.append(
            StreamRefs(
                kind=transceiver.kind,
                inbound_id=f"inbound-rtp_{rid}",
                remote_outbound_id=f"remote-outbound-rtp_{rid}",
                outbound_id=f"outbound-rtp_{sid}",
                remote_inbound_id=f"remote-inbound-rtp_{sid}",
                clock_rate=codec.clockRate
                if codec
                else DEFAULT_CLOCK_RATES.get(transceiver.kind, 90000),
                codec=codec_name(codec.mimeType, codec.clockRate, codec.channels)
                if codec
                else None,
            )
        )
    return refs


# --- ICE and the OS: candidate and network types ----------------------------------------


@dataclass(frozen=True, slots=True)
class IcePath:
    """The selected candidate pair, reduced to what quality reporting needs."""

    local_type: CandidateType | None = None
    remote_type: CandidateType | None = None
    local_address: str | None = None  # the local *base* address (host IP behind srflx/relay)


def selected_path(pc: RTCPeerConnection) -> IcePath:
    """The nominated pair of the first component, from aioice (aiortc has no pair stats)."""
    for transceiver in pc.getTransceivers():
        pair = nominated_candidates(transceiver)
        if pair is None:
            continue
        local, remote = pair
        base = local.host if local.type == "host" else (local.related_address or local.host)
        return IcePath(
            one_of(local.type, CANDIDATE_TYPES), one_of(remote.type, CANDIDATE_TYPES), base
        )
    return IcePath()


def classify_interface(name: str, sysfs: Path = SYSFS_NET) -> NetworkType:
    """``wired``/``wifi``/``cellular``/``loopback``/``unknown`` for a Linux interface.

    Wi-Fi: ``wireless/`` or ``phy80211`` present, or ``DEVTYPE=wlan``.
    Cellular: ``DEVTYPE=wwan``, a raw-IP link, or a modem name (wwan*, rmnet*).
    Wired: any other Ethernet-type link (also bridges, VLANs, veth in a container).
    Tunnels (VPN, WireGuard), PPP and anything unreadable: unknown — we do not
    guess what is underneath.
    """
    base = sysfs / name
    try:
        link_type = int((base / "type").read_text().strip())
    except (OSError, ValueError):
        return "unknown"
    try:
        uevent = (base / "uevent").read_text()
    except OSError:
        uevent = ""
    devtype = ""
    for line in uevent.splitlines():
        if line.startswith("DEVTYPE="):
            devtype = line.partition("=")[2].strip()
    if link_type == ARPHRD_LOOPBACK:
        return "loopback"
    if (base / "wireless").exists() or (base / "phy80211").exists() or devtype == "wlan":
        return "wifi"
    if devtype == "wwan" or link_type == ARPHRD_RAWIP or name.startswith(CELLULAR_PREFIXES):
        return "cellular"
    if link_type == ARPHRD_ETHER:
        return "wired"
    return "unknown"


def interface_for_address(address: str) -> str | None:
    """The name of the local interface that holds ``address`` (via ifaddr, as aioice does)."""
    import ifaddr  # aioice's own dependency, only needed here

    try:
        wanted = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return None
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            raw = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            try:
                if ipaddress.ip_address(raw.split("%", 1)[0]) == wanted:
                    return str(adapter.nice_name or adapter.name)
            except ValueError:
                continue
    return None


def network_type_for_address(address: str | None, sysfs: Path = SYSFS_NET) -> NetworkType:
    """The network type of the interface a local (base) address lives on.

    A loopback address is ``loopback`` wherever it is; an address we cannot
    place (not Linux, gone, unreadable) is ``unknown``. Only the category ever
    leaves this function: no interface name, no address.
    """
    if not address:
        return "unknown"
    try:
        if ipaddress.ip_address(address.split("%", 1)[0]).is_loopback:
            return "loopback"
    except ValueError:
        return "unknown"
    name = interface_for_address(address)
    return classify_interface(name, sysfs) if name else "unknown"


# --- our own media path ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaReading:
    """What our media path says at sampling time (all optional)."""

    sink: SinkStats | None = None
    source_level: float | None = None
    video: VideoReading | None = None
    fec_recovered: int | None = None  # audio packets in recovered from FEC, cumulative
    late_dropped: int | None = None  # audio packets in dropped by the jitter buffer as late


# --- the stateful part -------------------------------------------------------------------


@dataclass
class _InboundBytes:
    """Estimates payload bytes in for one stream from packets × the peer's SR average."""

    packets_seen: int = 0  # packetsReceived at the previous update
    packets_counted: int = 0  # packets already turned into bytes
    bytes: float = 0.0
    avg_payload: float | None = None
    last_sr: tuple[int, int] | None = None  # (packetsSent, bytesSent) of the last SR seen

    def update(self, packets_received: int, sr: RTCRemoteOutboundRtpStreamStats | None) -> float:
        """Account for packets received so far; return the bytes of this interval's packets.

        Packets that arrived before the first SR are added to :attr:`bytes` once an
        average is known, but not to that interval's bitrate (no fake spike).
        """
        interval_packets = max(0, packets_received - self.packets_seen)
        self.packets_seen = packets_received
        if sr is not None and sr.packetsSent > 0:
            current = (sr.packetsSent, sr.bytesSent)
            if self.last_sr is not None and current[0] > self.last_sr[0]:
                self.avg_payload = (current[1] - self.last_sr[1]) / (current[0] - self.last_sr[0])
            elif self.last_sr is None:
                self.avg_payload = current[1] / current[0]
            self.last_sr = current
        if self.avg_payload is None:
            return 0.0
        self.bytes += max(0, packets_received - self.packets_counted) * self.avg_payload
        self.packets_counted = packets_received
        return interval_packets * self.avg_payload


@dataclass
class StatsInterpreter:
    """Turns consecutive reports (plus media readings) into samples; keeps the deltas.

    Separate from the peer connection so it can be fed reports built from
    aiortc's own ``RTC*Stats`` classes in tests.
    """

    started_at: float  # monotonic time the call connected (t = 0)
    _prev_at: float | None = field(default=None, init=False)
    _prev_received: int = field(default=0, init=False)
    _prev_lost: int = field(default=0, init=False)
    _prev_recovered: int = field(default=0, init=False)
    _prev_late: int = field(default=0, init=False)
    _prev_sent: int = field(default=0, init=False)
    _prev_video_frames: int = field(default=0, init=False)
    _inbound: dict[str, _InboundBytes] = field(default_factory=dict, init=False)

    def interpret(
        self,
        report: Mapping[str, RTCStats],
        refs: list[StreamRefs],
        now: float,
        *,
        wall: datetime.datetime | None = None,
        media: MediaReading | None = None,
        ice: IcePath | None = None,
        network_type: NetworkType = "unknown",
        raw_rtt_ms: Mapping[str, float] | None = None,
    ) -> QualitySample:
        """One sample for the interval since the previous call (or since ``started_at``).

        ``raw_rtt_ms``: fresh unsmoothed RTTs (ms) by ``remote-inbound-rtp`` stats id
        (from an :class:`RtcpWatch`); preferred over aiortc's smoothed ``roundTripTime``.
        """
        raw_rtt_ms = raw_rtt_ms or {}
        wall = wall or datetime.datetime.now(datetime.UTC)
        media = media or MediaReading()
        ice = ice or IcePath()
        interval = now - (self._prev_at if self._prev_at is not None else self.started_at)

        audio = next((r for r in refs if r.kind == "audio"), refs[0] if refs else None)

        def fresh(stat: RTCStats) -> bool:
            return (wall - stat.timestamp).total_seconds() <= STALE_AFTER

        # Audio in: jitter and loss, what the user hears.
        jitter_ms = None
        received = lost = 0
        if audio is not None:
            inbound = report.get(audio.inbound_id)
            if isinstance(inbound, RTCInboundRtpStreamStats):
                jitter_ms = rtp_jitter_ms(inbound.jitter, audio.clock_rate)
                received, lost = inbound.packetsReceived, inbound.packetsLost
        lost_interval, fraction_lost = interval_loss(
            self._prev_received, self._prev_lost, received, lost
        )
        recovered = media.fec_recovered if media.fec_recovered is not None else self._prev_recovered
        late = media.late_dropped if media.late_dropped is not None else self._prev_late
        effective_fraction_lost = effective_loss(
            max(0, received - self._prev_received) + lost_interval,
            lost_interval,
            recovered - self._prev_recovered,
            late - self._prev_late,
        )

        # RTT and the peer's view of our stream (RTCP receiver reports).
        rtt_ms = remote_jitter_ms = remote_fraction = None
        ordered = ([audio] if audio else []) + [r for r in refs if r is not audio]
        for ref in ordered:
            if rtt_ms is None and ref.remote_inbound_id in raw_rtt_ms:
                rtt_ms = max(0.0, raw_rtt_ms[ref.remote_inbound_id])
            remote_in = report.get(ref.remote_inbound_id)
            if not isinstance(remote_in, RTCRemoteInboundRtpStreamStats) or not fresh(remote_in):
                continue
            if remote_jitter_ms is None and ref is audio:
                remote_jitter_ms = rtp_jitter_ms(remote_in.jitter, ref.clock_rate)
                remote_fraction = rtcp_fraction(remote_in.fractionLost)
            if rtt_ms is None and remote_in.roundTripTime is not None:
                rtt_ms = max(0.0, remote_in.roundTripTime * 1000.0)

        # Bytes: out is aiortc's payload count; in is estimated per stream.
        sent = 0
        added_in = 0.0
        known_in = False
        for ref in refs:
            outbound = report.get(ref.outbound_id)
            if isinstance(outbound, RTCOutboundRtpStreamStats):
                sent += outbound.bytesSent
            inbound = report.get(ref.inbound_id)
            if isinstance(inbound, RTCInboundRtpStreamStats):
                estimator = self._inbound.setdefault(ref.inbound_id, _InboundBytes())
                sr = report.get(ref.remote_outbound_id)
                added_in += estimator.update(
                    inbound.packetsReceived,
                    sr if isinstance(sr, RTCRemoteOutboundRtpStreamStats) else None,
                )
                known_in = known_in or estimator.avg_payload is not None
        bytes_in = int(sum(e.bytes for e in self._inbound.values()))

        # MOS: one-way latency = RTT / 2, jitter and loss as heard (after FEC recovery).
        r = mos = None
        bars = None
        if rtt_ms is not None and jitter_ms is not None:
            r, mos = estimate(rtt_ms / 2.0, jitter_ms, effective_fraction_lost * 100.0)
            bars = bars_from_mos(mos)

        # Video in, from a MeteredTrack on the remote video.
        fps = width = height = None
        if media.video is not None:
            frames = media.video.frames - self._prev_video_frames
            fps = frames / interval if interval > 0 else None
            width, height = media.video.width, media.video.height
            self._prev_video_frames = media.video.frames

        sink = media.sink
        sample = QualitySample(
            t=max(0.0, now - self.started_at),
            interval_s=interval,
            rtt_ms=rtt_ms,
            jitter_ms=jitter_ms,
            remote_jitter_ms=remote_jitter_ms,
            packets_received=received,
            packets_lost=lost,
            packets_lost_interval=lost_interval,
            fraction_lost=fraction_lost,
            remote_fraction_lost=remote_fraction,
            packets_recovered=recovered,
            effective_fraction_lost=effective_fraction_lost,
            bytes_received=bytes_in,
            bytes_sent=sent,
            bitrate_in_kbps=kbps(added_in, interval) if known_in else None,
            bitrate_out_kbps=kbps(sent - self._prev_sent, interval) if refs else None,
            audio_level_in=sink.level if sink else None,
            audio_level_out=media.source_level,
            playout_buffer_ms=sink.buffer_ms if sink else None,
            underruns=sink.underruns if sink else None,
            r_factor=r,
            mos=mos,
            bars=bars,
            codec=audio.codec if audio else None,
            candidate_type=ice.local_type,
            remote_candidate_type=ice.remote_type,
            network_type=network_type,
            video_fps=fps,
            video_width=width,
            video_height=height,
        )
        self._prev_at = now
        self._prev_received, self._prev_lost, self._prev_sent = received, lost, sent
        self._prev_recovered, self._prev_late = recovered, late
        return sample


class QualityCollector:
    """Samples a connected peer connection; create it when the call connects (t = 0).

    ``sink_stats`` gives the remote audio's sink stats (level in, playout
    buffer, underruns); ``source_level`` the outgoing audio level (e.g. a
    :class:`~hello_tui.media.tracks.MeteredTrack`'s ``level``); ``video`` the
    received video's frame count and size (a ``MeteredTrack``'s ``video``).
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        sink_stats: Callable[[], SinkStats] | None = None,
        source_level: Callable[[], float] | None = None,
        *,
        video: Callable[[], VideoReading] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sysfs: Path = SYSFS_NET,
        started_at: float | None = None,
    ) -> None:
        self._pc = pc
        self._sink_stats = sink_stats
        self._source_level = source_level
        self._video = video
        self._clock = clock
        self._sysfs = sysfs
        # t = 0: now, or when the call connected (a call's renewed transport, docs/calls.md)
        t0 = clock() if started_at is None else started_at
        self._interpreter = StatsInterpreter(started_at=t0)
        self._network: dict[str | None, NetworkType] = {}  # base address → type (asked once each)
        self._rtcp: RtcpWatch | None = self._watch()

    def _watch(self) -> RtcpWatch | None:
        """The connection's RTCP watch (raw RTT), picking up new senders; None if it
        cannot attach (aiortc moved): then aiortc's smoothed RTT is used."""
        try:
            return watch_rtcp(self._pc)
        except AiortcAdapterError:
            log.warning("raw RTT unavailable; using aiortc's smoothed RTT", exc_info=True)
            return None

    def raw_rtt_ms(self) -> dict[str, float]:
        """Fresh (≤ ``STALE_AFTER`` s) raw RTTs in ms by ``remote-inbound-rtp`` stats id."""
        if self._rtcp is None:
            return {}
        now = time.monotonic()
        return {
            f"remote-inbound-rtp_{key}": reading.rtt_s * 1000.0
            for key, reading in self._rtcp.readings().items()
            if now - reading.at <= STALE_AFTER
        }

    def _jitter_counts(self) -> tuple[int | None, int | None]:
        """Audio packets recovered from FEC and dropped as late so far (None, None
        without the speech jitter buffer)."""
        counts = [jitter_counts(t) for t in self._pc.getTransceivers() if t.kind == "audio"]
        known = [c for c in counts if c is not None]
        if not known:
            return None, None
        return sum(c[0] for c in known), sum(c[1] for c in known)

    async def sample(self) -> QualitySample:
        """Take one getStats() snapshot and return the sample for the interval since the last."""
        report = await self._pc.getStats()
        if self._rtcp is not None:
            self._rtcp = self._watch()  # transceivers added since (e.g. video)
        ice = selected_path(self._pc)
        if ice.local_address not in self._network:
            self._network[ice.local_address] = network_type_for_address(
                ice.local_address, self._sysfs
            )
        recovered, late = self._jitter_counts()
        media = MediaReading(
            sink=self._sink_stats() if self._sink_stats else None,
            source_level=self._source_level() if self._source_level else None,
            video=self._video() if self._video else None,
            fec_recovered=recovered,
            late_dropped=late,
        )
        return self._interpreter.interpret(
            report,
            stream_refs(self._pc),
            self._clock(),
            media=media,
            ice=ice,
            network_type=self._network[ice.local_address],
            raw_rtt_ms=self.raw_rtt_ms(),
        )

    async def run(self, interval: float = 1.0) -> AsyncIterator[QualitySample]:
        """Yield a sample every ``interval`` seconds (absolute deadlines, no drift) until
        cancelled or the connection closes."""
        deadline = self._clock()
        while self._pc.connectionState not in ("closed", "failed"):
            deadline += interval
            delay = deadline - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                deadline = self._clock()  # fell behind (blocked loop): do not burst
            yield await self.sample()


__all__ = [
    "IcePath",
    "MediaReading",
    "QualityCollector",
    "StatsInterpreter",
    "StreamRefs",
    "classify_interface",
    "codec_name",
    "effective_loss",
    "interface_for_address",
    "interval_loss",
    "kbps",
    "network_type_for_address",
    "rtcp_fraction",
    "rtp_jitter_ms",
    "selected_path",
    "stream_refs",
]
