"""aiortc stats quirks and their conversions, on reports built from aiortc's own classes."""

from __future__ import annotations

import datetime
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamTrack
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRemoteOutboundRtpStreamStats,
    RTCStatsReport,
    RTCTransportStats,
)

from hello_tui.media.audio_format import make_frame
from hello_tui.media.sinks import SinkStats
from hello_tui.media.tracks import MeteredTrack, VideoReading
from hello_tui.quality.collector import (
    STALE_AFTER,
    IcePath,
    MediaReading,
    StatsInterpreter,
    StreamRefs,
    classify_interface,
    codec_name,
    effective_loss,
    interval_loss,
    kbps,
    network_type_for_address,
    rtcp_fraction,
    rtp_jitter_ms,
)

NOW = datetime.datetime(2025, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)
AUDIO = StreamRefs(
    kind="audio",
    inbound_id="inbound-rtp_1",
    remote_outbound_id="remote-outbound-rtp_1",
    outbound_id="outbound-rtp_2",
    remote_inbound_id="remote-inbound-rtp_2",
    clock_rate=48000,
    codec="opus/48000/2",
)


def report(
    *,
    received: int,
    lost: int,
    jitter: int,
    sent_bytes: int,
    rtt: float | None = 0.040,
    fraction_lost_raw: int = 0,
    remote_jitter: int = 96,
    sr: tuple[int, int] | None = None,
    rr_age: float = 0.5,
) -> RTCStatsReport:
    """One getStats() report as aiortc 1.16 builds it for a one-audio-track call."""
    r = RTCStatsReport()
    common = {"kind": "audio", "transportId": "transport_9"}
    r.add(
        RTCInboundRtpStreamStats(
            timestamp=NOW, type="inbound-rtp", id=AUDIO.inbound_id, ssrc=111,
            packetsReceived=received, packetsLost=lost, jitter=jitter, **common,
        )
    )  # fmt: skip
    r.add(
        RTCOutboundRtpStreamStats(
            timestamp=NOW, type="outbound-rtp", id=AUDIO.outbound_id, ssrc=222,
            packetsSent=sent_bytes // 100, bytesSent=sent_bytes, trackId="t", **common,
        )
    )  # fmt: skip
    r.add(
        RTCRemoteInboundRtpStreamStats(
            timestamp=NOW - datetime.timedelta(seconds=rr_age), type="remote-inbound-rtp",
            id=AUDIO.remote_inbound_id, ssrc=111,  # aiortc: the *peer's* SSRC
            packetsReceived=0, packetsLost=0, jitter=remote_jitter,
            roundTripTime=rtt, fractionLost=fraction_lost_raw, **common,
        )
    )  # fmt: skip
    if sr is not None:
        r.add(
            RTCRemoteOutboundRtpStreamStats(
                timestamp=NOW, type="remote-outbound-rtp", id=AUDIO.remote_outbound_id,
                ssrc=111, packetsSent=sr[0], bytesSent=sr[1], **common,
            )
        )  # fmt: skip
    r.add(
        RTCTransportStats(
            timestamp=NOW, type="transport", id="transport_9", packetsSent=0,
            packetsReceived=0, bytesSent=0, bytesReceived=0, iceRole="controlling",
            dtlsState="connected",
        )
    )  # fmt: skip
    return r


def test_jitter_is_in_rtp_clock_units() -> None:
    assert rtp_jitter_ms(480, 48000) == 10.0
    assert rtp_jitter_ms(90, 90000) == 1.0
    assert rtp_jitter_ms(0, 48000) == 0.0


def test_fraction_lost_is_the_raw_rtcp_byte() -> None:
    assert rtcp_fraction(0) == 0.0
    assert rtcp_fraction(64) == 0.25
    assert rtcp_fraction(255) == 255 / 256
    assert rtcp_fraction(300) == 255 / 256 and rtcp_fraction(-1) == 0.0


def test_interval_loss_from_cumulative_counters() -> None:
    assert interval_loss(100, 0, 145, 5) == (5, 0.1)
    assert interval_loss(100, 5, 150, 5) == (0, 0.0)
    assert interval_loss(100, 5, 150, 3) == (0, 0.0)  # duplicates made packetsLost go down
    assert interval_loss(100, 5, 100, 5) == (0, 0.0)  # nothing expected


def test_kbps_and_codec_name() -> None:
    assert kbps(12_000, 1.0) == 96.0
    assert kbps(6_000, 0.5) == 96.0
    assert kbps(1, 0) is None
    assert codec_name("audio/opus", 48000, 2) == "opus/48000/2"
    assert codec_name("audio/PCMU", 8000, 1) == "pcmu/8000"
    assert codec_name("video/VP8", 90000, None) == "vp8/90000"


def test_interpreter_converts_and_computes_intervals() -> None:
    interp = StatsInterpreter(started_at=100.0)
    first = interp.interpret(
        report(received=50, lost=0, jitter=240, sent_bytes=15_000, sr=(50, 15_000)),
        [AUDIO], 101.0, wall=NOW,
        media=MediaReading(sink=SinkStats(50, 48000, -15.0, 0.18, buffer_ms=42.0, underruns=1),
                           source_level=0.2),
        ice=IcePath("host", "srflx", "192.0.2.1"), network_type="wired",
    )  # fmt: skip
    assert first.t == 1.0 and first.interval_s == 1.0
    assert first.jitter_ms == 5.0  # 240 / 48000 s
    assert first.rtt_ms == pytest.approx(40.0)
    assert first.remote_jitter_ms == 2.0  # 96 / 48000 s
    assert first.remote_fraction_lost == 0.0
    assert first.bitrate_out_kbps == 120.0  # 15 000 B in 1 s
    assert first.bitrate_in_kbps == 120.0  # 50 packets × 300 B (SR average)
    assert first.bytes_received == 15_000
    assert (first.audio_level_in, first.audio_level_out) == (0.18, 0.2)
    assert (first.playout_buffer_ms, first.underruns) == (42.0, 1)
    assert (first.candidate_type, first.remote_candidate_type) == ("host", "srflx")
    assert first.network_type == "wired" and first.codec == "opus/48000/2"
    # One-way latency is RTT / 2: Le = 20 + 2 x 5 + 10 = 40 ms, R = 93.2 - 40/40 = 92.2.
    assert first.r_factor == pytest.approx(92.2, abs=1e-9)
    assert first.mos == pytest.approx(4.389099, abs=1e-6) and first.bars == 5

    second = interp.interpret(
        report(received=95, lost=5, jitter=960, sent_bytes=25_000, rtt=0.300,
               fraction_lost_raw=26, sr=(100, 25_000)),
        [AUDIO], 103.0, wall=NOW,
    )  # fmt: skip
    assert second.t == 3.0 and second.interval_s == 2.0
    assert (second.packets_received, second.packets_lost) == (95, 5)
    assert second.packets_lost_interval == 5 and second.fraction_lost == 0.1  # 5 of 50
    assert second.jitter_ms == 20.0
    assert second.remote_fraction_lost == 26 / 256
    assert second.bitrate_out_kbps == 40.0  # 10 000 B in 2 s
    # SR interval average: (25 000 − 15 000) / (100 − 50) = 200 B × 45 packets in 2 s
    assert second.bitrate_in_kbps == pytest.approx(45 * 200 * 8 / 2 / 1000)
    assert second.bytes_received == 15_000 + 45 * 200
    # Le = 150 + 2 x 20 + 10 = 200 ms (past the knee): R = 93.2 - 8 - 2.5 x 10 = 60.2.
    assert second.r_factor == pytest.approx(60.2, abs=1e-9)
    assert second.mos == pytest.approx(3.110354, abs=1e-6) and second.bars == 2
    assert second.mos is not None and first.mos is not None and second.mos < first.mos
    # without media readings: unknown, not zero
    assert second.audio_level_in is None and second.playout_buffer_ms is None


def test_effective_loss_takes_fec_recoveries_off_and_late_drops_on() -> None:
    assert effective_loss(50, 10, 8) == pytest.approx(0.04)
    assert effective_loss(50, 10, 0) == 0.2
    assert effective_loss(50, 10, 12) == 0.0  # a count from just after: never negative
    assert effective_loss(0, 0, 3) == 0.0
    assert effective_loss(50, 10, -1) == 0.2
    assert effective_loss(50, 0, 0, late=2) == pytest.approx(0.04)  # received, never played
    assert effective_loss(50, 10, 8, late=3) == pytest.approx(0.1)
    assert effective_loss(5, 5, 0, late=5) == 1.0


def test_mos_is_computed_from_loss_as_heard_after_fec() -> None:
    """20 % lost, 16 of the 20 recovered from FEC: the sample keeps the network's
    loss, and the MOS is the E-model's for the 4 % the listener did not get."""
    interp = StatsInterpreter(started_at=100.0)
    interp.interpret(report(received=50, lost=0, jitter=240, sent_bytes=15_000), [AUDIO],
                     101.0, wall=NOW, media=MediaReading(fec_recovered=0))  # fmt: skip
    heard = interp.interpret(
        report(received=130, lost=20, jitter=240, sent_bytes=30_000), [AUDIO], 103.0,
        wall=NOW, media=MediaReading(fec_recovered=16, late_dropped=0),
    )  # fmt: skip
    assert heard.fraction_lost == 0.2 and heard.packets_lost_interval == 20
    assert heard.packets_recovered == 16
    assert heard.effective_fraction_lost == pytest.approx(0.04)
    # Le = 20 + 2 x 5 + 10 = 40 ms: R = 93.2 - 1 - 2.5 x 4 = 82.2.
    assert heard.r_factor == pytest.approx(82.2)
    raw = StatsInterpreter(started_at=100.0)  # no FEC reading (adapter off): raw loss
    raw.interpret(report(received=50, lost=0, jitter=240, sent_bytes=15_000), [AUDIO], 101.0,
                  wall=NOW)  # fmt: skip
    plain = raw.interpret(report(received=130, lost=20, jitter=240, sent_bytes=30_000),
                          [AUDIO], 103.0, wall=NOW)  # fmt: skip
    assert plain.effective_fraction_lost == 0.2 and plain.packets_recovered == 0
    assert plain.r_factor == pytest.approx(42.2)  # 93.2 - 1 - 2.5 x 20
    assert heard.mos is not None and plain.mos is not None and heard.mos > 3.0 > plain.mos
    late = interp.interpret(  # the next interval: 2 late packets, nothing lost on the wire
        report(received=180, lost=20, jitter=240, sent_bytes=40_000), [AUDIO], 104.0,
        wall=NOW, media=MediaReading(fec_recovered=16, late_dropped=2),
    )  # fmt: skip
    assert late.fraction_lost == 0.0 and late.effective_fraction_lost == pytest.approx(0.04)


def test_no_sender_report_yet_means_unknown_bitrate_in_then_catch_up() -> None:
    interp = StatsInterpreter(started_at=0.0)
    first = interp.interpret(report(received=50, lost=0, jitter=0, sent_bytes=0), [AUDIO], 1.0,
                             wall=NOW)  # fmt: skip
    assert first.bitrate_in_kbps is None and first.bytes_received == 0
    second = interp.interpret(
        report(received=100, lost=0, jitter=0, sent_bytes=0, sr=(80, 16_000)), [AUDIO], 2.0,
        wall=NOW,
    )  # fmt: skip
    # cumulative average 200 B: all 100 packets are in the byte count (the first 50
    # late), but the interval's bitrate is only its own 50 packets — no catch-up spike
    assert second.bytes_received == 20_000
    assert second.bitrate_in_kbps == 80.0


def test_rtt_unknown_before_first_report_and_when_stale() -> None:
    interp = StatsInterpreter(started_at=0.0)
    before = interp.interpret(report(received=50, lost=0, jitter=0, sent_bytes=0, rtt=None),
                              [AUDIO], 1.0, wall=NOW)  # fmt: skip
    assert before.rtt_ms is None and before.mos is None and before.bars is None
    stale = interp.interpret(
        report(received=100, lost=0, jitter=0, sent_bytes=0, rr_age=STALE_AFTER + 1),
        [AUDIO], 2.0, wall=NOW,
    )  # fmt: skip
    assert stale.rtt_ms is None and stale.remote_fraction_lost is None
    assert stale.jitter_ms == 0.0  # our own inbound stats are live


def test_empty_report() -> None:
    sample = StatsInterpreter(started_at=0.0).interpret(RTCStatsReport(), [], 1.0, wall=NOW)
    assert sample.rtt_ms is None and sample.jitter_ms is None and sample.codec is None
    assert sample.bitrate_in_kbps is None and sample.bitrate_out_kbps is None
    assert sample.network_type == "unknown"


def test_video_fps_and_size_from_a_reading() -> None:
    interp = StatsInterpreter(started_at=0.0)
    first = interp.interpret(RTCStatsReport(), [], 1.0, wall=NOW,
                             media=MediaReading(video=VideoReading(30, 640, 480)))  # fmt: skip
    second = interp.interpret(RTCStatsReport(), [], 3.0, wall=NOW,
                              media=MediaReading(video=VideoReading(80, 1280, 720)))  # fmt: skip
    assert (first.video_fps, first.video_width, first.video_height) == (30.0, 640, 480)
    assert (second.video_fps, second.video_width, second.video_height) == (25.0, 1280, 720)


def _iface(root: Path, name: str, link_type: int, uevent: str = "", *extra: str) -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "type").write_text(f"{link_type}\n")
    (d / "uevent").write_text(f"INTERFACE={name}\nIFINDEX=3\n{uevent}")
    for sub in extra:
        (d / sub).mkdir()


def test_classify_interface_from_sysfs(tmp_path: Path) -> None:
    _iface(tmp_path, "lo", 772)
    _iface(tmp_path, "eth0", 1)
    _iface(tmp_path, "enp3s0", 1, "", "device")
    _iface(tmp_path, "wlan0", 1, "DEVTYPE=wlan\n", "wireless", "phy80211")
    _iface(tmp_path, "wlp2s0", 1, "", "phy80211")
    _iface(tmp_path, "wwan0", 519, "DEVTYPE=wwan\n")
    _iface(tmp_path, "rmnet_data0", 530)
    _iface(tmp_path, "wg0", 65534)
    _iface(tmp_path, "ppp0", 512)
    expected = {
        "lo": "loopback", "eth0": "wired", "enp3s0": "wired", "wlan0": "wifi",
        "wlp2s0": "wifi", "wwan0": "cellular", "rmnet_data0": "cellular",
        "wg0": "unknown", "ppp0": "unknown", "missing0": "unknown",
    }  # fmt: skip
    assert {name: classify_interface(name, tmp_path) for name in expected} == expected


def test_network_type_for_addresses() -> None:
    assert network_type_for_address("127.0.0.1") == "loopback"
    assert network_type_for_address("::1") == "loopback"
    assert network_type_for_address(None) == "unknown"
    assert network_type_for_address("not an address") == "unknown"
    assert network_type_for_address("192.0.2.123") == "unknown"  # no interface holds it


def test_network_type_of_this_machines_interfaces() -> None:
    import ifaddr

    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                kind = network_type_for_address(ip.ip)
                assert kind == classify_interface(adapter.name)
                assert kind in ("wired", "wifi", "cellular", "loopback", "unknown")


class _Frames(MediaStreamTrack):
    def __init__(self, kind: str, frames: list[object]) -> None:
        super().__init__()
        self.kind = kind
        self._frames = frames

    async def recv(self) -> object:
        return self._frames.pop(0)


async def test_metered_track_measures_audio_level() -> None:
    loud = (np.ones(960) * 16384).astype(np.int16)  # -6 dBFS square: level 0.5
    inner = _Frames("audio", [make_frame(loud, 0), make_frame(np.zeros(960, np.int16), 960)])
    track = MeteredTrack(inner)
    assert track.kind == "audio" and track.level() == 0.0
    frame = await track.recv()
    assert frame.pts == 0 and track.level() == pytest.approx(0.5)
    await track.recv()
    assert track.level() == 0.0 and track.frames == 2
    track.stop()
    assert inner.readyState == "ended"


async def test_metered_track_counts_video_frames() -> None:
    frames = []
    for size in ((320, 240), (640, 360)):
        f = av.VideoFrame(*size, "yuv420p")
        f.pts, f.time_base = 0, Fraction(1, 90000)
        frames.append(f)
    track = MeteredTrack(_Frames("video", frames))
    await track.recv()
    await track.recv()
    assert track.video() == VideoReading(2, 640, 360)
