"""The adapter's RTCP watch: raw, per-report RTT from RR/SR report blocks (LSR/DLSR).

Fails loudly if an aiortc upgrade moves what it wraps (``RTCRtpSender._send_rtcp``,
``_handle_rtcp_packet``, ``_ssrc``); the live checks run it on real aiortc
peers and compare with aiortc's own (smoothed) RTT.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RtcpByePacket, RtcpReceiverInfo, RtcpRrPacket, RtcpSenderInfo, RtcpSrPacket

from hello_tui.media import aiortc_adapter as ad
from hello_tui.media.sources import open_audio_source

SSRC = 0x1234


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class FakeSender:
    """What the watch needs of an RTCRtpSender; records what reaches the originals."""

    kind = "audio"

    def __init__(self) -> None:
        self._ssrc = SSRC
        self.sent: list[Any] = []
        self.handled: list[Any] = []

    async def _send_rtcp(self, packets: list[Any]) -> None:
        self.sent.append(packets)

    async def _handle_rtcp_packet(self, packet: Any) -> None:
        self.handled.append(packet)


def sr(ntp: int) -> RtcpSrPacket:
    return RtcpSrPacket(ssrc=SSRC, sender_info=RtcpSenderInfo(ntp, 0, 0, 0))


def rr(lsr: int, dlsr_s: float, ssrc: int = SSRC) -> RtcpRrPacket:
    info = RtcpReceiverInfo(ssrc, 0, 0, 0, 0, lsr=lsr, dlsr=int(dlsr_s * 65536))
    return RtcpRrPacket(ssrc=999, reports=[info])


def lsr_of(ntp: int) -> int:
    return (ntp >> 16) & 0xFFFF_FFFF


def test_rtt_is_arrival_minus_send_minus_dlsr() -> None:
    assert ad.rtt_from_report(10.5, 10.0, int(0.25 * 65536)) == pytest.approx(0.25)
    assert ad.rtt_from_report(10.0, 10.0, 65536) == 0.0  # never negative


def test_the_aiortc_methods_it_wraps_are_there() -> None:
    for name in ("_send_rtcp", "_handle_rtcp_packet"):
        assert asyncio.iscoroutinefunction(getattr(RTCRtpSender, name)), name
    with pytest.raises(ad.AiortcAdapterError, match="_send_rtcp"):
        ad.RtcpWatch().attach(object())  # type: ignore[arg-type]


async def test_every_report_gives_an_unsmoothed_rtt() -> None:
    clock = Clock()
    watch = ad.RtcpWatch(clock)
    sender = FakeSender()
    assert watch.attach(sender) is True  # type: ignore[arg-type]
    assert watch.attach(sender) is False  # type: ignore[arg-type]  # idempotent
    first, second = 0x0000_0001_0000_0000, 0x0000_0002_8000_0000
    await sender._send_rtcp([sr(first)])  # SR 1 leaves at t = 50.0
    clock.now = 51.0
    await sender._send_rtcp([sr(second)])  # SR 2 leaves at t = 51.0
    assert len(sender.sent) == 2  # passed through

    clock.now = 51.3  # an RR answering the *older* SR (aiortc ignores such a report)
    await sender._handle_rtcp_packet(rr(lsr_of(first), dlsr_s=1.1))
    reading = watch.readings()[id(sender)]
    assert reading.rtt_s == pytest.approx(0.2, abs=1e-4) and reading.kind == "audio"
    assert reading.at == 51.3

    clock.now = 52.0  # a step of +0.4 s shows in full at once: no smoothing
    await sender._handle_rtcp_packet(rr(lsr_of(second), dlsr_s=0.4))
    assert watch.readings()[id(sender)].rtt_s == pytest.approx(0.6, abs=1e-4)
    assert len(sender.handled) == 2 and watch.measured == 2


async def test_reports_it_cannot_use_are_ignored() -> None:
    clock = Clock()
    watch = ad.RtcpWatch(clock)
    sender = FakeSender()
    watch.attach(sender)  # type: ignore[arg-type]
    await sender._handle_rtcp_packet(rr(0, 0))  # LSR 0: the peer has no SR yet
    await sender._handle_rtcp_packet(rr(0xABCD, 0.1))  # an SR we never saw leave
    await sender._handle_rtcp_packet(rr(0xABCD, 0.1, ssrc=SSRC + 1))  # another stream
    await sender._handle_rtcp_packet(RtcpByePacket(sources=[SSRC]))
    assert watch.readings() == {}
    assert watch.reports == 2 and watch.measured == 0
    assert len(sender.handled) == 4  # aiortc still gets every packet


async def test_sr_history_is_bounded() -> None:
    clock = Clock()
    watch = ad.RtcpWatch(clock)
    sender = FakeSender()
    watch.attach(sender)  # type: ignore[arg-type]
    for i in range(ad.RtcpWatch.HISTORY + 5):
        clock.now += 1
        await sender._send_rtcp([sr((i + 1) << 32)])
    await sender._handle_rtcp_packet(rr(lsr_of(1 << 32), 0.0))  # forgotten
    assert watch.readings() == {}
    await sender._handle_rtcp_packet(rr(lsr_of((ad.RtcpWatch.HISTORY + 5) << 32), 0.0))
    assert id(sender) in watch.readings()


async def test_live_peers_measure_rtt_and_aiortc_keeps_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2)]
    try:
        for pc in pcs:
            pc.addTrack(open_audio_source("sine:440"))
        watches = [ad.watch_rtcp(pc) for pc in pcs]
        assert ad.watch_rtcp(pcs[0]) is watches[0]  # one per connection
        a, b = pcs
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        async with asyncio.timeout(20):
            while not all(w.readings() for w in watches):
                await asyncio.sleep(0.1)
        for pc, watch in zip(pcs, watches, strict=True):
            (reading,) = watch.readings().values()
            assert 0 <= reading.rtt_s < 0.1 and reading.kind == "audio"
            stats = [s for s in (await pc.getStats()).values() if s.type == "remote-inbound-rtp"]
            assert stats and all(s.packetsLost == 0 for s in stats)  # aiortc's stats still fed
    finally:
        for pc in pcs:
            await pc.close()
