"""Room keys on every device of an account: each device's X25519 "box" key and
the sealed boxes that carry a room's key to it (docs/accounts-and-rooms.md).

Box key
    X25519 private key = HKDF-SHA256(the device's raw Ed25519 private key,
    salt empty, info ``hello-tui device x25519``, 32 bytes): derived from the
    key file, so nothing more is stored and it goes when the key file goes.
    Published with ``device-box-key``, signed by the device's Ed25519 key over
    ``protocol.box_key_payload`` so the server cannot substitute its own.

Box (``RoomKeyBox.box``)
    base64url of ``0x01 ‖ ephemeral X25519 public key (32) ‖ nonce (12) ‖
    AES-GCM(room key) with its 16-byte tag``; the AES-256 key is
    HKDF-SHA256(ECDH(ephemeral, device), salt = ephemeral ‖ device public key,
    info ``hello-tui room key v1``) and the room's token is the associated
    data, so a box cannot be moved to another room. 77 bytes, 103 characters.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from hello_tui.signaling.identity import b64url_decode, b64url_encode, public_key_b64
from hello_tui.signaling.protocol import box_key_payload

VERSION = 1
ROOM_KEY_BYTES = 16
_BOX_BYTES = 1 + 32 + 12 + ROOM_KEY_BYTES + 16


def _hkdf(material: bytes, salt: bytes | None, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(material)


def box_private(device_key: Ed25519PrivateKey) -> X25519PrivateKey:
    """This device's X25519 key, derived from its Ed25519 key file."""
    raw = device_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return X25519PrivateKey.from_private_bytes(_hkdf(raw, None, b"hello-tui device x25519"))


def box_public_b64(device_key: Ed25519PrivateKey) -> str:
    return b64url_encode(box_private(device_key).public_key().public_bytes_raw())


def sign_box_key(device_key: Ed25519PrivateKey, name: str) -> tuple[str, str]:
    """(box key, signature) to publish for account ``name``."""
    box = box_public_b64(device_key)
    payload = box_key_payload(name, public_key_b64(device_key), box)
    return box, b64url_encode(device_key.sign(payload))


def verify_box_key(name: str, device_public: str, box_key: str, signature: str) -> bool:
    """Did the device with Ed25519 key ``device_public`` publish ``box_key``?"""
    try:
        key = Ed25519PublicKey.from_public_bytes(b64url_decode(device_public))
        key.verify(b64url_decode(signature), box_key_payload(name, device_public, box_key))
    except (ValueError, InvalidSignature):
        return False
    return True


def _aead_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> AESGCM:
    return AESGCM(_hkdf(shared, ephemeral + recipient, b"hello-tui room key v1"))


def seal(box_key: str, room_key: bytes, token: str) -> str:
    """``room_key`` sealed to the device whose X25519 public key is ``box_key``."""
    recipient = b64url_decode(box_key)
    ephemeral = X25519PrivateKey.generate()
    eph_pub = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    nonce = os.urandom(12)
    sealed = _aead_key(shared, eph_pub, recipient).encrypt(nonce, room_key, token.encode())
    return b64url_encode(bytes([VERSION]) + eph_pub + nonce + sealed)


def open_box(device_key: Ed25519PrivateKey, box: str, token: str) -> bytes | None:
    """The room key in ``box`` (None when it is not for this device or is damaged)."""
    try:
        raw = b64url_decode(box)
        if len(raw) != _BOX_BYTES or raw[0] != VERSION:
            return None
        mine = box_private(device_key)
        eph_pub, nonce, sealed = raw[1:33], raw[33:45], raw[45:]
        shared = mine.exchange(X25519PublicKey.from_public_bytes(eph_pub))
        recipient = mine.public_key().public_bytes_raw()
        key = _aead_key(shared, eph_pub, recipient).decrypt(nonce, sealed, token.encode())
    except (ValueError, InvalidTag):
        return None
    return key if len(key) == ROOM_KEY_BYTES else None
