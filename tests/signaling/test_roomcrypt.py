"""Room-name encryption and room URLs: the exact format the browser page must read."""

from __future__ import annotations

import base64

import msgspec
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hello_tui.signaling.protocol import MAX_CIPHERTEXT, RoomCreate, decode_client, encode
from hello_tui.signaling.roomcrypt import (
    MAX_NAME_CHARS,
    RoomCryptError,
    decode_key,
    decrypt_name,
    encode_key,
    encrypt_name,
    new_room_key,
    parse_room_url,
    room_url,
)

TOKEN = "Zb3kQ9xW2mLpT7vR"


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.mark.parametrize("name", ["", "Team sync", "Réunion du lundi 🎉", "x" * MAX_NAME_CHARS])
def test_round_trip(name: str) -> None:
    key = new_room_key()
    assert len(key) == 16
    ct = encrypt_name(key, name)
    assert decrypt_name(key, ct) == name


def test_format_is_version_nonce_then_aesgcm_without_aad() -> None:
    """Decrypt by hand exactly as the module docstring tells the browser page to."""
    key = new_room_key()
    blob = _unb64(encrypt_name(key, "Family call"))
    assert blob[0] == 1
    plain = AESGCM(key).decrypt(blob[1:13], blob[13:], None)
    assert len(plain) % 32 == 0
    assert plain.rstrip(b"\0").decode() == "Family call"


def test_nonce_is_fresh_and_length_is_bucketed() -> None:
    key = new_room_key()
    a, b = encrypt_name(key, "same"), encrypt_name(key, "same")
    assert a != b
    assert len(encrypt_name(key, "a")) == len(encrypt_name(key, "a" * 31))


def test_largest_name_fits_the_protocol_ciphertext_field() -> None:
    ct = encrypt_name(new_room_key(), "😀" * MAX_NAME_CHARS)  # 4 bytes each in UTF-8
    assert len(ct) == MAX_CIPHERTEXT  # the protocol's bound is exactly the largest name
    assert decode_client(encode(RoomCreate(name=ct))) == RoomCreate(name=ct)


def test_wrong_key_and_tampering_are_clear_errors() -> None:
    key = new_room_key()
    ct = encrypt_name(key, "secret")
    with pytest.raises(RoomCryptError, match="wrong room key"):
        decrypt_name(new_room_key(), ct)
    blob = bytearray(_unb64(ct))
    blob[-1] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(blob)).decode().rstrip("=")
    with pytest.raises(RoomCryptError, match="wrong room key"):
        decrypt_name(key, tampered)
    with pytest.raises(RoomCryptError, match="too short"):
        decrypt_name(key, "AAAA")
    with pytest.raises(RoomCryptError, match="format version"):
        decrypt_name(key, base64.urlsafe_b64encode(b"\x02" + bytes(40)).decode())


def test_names_that_cannot_be_encrypted() -> None:
    key = new_room_key()
    with pytest.raises(RoomCryptError, match="too long"):
        encrypt_name(key, "x" * (MAX_NAME_CHARS + 1))
    with pytest.raises(RoomCryptError, match="NUL"):
        encrypt_name(key, "a\0b")
    with pytest.raises(RoomCryptError, match="16 bytes"):
        encrypt_name(b"short", "a")


def test_room_url_and_parse_round_trip() -> None:
    key = new_room_key()
    url = room_url(f"http://127.0.0.1:5000/r/{TOKEN}", key)
    assert url == f"http://127.0.0.1:5000/r/{TOKEN}#k={encode_key(key)}"
    assert len(encode_key(key)) == 22
    assert parse_room_url(url) == (TOKEN, key)
    # An existing fragment is replaced, not appended to.
    assert room_url(url, key) == url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TOKEN, (TOKEN, None)),
        (f"  {TOKEN}\n", (TOKEN, None)),
        (f"https://hello.example.org/r/{TOKEN}", (TOKEN, None)),
        (f"https://hello.example.org/r/{TOKEN}/", (TOKEN, None)),
        (f"https://hello.example.org/r/{TOKEN}#other=1", (TOKEN, None)),
    ],
)
def test_parse_without_key(text: str, expected: tuple[str, None]) -> None:
    assert parse_room_url(text) == expected


def test_parse_key_among_other_fragment_entries() -> None:
    key = new_room_key()
    url = f"https://h.example/r/{TOKEN}#x=1&k={encode_key(key)}"
    assert parse_room_url(url) == (TOKEN, key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("short", "not a room URL or token"),
        ("https://h.example/", "no room token"),
        ("https://h.example/r/bad!token", "no room token"),
        (f"https://h.example/r/{TOKEN}#k=abc", "16 bytes"),
        (f"https://h.example/r/{TOKEN}#k=!!!!", "16 bytes|base64url"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(RoomCryptError, match=message):
        parse_room_url(text)


def test_decode_key_rejects_wrong_sizes() -> None:
    with pytest.raises(RoomCryptError):
        decode_key(encode_key(bytes(15)))
    assert decode_key(encode_key(bytes(16)) + "==") == bytes(16)


def test_ciphertext_is_a_valid_protocol_value() -> None:
    ct = encrypt_name(new_room_key(), "x")
    msgspec.json.decode(encode(RoomCreate(name=ct)), type=RoomCreate)


def test_name_length_edge_is_256_characters() -> None:
    key = new_room_key()
    assert decrypt_name(key, encrypt_name(key, "é" * 256)) == "é" * 256
    with pytest.raises(RoomCryptError) as caught:
        encrypt_name(key, "é" * 257)
    assert str(caught.value) == "room name too long (257 characters, at most 256)"


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (28, "the encrypted room name is too short"),  # version + nonce + a 15-byte tag
        (29, "cannot decrypt the room name: wrong room key (the URL's #k=... part)"),
    ],
)
def test_shortest_ciphertext_is_version_nonce_and_tag(size: int, message: str) -> None:
    blob = base64.urlsafe_b64encode(b"\x01" + bytes(size - 1)).decode().rstrip("=")
    with pytest.raises(RoomCryptError) as caught:
        decrypt_name(new_room_key(), blob)
    assert str(caught.value) == message


def test_unknown_version_is_named() -> None:
    blob = base64.urlsafe_b64encode(b"\x07" + bytes(40)).decode()
    with pytest.raises(RoomCryptError) as caught:
        decrypt_name(new_room_key(), blob)
    assert str(caught.value) == "unknown room name format version 7"


@pytest.mark.parametrize(
    ("text", "token"),
    [
        (f"https://h.example/hello/r/{TOKEN}", TOKEN),  # a server under a path prefix
        (f"https://h.example/a/b/c/{TOKEN}?x=1", TOKEN),
    ],
)
def test_the_token_is_the_last_path_segment(text: str, token: str) -> None:
    assert parse_room_url(text) == (token, None)


@pytest.mark.parametrize(
    "text", [f"file:///r/{TOKEN}", f"//h.example/r/{TOKEN}", f"h.example/r/{TOKEN}"]
)
def test_a_url_needs_both_scheme_and_host(text: str) -> None:
    with pytest.raises(RoomCryptError) as caught:
        parse_room_url(text)
    assert str(caught.value) == f"not a room URL or token: {text!r}"
