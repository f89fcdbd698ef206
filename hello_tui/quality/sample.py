"""``QualitySample``: one second of a call's quality, the unit everything else reads.

The live panel, the CLI line, ``--json`` events, the end-of-call summary and
telemetry all consume these, so a number shown is a number reported. Field
names follow the W3C webrtc-stats names (snake_case) where one exists, with a
unit suffix where our unit differs from the spec's (the spec uses seconds;
we use milliseconds). docs/quality.md maps every field to its source.

``None`` means "not known yet / not applicable" (e.g. RTT before the first
RTCP receiver report, video fields on an audio-only call), never zero.

Candidate and network types are the protocol's words (``CandidateType``,
``NetworkType`` in :mod:`hello_tui.signaling.protocol`), the ones telemetry sends.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hello_tui.signaling.protocol import CandidateType, NetworkType


@dataclass(frozen=True, slots=True, kw_only=True)
class QualitySample:
    """One interval (normally 1 s) of call quality; interval fields cover ``interval_s``."""

    t: float  # seconds since the call connected, at the end of the interval
    interval_s: float  # length of the interval the *_interval / bitrate fields cover
    # Network (RTCP / ICE)
    rtt_ms: float | None = None  # remote-inbound-rtp.roundTripTime × 1000 (aiortc: EWMA)
    jitter_ms: float | None = None  # inbound-rtp.jitter, audio, converted to ms
    remote_jitter_ms: float | None = None  # remote-inbound-rtp.jitter: the peer's view of ours
    packets_received: int = 0  # inbound-rtp.packetsReceived, audio, cumulative
    packets_lost: int = 0  # inbound-rtp.packetsLost, audio, cumulative
    packets_lost_interval: int = 0  # of those, lost during this interval
    fraction_lost: float = 0.0  # 0..1, lost / expected during this interval (audio in)
    remote_fraction_lost: float | None = None  # remote-inbound-rtp.fractionLost (0..1)
    packets_recovered: int = 0  # of packets_lost, recovered from in-band FEC, cumulative
    effective_fraction_lost: float = 0.0  # 0..1, fraction_lost less FEC recoveries: heard lost
    bytes_received: int = 0  # RTP payload bytes in, all streams, cumulative (estimated)
    bytes_sent: int = 0  # outbound-rtp.bytesSent summed: RTP payload bytes out, cumulative
    bitrate_in_kbps: float | None = None  # payload bitrate in over the interval
    bitrate_out_kbps: float | None = None  # payload bitrate out over the interval
    # Our media path
    audio_level_in: float | None = None  # inbound-rtp.audioLevel: 0..1, what we play
    audio_level_out: float | None = None  # media-source.audioLevel: 0..1, what we send
    playout_buffer_ms: float | None = None  # sink's playout buffer depth (0 if it has none)
    underruns: int | None = None  # sink playout underruns, cumulative (≈ concealmentEvents)
    # Estimates and context
    r_factor: float | None = None  # E-model R, 0..100
    mos: float | None = None  # E-model MOS from R, ~1..4.5
    bars: int | None = None  # 1..5 from MOS (hello_tui.quality.mos.BAR_THRESHOLDS)
    codec: str | None = None  # audio codec, "opus/48000/2" (codec.mimeType/clockRate/channels)
    candidate_type: CandidateType | None = None  # local-candidate.candidateType, selected pair
    remote_candidate_type: CandidateType | None = None  # remote-candidate.candidateType
    network_type: NetworkType = "unknown"  # wired / wifi / cellular / loopback / unknown (OS)
    # Video (None on an audio-only call)
    video_fps: float | None = None  # inbound-rtp.framesPerSecond (received video)
    video_width: int | None = None  # inbound-rtp.frameWidth
    video_height: int | None = None  # inbound-rtp.frameHeight

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (floats rounded to 6 decimals: no binary noise)."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QualitySample:
        """Inverse of :meth:`to_json` (unknown keys are ignored: newer writers, older readers)."""
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in data.items() if k in names})


__all__ = ["QualitySample"]
