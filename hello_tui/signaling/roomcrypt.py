"""Room names are encrypted by the client: the server stores and lists only
ciphertext, and the key travels only in the URL fragment, which browsers and
HTTP clients never send to a server. This is how Firefox Hello kept room
names private, and the browser join page (plain JS, WebCrypto) must read the
same format, so here it is exactly.

Key
    16 random bytes (AES-128). In a room URL it is the fragment ``#k=KEY``
    where KEY is base64url **without padding** (22 characters)::

        https://hello.example.org/r/Zb3kQ9xW2mLpT7vR#k=q1w2e3r4t5y6u7i8o9p0aA

Encrypted name (``RoomInfo.name`` / ``room-create`` ``name``)
    base64url without padding of ``version || nonce || ciphertext``:

    - ``version``: one byte, ``0x01``;
    - ``nonce``: 12 random bytes (a fresh one for every encryption);
    - ``ciphertext``: AES-GCM output (encrypted data then the 16-byte tag),
      with **no** additional authenticated data.

    The plaintext is the UTF-8 name followed by zero bytes up to a multiple
    of 32 bytes, so the ciphertext length reveals only a coarse bucket of the
    name's length. Names are at most 256 characters and may not contain NUL;
    the empty name (an unnamed room) is valid. Largest output: 1,404
    characters: the protocol's bound (``MAX_CIPHERTEXT``).

Encrypted context (``RoomInfo.context``, protocol version 2)
    Like Firefox Hello's room context: a short description and a URL. The same
    format as the name, with the same key, over the UTF-8 of the JSON object
    ``{"description": "...", "url": "..."}`` (both strings, either may be
    empty), zero-padded to 32 bytes. The description is one line of at most
    200 characters; the URL is ``http://`` or ``https://``, printable ASCII
    without spaces, quotes or angle brackets, at most 500 characters. Largest
    output: under 2,600 characters (``MAX_CONTEXT_CIPHERTEXT``). Faces show
    the URL as text and never open it.

WebCrypto equivalent of :func:`decrypt_name`::

    const b = b64urlDecode(ct);                       // Uint8Array
    if (b[0] !== 1) throw new Error("unknown room name format");
    const k = await crypto.subtle.importKey("raw", b64urlDecode(key), "AES-GCM", false,
                                            ["decrypt"]);
    const pt = await crypto.subtle.decrypt({name: "AES-GCM", iv: b.slice(1, 13)}, k,
                                           b.slice(13));
    const name = new TextDecoder().decode(pt).replace(/\\0+$/, "");
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from hello_tui.signaling.errors import RoomCryptError

__all__ = [
    "KEY_BYTES",
    "MAX_NAME_CHARS",
    "RoomContext",
    "RoomCryptError",
    "check_context",
    "check_name",
    "decode_key",
    "decrypt_context",
    "decrypt_name",
    "encode_key",
    "encrypt_context",
    "encrypt_name",
    "new_room_key",
    "parse_room_url",
    "room_url",
]

KEY_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
VERSION = 1
PAD_TO = 32
MAX_NAME_CHARS = 256
MAX_DESCRIPTION_CHARS = 200
MAX_CONTEXT_URL_CHARS = 500
_CONTEXT_URL_RE = re.compile(r"^https?://[!#-;=?-~]+$")  # printable ASCII but space " < >
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# The protocol's room token (``Id``): what the last path segment of a room URL is.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: str, what: str) -> bytes:
    cleaned = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (ValueError, TypeError):
        raise RoomCryptError(f"{what} is not valid base64url") from None


def new_room_key() -> bytes:
    """A fresh 128-bit room key."""
    return os.urandom(KEY_BYTES)


def encode_key(key: bytes) -> str:
    """The key as it appears after ``#k=``."""
    return _b64e(key)


def decode_key(text: str) -> bytes:
    """Parse a ``#k=`` value; a key of the wrong size is refused, not truncated."""
    key = _b64d(text, "the room key")
    if len(key) != KEY_BYTES:
        raise RoomCryptError(
            f"the room key must be {KEY_BYTES} bytes (22 base64url characters), got {len(key)}"
        )
    return key


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise RoomCryptError(f"the room key must be {KEY_BYTES} bytes, got {len(key)}")


def check_name(name: str) -> None:
    """Refuse a name :func:`encrypt_name` would refuse (before any network work)."""
    if len(name) > MAX_NAME_CHARS:
        raise RoomCryptError(f"room name too long ({len(name)} characters, at most 256)")
    if "\0" in name:
        raise RoomCryptError("room name may not contain NUL characters")


def _seal(key: bytes, text: str) -> str:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    _check_key(key)
    plain = text.encode("utf-8")
    plain += b"\0" * (-len(plain) % PAD_TO)
    nonce = os.urandom(NONCE_BYTES)
    return _b64e(bytes([VERSION]) + nonce + AESGCM(key).encrypt(nonce, plain, None))


def _unseal(key: bytes, ciphertext: str, what: str) -> str:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    _check_key(key)
    blob = _b64d(ciphertext, f"the encrypted {what}")
    if len(blob) < 1 + NONCE_BYTES + TAG_BYTES:
        raise RoomCryptError(f"the encrypted {what} is too short")
    if blob[0] != VERSION:
        raise RoomCryptError(f"unknown {what} format version {blob[0]}")
    nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        plain = AESGCM(key).decrypt(nonce, body, None)
    except InvalidTag:
        raise RoomCryptError(
            f"cannot decrypt the {what}: wrong room key (the URL's #k=... part)"
        ) from None
    try:
        return plain.rstrip(b"\0").decode("utf-8")
    except UnicodeDecodeError:
        raise RoomCryptError(f"the decrypted {what} is not UTF-8") from None


def encrypt_name(key: bytes, name: str) -> str:
    """Encrypt a room name for the server (format in the module docstring)."""
    _check_key(key)
    check_name(name)
    return _seal(key, name)


def decrypt_name(key: bytes, ciphertext: str) -> str:
    """Decrypt a room name; a wrong key or tampered text is a clear error."""
    return _unseal(key, ciphertext, "room name")


@dataclass(frozen=True, slots=True)
class RoomContext:
    """A room's description and URL (Hello's "context"); both may be empty."""

    description: str = ""
    url: str = ""

    def __bool__(self) -> bool:
        return bool(self.description or self.url)


def check_context(context: RoomContext) -> None:
    """Refuse a description or URL :func:`encrypt_context` would refuse."""
    description, url = context.description, context.url
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise RoomCryptError(
            f"room description too long ({len(description)} characters, at most "
            f"{MAX_DESCRIPTION_CHARS})"
        )
    if _CONTROL_RE.search(description):
        raise RoomCryptError("room description must be one line without control characters")
    if len(url) > MAX_CONTEXT_URL_CHARS:
        raise RoomCryptError(
            f"room URL too long ({len(url)} characters, at most {MAX_CONTEXT_URL_CHARS})"
        )
    if url and not _CONTEXT_URL_RE.match(url):
        raise RoomCryptError(
            "room URL must start with http:// or https:// and hold no spaces, quotes or <>"
        )


def encrypt_context(key: bytes, context: RoomContext) -> str:
    """Encrypt a room's context ("" for an empty one: the room has none)."""
    check_context(context)
    if not context:
        return ""
    text = json.dumps({"description": context.description, "url": context.url}, ensure_ascii=False)
    return _seal(key, text)


def decrypt_context(key: bytes, ciphertext: str) -> RoomContext:
    """Decrypt (and check again: it is someone else's text) a room's context."""
    if not ciphertext:
        return RoomContext()
    text = _unseal(key, ciphertext, "room context")
    try:
        data = json.loads(text)
    except ValueError:
        raise RoomCryptError("the room context is not JSON") from None
    if not isinstance(data, dict):
        raise RoomCryptError("the room context is not a JSON object")
    description, url = data.get("description", ""), data.get("url", "")
    if not isinstance(description, str) or not isinstance(url, str):
        raise RoomCryptError("the room context's fields must be strings")
    context = RoomContext(description, url)
    check_context(context)
    return context


def room_url(base_url: str, key: bytes) -> str:
    """``base_url`` (the server's room URL) with the key as its fragment."""
    _check_key(key)
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(fragment=f"k={encode_key(key)}"))


def parse_room_url(url: str) -> tuple[str, bytes | None]:
    """``(token, key)`` from a room URL or a bare token.

    The token is the URL's last path segment; the key comes from a ``k=``
    entry in the fragment (``None`` when the fragment has none, e.g. a URL
    copied without it, or a bare token).
    """
    text = url.strip()
    if _TOKEN_RE.match(text):
        return text, None
    parts = urlsplit(text)
    if not parts.scheme or not parts.netloc:
        raise RoomCryptError(f"not a room URL or token: {url!r}")
    segments = [s for s in parts.path.split("/") if s]
    token = segments[-1] if segments else ""
    if not _TOKEN_RE.match(token):
        raise RoomCryptError(f"no room token in {url!r}")
    key: bytes | None = None
    for item in parts.fragment.split("&"):
        name, _, value = item.partition("=")
        if name == "k" and value:
            key = decode_key(value)
    return token, key
