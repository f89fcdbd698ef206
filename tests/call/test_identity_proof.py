"""The SDP identity signature: what it binds, and every way it fails."""

from __future__ import annotations

import pytest

from hello_tui.call.identity_proof import IDENTITY_ATTR, Identity, proven, stamp
from hello_tui.call.sas import sdp_attribute, with_sdp_attribute
from hello_tui.signaling.identity import generate_key, public_key_b64

FP_A = "AB:" * 31 + "CD"
FP_B = "12:" * 31 + "34"


def sdp(fp: str = FP_A) -> str:
    return (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\n"
        f"a=fingerprint:sha-256 {fp}\r\na=setup:actpass\r\n"
    )


def test_a_signed_sdp_proves_its_account() -> None:
    key = generate_key()
    signed = stamp(sdp(), "offer", Identity("Alice@Example.org", key))
    assert sdp_attribute(signed, IDENTITY_ATTR)
    assert signed.index("a=hello-identity:") < signed.index("m=audio")  # session level
    # The name compares as the server compares names.
    assert proven(signed, "offer", "alice@example.org", public_key_b64(key))


@pytest.mark.parametrize("what", ["key", "name", "role", "fingerprint", "missing", "garbage"])
def test_anything_else_is_not_proven(what: str) -> None:
    key = generate_key()
    signed = stamp(sdp(), "offer", Identity("alice", key))
    announced, name, role = public_key_b64(key), "alice", "offer"
    if what == "key":  # the server announces another key
        announced = public_key_b64(generate_key())
    elif what == "name":
        name = "mallory"
    elif what == "role":  # an offer's signature replayed as an answer
        role = "answer"
    elif what == "fingerprint":  # a man in the middle swaps the certificate
        signed = signed.replace(FP_A, FP_B)
    elif what == "missing":
        signed = sdp()
    elif what == "garbage":
        signed = with_sdp_attribute(sdp(), IDENTITY_ATTR, "A" * 86)
    assert not proven(signed, role, name, announced)


def test_bad_announced_keys_are_not_proven() -> None:
    key = generate_key()
    signed = stamp(sdp(), "answer", Identity("bob", key))
    for announced in ("", "not a key", public_key_b64(key) + "A", public_key_b64(key)[:-1]):
        assert not proven(signed, "answer", "bob", announced)
