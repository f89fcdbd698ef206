"""Account keys: generation, the on-disk format, refusing to overwrite, login signatures."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from hello_tui.signaling.identity import (
    IdentityError,
    b64url_decode,
    fingerprint,
    generate_key,
    load_key,
    public_key_b64,
    save_key,
    sign_login,
    verify_login,
)
from hello_tui.signaling.protocol import (
    Register,
    canonical_origin,
    decode_client,
    encode,
    login_payload,
)


def test_save_then_load_round_trips_with_private_mode(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "sub" / "account.key"
    save_key(path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_key_b64(load_key(path)) == public_key_b64(key)
    assert [p.name for p in path.parent.iterdir()] == ["account.key"]  # no temp file left


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "account.key"
    first = generate_key()
    save_key(path, first)
    with pytest.raises(IdentityError, match="already exists"):
        save_key(path, generate_key())
    assert public_key_b64(load_key(path)) == public_key_b64(first)


def test_load_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(IdentityError, match=r"nope\.key: no account key file"):
        load_key(missing)
    garbage = tmp_path / "garbage.key"
    garbage.write_text("hello")
    with pytest.raises(IdentityError, match=r"garbage\.key: not a PEM private key"):
        load_key(garbage)
    ec = tmp_path / "ec.key"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(IdentityError, match=r"ec\.key: not an Ed25519 key"):
        load_key(ec)


def test_public_key_is_raw_32_bytes_base64url_and_fits_the_protocol() -> None:
    key = generate_key()
    text = public_key_b64(key)
    assert len(text) == 43 and "=" not in text
    assert len(b64url_decode(text)) == 32
    frame = encode(Register(name="alice", public_key=text))
    assert decode_client(frame) == Register(name="alice", public_key=text)


def test_signature_covers_nonce_session_and_origin() -> None:
    key = generate_key()
    here = "https://hello.example.org"
    sig = sign_login(key, "bm9uY2U", "session-1234", here)
    assert len(b64url_decode(sig)) == 64
    pub = public_key_b64(key)
    assert verify_login(pub, sig, "bm9uY2U", "session-1234", here)
    assert not verify_login(pub, sig, "bm9uY2U", "session-9999", here)  # replay elsewhere
    assert not verify_login(pub, sig, "other", "session-1234", here)
    assert not verify_login(pub, sig, "bm9uY2U", "session-1234", "http://evil.example")  # relay
    assert not verify_login(public_key_b64(generate_key()), sig, "bm9uY2U", "session-1234", here)
    # The signature is over exactly protocol.login_payload (what the server verifies).
    payload = login_payload("bm9uY2U", "session-1234", here)
    key.public_key().verify(b64url_decode(sig), payload)
    assert b"protocol " in payload and here.encode() in payload


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("ws://127.0.0.1:5000/ws", "http://127.0.0.1:5000"),
        ("HTTPS://Hello.Example.ORG:443/r/abc#k=x", "https://hello.example.org"),
        ("wss://hello.example.org:8443", "https://hello.example.org:8443"),
        ("http://[::1]:80/", "http://[::1]"),
        ("http://user:pw@host:81/x?y", "http://host:81"),
    ],
)
def test_canonical_origin(url: str, origin: str) -> None:
    assert canonical_origin(url) == origin


@pytest.mark.parametrize("url", ["", "ftp://host", "http://", "127.0.0.1:5000", "http://h:99999"])
def test_canonical_origin_refuses_what_is_not_a_server(url: str) -> None:
    with pytest.raises(ValueError):
        canonical_origin(url)


def test_b64url_decode_accepts_padding_and_standard_alphabet() -> None:
    data = bytes(range(250, 256)) + b"\xfb\xff"
    assert b64url_decode(base64.b64encode(data).decode()) == data
    assert b64url_decode(base64.urlsafe_b64encode(data).decode()) == data


def test_fingerprint_is_stable_and_distinct() -> None:
    a, b = generate_key(), generate_key()
    assert fingerprint(a) == fingerprint(a.public_key())
    assert fingerprint(a).startswith("SHA256:") and fingerprint(a) != fingerprint(b)
