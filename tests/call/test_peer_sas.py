"""No hidden STUN server; the check code and its commitment; the aioice hook we rely on."""

from __future__ import annotations

import re

import aioice.ice
import aiortc
import pytest
from aiortc import RTCSessionDescription
from aiortc.rtcicetransport import RTCIceGatherer

from hello_tui.call import peer
from hello_tui.call.events import EVENT_TYPES, Ended
from hello_tui.call.sas import (
    COMMIT_ATTR,
    NONCE_ATTR,
    SasError,
    SasExchange,
    fingerprint_from_sdp,
    sas_code,
    sdp_attribute,
    with_sdp_attribute,
)
from hello_tui.config.settings import IceSettings, TurnServer
from hello_tui.media import aiortc_adapter
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
    """Fails loudly if an aioice upgrade renames what the adapter wraps for peer.py."""
    assert aioice.ice.get_host_addresses is aiortc_adapter._host_addresses
    assert aiortc_adapter._GET_HOST_ADDRESSES.__name__ == "get_host_addresses"
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
N1, N2 = bytes(range(32)), bytes(range(32, 64))


def test_sas_code_binds_roles_fingerprints_and_both_nonces() -> None:
    code = sas_code(FP_A, FP_B, N1, N2)
    assert re.fullmatch(r"\d{3} \d{3}", code)
    assert sas_code(FP_A.lower(), FP_B, N1, N2) == code  # case does not matter
    other_fp = "sha-256 " + ":".join(["AB"] * 31 + ["AC"])
    changed = [
        sas_code(FP_B, FP_A, N1, N2),  # roles are part of it
        sas_code(other_fp, FP_B, N1, N2),
        sas_code(FP_A, other_fp, N1, N2),
        sas_code(FP_A, FP_B, N2, N1),
        sas_code(FP_A, FP_B, bytes(32), N2),
        sas_code(FP_A, FP_B, N1, bytes(32)),
    ]
    assert code not in changed
    with pytest.raises(ValueError):
        sas_code(FP_A, FP_B, N1[:16], N2)


def test_sdp_attribute_is_session_level() -> None:
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
    stamped = with_sdp_attribute(sdp, COMMIT_ATTR, "abc")
    assert stamped.split("\r\n")[4:6] == ["a=hello-sas-commit:abc", "m=audio 9 UDP/TLS/RTP/SAVPF 0"]
    assert sdp_attribute(stamped, COMMIT_ATTR) == "abc"
    assert sdp_attribute(sdp, COMMIT_ATTR) is None
    media_level = sdp + "a=hello-sas-commit:abc\r\n"  # inside m=: not ours
    assert sdp_attribute(media_level, COMMIT_ATTR) is None


def _exchange() -> tuple[SasExchange, SasExchange, str, str]:
    """Offer and answer SDP of a fake pair, stamped."""
    offerer, answerer = SasExchange("offerer"), SasExchange("answerer")
    offer = offerer.stamp_offer(f"v=0\r\na=fingerprint:{FP_A}\r\nm=audio 9 x 0\r\n")
    answer = answerer.stamp_answer(offer, f"v=0\r\na=fingerprint:{FP_B}\r\nm=audio 9 x 0\r\n")
    return offerer, answerer, offer, answer


def test_exchange_gives_both_sides_the_same_code_only_after_the_reveal() -> None:
    offerer, answerer, offer, answer = _exchange()
    assert sdp_attribute(offer, NONCE_ATTR) is None  # the offer holds only the commitment
    assert offerer.code(FP_A, FP_B) is None and answerer.code(FP_A, FP_B) is None
    reveal = offerer.take_answer(answer)
    assert reveal is not None and offerer.status == "verified"
    assert answerer.status == "waiting" and answerer.code(FP_A, FP_B) is None
    assert answerer.take_reveal(reveal) == "verified"
    code = offerer.code(FP_A, FP_B)
    assert code is not None and code == answerer.code(FP_A, FP_B)
    assert offerer.take_answer(answer) is None  # one reveal per exchange


def test_a_wrong_reveal_is_final() -> None:
    offerer, answerer, _offer, answer = _exchange()
    right = offerer.take_answer(answer)
    assert right is not None
    wrong = right[:-2] + ("AA" if right[-2:] != "AA" else "AQ")
    assert answerer.take_reveal(wrong) == "mismatch"
    assert answerer.take_reveal(right) == "mismatch"  # a later right one changes nothing
    assert answerer.code(FP_A, FP_B) is None
    assert SasExchange("answerer").take_reveal(right) == "waiting"  # no offer yet: ignored


def test_a_peer_without_the_exchange_gets_no_code() -> None:
    plain = "v=0\r\nm=audio 9 x 0\r\n"
    answerer = SasExchange("answerer")
    answerer.stamp_answer(plain, plain)
    assert answerer.status == "unsupported" and answerer.code(FP_A, FP_B) is None
    offerer = SasExchange("offerer")
    offerer.stamp_offer(plain)
    assert offerer.take_answer(plain) is None and offerer.status == "unsupported"
    bad = with_sdp_attribute(plain, NONCE_ATTR, "too-short")
    other = SasExchange("offerer")
    assert other.take_answer(bad) is None and other.status == "unsupported"


async def test_aiortc_accepts_the_attributes_both_ways() -> None:
    offerer_pc, answerer_pc = peer.new_peer_connection([]), peer.new_peer_connection([])
    offerer, answerer = SasExchange("offerer"), SasExchange("answerer")
    try:
        offerer_pc.addTransceiver("audio")
        with peer.host_addresses(["127.0.0.1"]):
            await offerer_pc.setLocalDescription(await offerer_pc.createOffer())
            offer = offerer.stamp_offer(offerer_pc.localDescription.sdp)
            await answerer_pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            await answerer_pc.setLocalDescription(await answerer_pc.createAnswer())
        answer = answerer.stamp_answer(offer, answerer_pc.localDescription.sdp)
        await offerer_pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        assert offerer_pc.signalingState == answerer_pc.signalingState == "stable"
        reveal = offerer.take_answer(answer)
        assert reveal is not None and answerer.take_reveal(reveal) == "verified"
    finally:
        await offerer_pc.close()
        await answerer_pc.close()


def test_fingerprint_from_sdp() -> None:
    sdp = f"v=0\r\na=fingerprint:sha-512 {'CD:' * 63}CD\r\na=fingerprint:{FP_A.lower()}\r\n"
    assert fingerprint_from_sdp(sdp) == FP_A
    with pytest.raises(SasError):
        fingerprint_from_sdp("v=0\r\n")


def test_events_serialise() -> None:
    data = Ended(call_id="abc", reason="busy", duration=0.0, stage="ringing").to_json()
    assert data["kind"] == "ended" and data["reason"] == "busy" and data["t"] > 0
    assert set(EVENT_TYPES) >= {"dialing", "ringing", "connected", "media-flowing", "ended"}
