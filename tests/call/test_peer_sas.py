"""No hidden STUN server; the SAS code; the aioice hook we rely on."""

from __future__ import annotations

import aioice.ice
import aiortc
import pytest
from aiortc.rtcicetransport import RTCIceGatherer

from hello_tui.call import peer
from hello_tui.call.events import EVENT_TYPES, Ended
from hello_tui.call.sas import SasError, fingerprint_from_sdp, sas_code
from hello_tui.config.settings import IceSettings, TurnServer
from hello_tui.signaling.protocol import IceServer


def _ice_kwargs(pc: aiortc.RTCPeerConnection) -> dict[str, object]:
    """What aioice would be configured with for this peer connection."""
    config = pc._RTCPeerConnection__configuration  # type: ignore[attr-defined]
    gatherer = RTCIceGatherer(iceServers=config.iceServers)
    conn = gatherer._connection
    return {"stun": conn.stun_server, "turn": conn.turn_server}


async def test_empty_ice_config_means_no_stun_server_at_all() -> None:
    servers = peer.ice_servers(IceSettings(), ())
    assert servers == []
    pc = peer.new_peer_connection(servers)
    try:
        assert _ice_kwargs(pc) == {"stun": None, "turn": None}
    finally:
        await pc.close()
    # The trap this guards against: aiortc's default when iceServers is None.
    assert RTCIceGatherer()._connection.stun_server == ("stun.l.google.com", 19302)


async def test_ice_servers_come_from_the_config_and_the_server() -> None:
    ice = IceSettings(
        stun=["stun:stun.example.org:3478"],
        turn=[TurnServer(url="turn:turn.example.org:3478", username="u", credential="c")],
    )
    server_turn = [IceServer(urls=["turn:relay.example.net:3478"], username="x", credential="y")]
    servers = peer.ice_servers(ice, server_turn)
    assert [s.urls for s in servers] == [
        "stun:stun.example.org:3478",
        "turn:turn.example.org:3478",
        ["turn:relay.example.net:3478"],
    ]
    pc = peer.new_peer_connection(servers)
    try:
        assert _ice_kwargs(pc) == {
            "stun": ("stun.example.org", 3478),
            "turn": ("turn.example.org", 3478),
        }
    finally:
        await pc.close()


def test_the_aioice_hook_is_in_place() -> None:
    """Fails loudly if an aioice upgrade renames what peer.py wraps."""
    assert aioice.ice.get_host_addresses is peer._get_host_addresses
    assert peer._original_get_host_addresses.__name__ == "get_host_addresses"
    assert aiortc.__version__.startswith("1.16.")
    with peer.host_addresses(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


async def test_loopback_calls_put_no_machine_address_in_the_sdp() -> None:
    pc = peer.new_peer_connection([])
    pc.addTransceiver("audio")
    try:
        with peer.host_addresses(["127.0.0.1"]):
            await pc.setLocalDescription(await pc.createOffer())
        candidates = [ln for ln in pc.localDescription.sdp.splitlines() if "candidate:" in ln]
        assert candidates and all(" 127.0.0.1 " in ln for ln in candidates)
    finally:
        await pc.close()


FP_A = "sha-256 " + ":".join(["AB"] * 32)
FP_B = "sha-256 " + ":".join(["01"] * 32)


def test_sas_is_order_independent_and_sensitive() -> None:
    code = sas_code(FP_A, FP_B)
    assert code == sas_code(FP_B, FP_A)
    assert len(code) == 7 and code[:3].isdigit() and code[3] == " " and code[4:].isdigit()
    assert sas_code(FP_A.lower(), FP_B) == code  # case does not matter
    other = "sha-256 " + ":".join(["AB"] * 31 + ["AC"])
    assert sas_code(other, FP_B) != code


def test_fingerprint_from_sdp() -> None:
    sdp = f"v=0\r\na=fingerprint:sha-512 {'CD:' * 63}CD\r\na=fingerprint:{FP_A.lower()}\r\n"
    assert fingerprint_from_sdp(sdp) == FP_A
    with pytest.raises(SasError):
        fingerprint_from_sdp("v=0\r\n")


def test_events_serialise() -> None:
    data = Ended(call_id="abc", reason="busy", duration=0.0, stage="ringing").to_json()
    assert data["kind"] == "ended" and data["reason"] == "busy" and data["t"] > 0
    assert set(EVENT_TYPES) >= {"dialing", "ringing", "connected", "media-flowing", "ended"}
