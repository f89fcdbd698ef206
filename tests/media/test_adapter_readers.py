"""The adapter's readers of state aiortc and aioice keep private (for the quality collector).

``negotiated_codecs`` reads ``RTCRtpTransceiver._codecs``; ``nominated_candidates``
reads ``RTCIceTransport._connection`` and aioice's ``Connection._nominated``.
These tests fail loudly when an upgrade moves either, and prove the readers
see a real connection's codec and nominated pair.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import aioice
import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from hello_tui.media import aiortc_adapter as ad
from hello_tui.media.sources import open_audio_source
from hello_tui.quality.collector import selected_path, stream_refs


def test_aioice_guard_accepts_the_pinned_series_only() -> None:
    assert any(aioice.__version__.startswith(v + ".") for v in ad.SUPPORTED_AIOICE)
    ad.check_aioice_version(aioice.__version__)
    for other in ("0.14.0", "0.1.3", "1.13.0", "0.130.0"):
        with pytest.raises(ad.AiortcVersionError, match="aioice"):
            ad.check_aioice_version(other)


def test_readers_refuse_objects_without_the_expected_internals() -> None:
    with pytest.raises(ad.AiortcAdapterError, match="_codecs"):
        ad.negotiated_codecs(SimpleNamespace())  # type: ignore[arg-type]
    no_connection = SimpleNamespace(sender=SimpleNamespace(transport=SimpleNamespace(
        transport=SimpleNamespace())))  # fmt: skip
    with pytest.raises(ad.AiortcAdapterError, match="_connection"):
        ad.nominated_candidates(no_connection)  # type: ignore[arg-type]
    no_pairs = SimpleNamespace(sender=SimpleNamespace(transport=SimpleNamespace(
        transport=SimpleNamespace(_connection=SimpleNamespace()))))  # fmt: skip
    with pytest.raises(ad.AiortcAdapterError, match="_nominated"):
        ad.nominated_candidates(no_pairs)  # type: ignore[arg-type]


async def test_readers_see_a_real_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    pcs = [RTCPeerConnection(RTCConfiguration(iceServers=[])) for _ in range(2)]
    try:
        for pc in pcs:
            pc.addTrack(open_audio_source("sine:440"))
        a, b = pcs
        (transceiver,) = a.getTransceivers()
        assert ad.negotiated_codecs(transceiver) == []  # before negotiation
        assert ad.nominated_candidates(transceiver) is None
        assert selected_path(a).local_type is None
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        codecs = ad.negotiated_codecs(transceiver)
        assert codecs and codecs[0].mimeType.lower() == "audio/opus"
        assert stream_refs(a)[0].codec == "opus/48000/2"
        pair: Any = None
        async with asyncio.timeout(20):
            while pair is None:
                pair = ad.nominated_candidates(transceiver)
                await asyncio.sleep(0.05)
        local, remote = pair
        assert (local.type, remote.type, local.host) == ("host", "host", "127.0.0.1")
        path = selected_path(a)
        assert (path.local_type, path.remote_type, path.local_address) == (
            "host", "host", "127.0.0.1"
        )  # fmt: skip
    finally:
        for pc in pcs:
            await pc.close()


async def test_jitter_counts_read_the_speech_jitter_buffer_only() -> None:
    pc = RTCPeerConnection()
    plain = pc.addTransceiver("audio")
    assert ad.jitter_counts(plain) is None  # aiortc's own buffer: nothing to report
    adapted = RTCPeerConnection()
    ad.adapt_peer_connection(adapted)
    transceiver = adapted.addTransceiver("audio")
    assert ad.jitter_counts(transceiver) == (0, 0)
    buffer = vars(transceiver.receiver)["_RTCRtpReceiver__jitter_buffer"]
    buffer.stats.recovered, buffer.stats.late = 3, 2
    assert ad.jitter_counts(transceiver) == (3, 2)
    await pc.close()
    await adapted.close()
