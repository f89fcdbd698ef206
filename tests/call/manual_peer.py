"""A peer driven message by message, as a hostile relay (or an old client) would.

Real aiortc and the real signaling client; the test decides what goes into the
SDP and what the ``sas-reveal`` says, so it can tamper with the check code's
commitment exchange where a man in the middle would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiortc import RTCPeerConnection, RTCSessionDescription

from hello_tui.call import peer
from hello_tui.call.sas import COMMIT_ATTR, NONCE_ATTR, b64, commitment, with_sdp_attribute
from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import SignalingClient

LOOPBACK = ("127.0.0.1",)


class ManualPeer:
    """One aiortc peer connection whose signaling the test writes by hand."""

    def __init__(self, client: SignalingClient) -> None:
        self.client = client
        self.pc: RTCPeerConnection = peer.new_peer_connection([])
        self.connected = asyncio.Event()

        @self.pc.on("connectionstatechange")
        def _state() -> None:
            if self.pc.connectionState == "connected":
                self.connected.set()

    async def offer(self, nonce: bytes | None) -> str:
        """Our offer; with ``nonce`` its commitment rides along (else none, like an old peer)."""
        self.pc.addTransceiver("audio", direction="sendrecv")
        with peer.host_addresses(LOOPBACK):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        if nonce is None:
            return sdp
        return with_sdp_attribute(sdp, COMMIT_ATTR, b64(commitment(nonce)))

    async def answer(self, offer_sdp: str, nonce: bytes | None) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in self.pc.getTransceivers():
            transceiver.direction = "recvonly"
        with peer.host_addresses(LOOPBACK):
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        sdp = self.pc.localDescription.sdp
        return sdp if nonce is None else with_sdp_attribute(sdp, NONCE_ATTR, b64(nonce))

    async def take_answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def reveal(self, call_id: str, nonce: bytes) -> None:
        await self.client.request(p.SasReveal(call_id=call_id, nonce=b64(nonce)))

    async def next_of(self, kinds: Sequence[type[p.Message]], timeout: float) -> p.Message:
        """The next server message of one of ``kinds`` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.client.next_event()
                if isinstance(event, tuple(kinds)):
                    return event

    async def close(self) -> None:
        await self.pc.close()
