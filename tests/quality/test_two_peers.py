"""Two real aiortc peers in one process, SDP exchanged directly, loopback only.

aioice is told the only host address is 127.0.0.1 and no ICE server is
configured, so not a packet leaves the machine (and the default public STUN
server is never asked).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from hello_tui.media.sinks import AudioSink, open_audio_sink
from hello_tui.media.sources import open_audio_source
from hello_tui.media.tracks import MeteredTrack
from hello_tui.quality.collector import QualityCollector
from hello_tui.quality.render import render_line
from hello_tui.quality.sample import QualitySample
from hello_tui.quality.summary import summarize


@dataclass
class Peer:
    pc: RTCPeerConnection
    source: MeteredTrack
    sink: AudioSink
    tasks: list[asyncio.Future[None]] = field(default_factory=list)


def _peer() -> Peer:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    source = MeteredTrack(open_audio_source("sine:440"))
    pc.addTrack(source)
    peer = Peer(pc, source, open_audio_sink("null:"))

    @pc.on("track")
    def on_track(track: object) -> None:
        peer.tasks.append(asyncio.ensure_future(peer.sink.start(track)))  # type: ignore[arg-type]

    return peer


async def _connected(pc: RTCPeerConnection) -> None:
    while pc.connectionState != "connected":
        assert pc.connectionState not in ("failed", "closed")
        await asyncio.sleep(0.02)


@pytest.fixture
async def call(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Peer, Peer]]:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    caller, callee = _peer(), _peer()
    try:
        await caller.pc.setLocalDescription(await caller.pc.createOffer())
        await callee.pc.setRemoteDescription(caller.pc.localDescription)
        await callee.pc.setLocalDescription(await callee.pc.createAnswer())
        await caller.pc.setRemoteDescription(callee.pc.localDescription)
        async with asyncio.timeout(15):
            await asyncio.gather(_connected(caller.pc), _connected(callee.pc))
        yield caller, callee
    finally:
        for peer in (caller, callee):
            await peer.sink.stop()
            await peer.pc.close()


async def _collect(collector: QualityCollector, count: int) -> list[QualitySample]:
    samples: list[QualitySample] = []
    async with asyncio.timeout(count * 3 + 10):
        async for sample in collector.run(interval=1.0):
            samples.append(sample)
            if len(samples) >= count and sample.rtt_ms is not None:
                break
    return samples


async def test_samples_from_a_real_call(call: tuple[Peer, Peer]) -> None:
    caller, callee = call
    collectors = [QualityCollector(p.pc, p.sink.stats, p.source.level) for p in (caller, callee)]
    mine, theirs = await asyncio.gather(*(_collect(c, 5) for c in collectors))

    for samples in (mine, theirs):
        last = samples[-1]
        print(render_line(last), last)
        assert [s.t for s in samples] == sorted(s.t for s in samples)
        # Loopback: small, but a busy machine delays packets; the bounds catch
        # a unit error (seconds for ms), not scheduling.
        assert last.rtt_ms is not None and 0 <= last.rtt_ms < 500
        assert last.jitter_ms is not None and 0 <= last.jitter_ms < 200
        assert last.remote_jitter_ms is not None and last.remote_jitter_ms < 200
        assert last.packets_received > 100  # 50 packets/s of 20 ms Opus
        assert last.packets_lost == 0 and last.fraction_lost == 0.0
        assert last.remote_fraction_lost == 0.0
        assert last.bitrate_in_kbps is not None and 20 <= last.bitrate_in_kbps <= 200
        assert last.bitrate_out_kbps is not None and 20 <= last.bitrate_out_kbps <= 200
        assert last.bytes_sent > 0 and last.bytes_received > 0
        assert last.codec is not None and "opus" in last.codec
        assert last.codec == "opus/48000/2"
        assert last.candidate_type == "host" and last.remote_candidate_type == "host"
        assert last.network_type == "loopback"
        assert last.mos is not None and last.mos >= 4.0
        assert last.bars is not None and last.bars >= 4
        # a -15 dBFS RMS sine both ways: levels near 10^(-15/20) ≈ 0.18
        assert last.audio_level_out is not None and 0.1 < last.audio_level_out < 0.3
        assert last.audio_level_in is not None and 0.1 < last.audio_level_in < 0.3
        assert last.playout_buffer_ms == 0.0 and last.underruns == 0  # null: has no buffer
        assert last.video_fps is None and last.video_width is None

    # Payload bytes in on one side are what the other sent (the estimate is per SR
    # interval): within 15 %, and the summary is computed from these very samples.
    a, b = mine[-1], theirs[-1]
    assert abs(a.bytes_received - b.bytes_sent) / b.bytes_sent < 0.15
    summary = summarize(mine, outcome="completed")
    assert summary.samples == len(mine)
    assert summary.mos_min == min(s.mos for s in mine if s.mos is not None)
    assert summary.codec == "opus/48000/2" and summary.network_type == "loopback"


async def test_run_stops_when_the_connection_closes(call: tuple[Peer, Peer]) -> None:
    caller, _ = call
    collector = QualityCollector(caller.pc)
    samples = []
    with contextlib.suppress(asyncio.CancelledError):
        async for sample in collector.run(interval=0.2):
            samples.append(sample)
            if len(samples) == 2:
                await caller.pc.close()
    assert len(samples) == 2
    assert samples[0].audio_level_in is None and samples[0].playout_buffer_ms is None
