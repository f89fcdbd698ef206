"""Account keys: one Ed25519 key pair per device, the private half never leaves it.

An account is a name bound (on the server) to a public key; logging in means
signing the server's challenge, so nobody can take over a name without the
key file (promise P2) and no password ever crosses the wire.

Wire encodings, as ``protocol.py`` states them: the public key is the raw 32
bytes, the signature the raw 64 bytes, both base64url **without** padding.
On disk the private key is PEM, unencrypted PKCS#8, mode 0600, written
atomically; an existing key is never overwritten (losing it loses the name).
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hello_tui.signaling.errors import IdentityError
from hello_tui.signaling.protocol import (
    MAX_CHAIN,
    DeviceApproval,
    device_approval_payload,
    login_payload,
)
from hello_tui.util.atomic import atomic_write_bytes

__all__ = [
    "Ed25519PrivateKey",
    "IdentityError",
    "approval_path",
    "b64url_decode",
    "b64url_encode",
    "fingerprint",
    "fingerprint_of",
    "generate_key",
    "load_key",
    "public_key_b64",
    "save_key",
    "sign_login",
    "verify_login",
]


def b64url_encode(data: bytes) -> str:
    """base64url without padding: the form every binary field on the wire uses."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_encode`; tolerant of padding and of the standard
    alphabet (``+/``), because the protocol's B64 shape admits both."""
    cleaned = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"invalid base64url: {exc}") from None


def generate_key() -> Ed25519PrivateKey:
    """A fresh account key (from the OS's CSPRNG)."""
    return Ed25519PrivateKey.generate()


def save_key(path: str | os.PathLike[str], key: Ed25519PrivateKey) -> None:
    """Write ``key`` to ``path`` (PEM PKCS#8, 0600, atomic); refuse to overwrite.

    Refusing matters: the server binds the name to this key, so replacing the
    file silently would lock the user out of their own name.
    """
    target = Path(path)
    if target.exists():
        raise IdentityError(f"{target}: an account key already exists; not overwriting it")
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    atomic_write_bytes(target, pem, mode=0o600)


def load_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Read an account key, with an error naming the file when it is unusable."""
    source = Path(path)
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        raise IdentityError(f"{source}: no account key file") from None
    except OSError as exc:
        raise IdentityError(f"{source}: cannot read account key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise IdentityError(f"{source}: the account key is password-protected") from None
    except (ValueError, UnsupportedAlgorithm):
        raise IdentityError(f"{source}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{source}: not an Ed25519 key ({type(key).__name__})")
    return key


def _raw_public(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as sent in ``register``: raw 32 bytes, base64url, no padding."""
    return b64url_encode(_raw_public(key))


def fingerprint(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short, comparable name for the key: ``SHA256:`` + base64 of the hash,
    the form ``ssh-keygen -l`` users already know."""
    digest = hashlib.sha256(_raw_public(key)).digest()
    return "SHA256:" + base64.b64encode(digest).rstrip(b"=").decode("ascii")


def fingerprint_of(public_key: str) -> str:
    """:func:`fingerprint` of a public key as the wire carries it (base64url)."""
    return fingerprint(Ed25519PublicKey.from_public_bytes(b64url_decode(public_key)))


def sign_login(key: Ed25519PrivateKey, nonce: str, session: str, origin: str) -> str:
    """The ``login-proof`` signature: Ed25519 over ``login_payload(nonce, session,
    origin)``, base64url without padding. Binding to the session stops replay on
    another connection; binding to the origin stops a relay through another server."""
    return b64url_encode(key.sign(login_payload(nonce, session, origin)))


def verify_login(public_key: str, signature: str, nonce: str, session: str, origin: str) -> bool:
    """Check a login signature (the server's side of :func:`sign_login`; used by tests)."""
    try:
        public = Ed25519PublicKey.from_public_bytes(b64url_decode(public_key))
        public.verify(b64url_decode(signature), login_payload(nonce, session, origin))
    except (ValueError, InvalidSignature):
        return False
    return True


# ---------------------------------------------------------------- linking a device
# The code a new device shows: 12 characters of Crockford base32 (no I, L, O, U),
# ``HHHH-SSSS-SSSS``. The handle ``HHHH`` (20 bits) is how the server files the
# pending link; the secret (40 bits) never leaves the two devices. Stretched
# with scrypt it keys the tag (which binds the new key to the code) and the box
# that carries the new device's label to the approving device.
LINK_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LINK_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
_LABEL_PAD = 256


def new_link_code() -> str:
    """A fresh link code, ``HHHH-SSSS-SSSS`` (60 random bits)."""
    import secrets

    chars = "".join(secrets.choice(LINK_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def parse_link_code(text: str) -> tuple[str, str]:
    """``(handle, secret)`` from a code as a person types it (any case, dashes or
    spaces anywhere, O for 0, I/L for 1); ``ValueError`` if it is not one."""
    cleaned = "".join(text.upper().split()).replace("-", "").translate(_LINK_CONFUSABLE)
    if len(cleaned) != 12 or any(c not in LINK_ALPHABET for c in cleaned):
        raise ValueError("a link code is 12 letters and digits, like 7KQ2-M9XD-4TRA")
    return cleaned[:4], cleaned[4:]


def link_key(handle: str, secret: str, name: str) -> bytes:
    """The link's 32-byte key: scrypt (n=2^15) over the code's secret, salted
    with the handle and the account name, so that guessing the 40-bit secret
    from what the server holds costs ~2^40 scrypt runs."""
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    from hello_tui.signaling.names import fold

    salt = f"hello-tui link v1\n{handle}\n{fold(name)}".encode()
    return Scrypt(salt=salt, length=32, n=2**15, r=8, p=1).derive(secret.encode())


def link_tag(key: bytes, public_key: str, name: str) -> str:
    """HMAC-SHA256 under the link key over the new device's public key and the
    account: the approving device recomputes it from the typed code."""
    import hmac

    from hello_tui.signaling.names import fold

    mac = hmac.new(key, f"tag\n{public_key}\n{fold(name)}".encode(), hashlib.sha256)
    return b64url_encode(mac.digest())


def check_link_tag(key: bytes, public_key: str, name: str, tag: str) -> bool:
    import hmac

    return hmac.compare_digest(link_tag(key, public_key, name), tag)


def seal_label(key: bytes, label: str, public_key: str) -> str:
    """A device's label for the approving device only: AES-GCM under the link
    key, padded to 256 bytes (length hidden), bound to the new device's key."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data = label.encode()[:_LABEL_PAD]
    nonce = os.urandom(12)
    box = AESGCM(key).encrypt(nonce, data.ljust(_LABEL_PAD, b"\0"), public_key.encode())
    return b64url_encode(b"\x01" + nonce + box)


def open_label(key: bytes, sealed: str, public_key: str) -> str:
    """The label :func:`seal_label` sealed ("" when none or it does not open)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        raw = b64url_decode(sealed)
        if len(raw) < 29 or raw[0] != 1:
            return ""
        data = AESGCM(key).decrypt(raw[1:13], raw[13:], public_key.encode())
    except (ValueError, InvalidTag):
        return ""
    return data.rstrip(b"\0").decode("utf-8", "replace")


# ---------------------------------------------------------------- a device's approval chain
def approval_path(
    accounts: Iterable[str],
    key: str,
    chain: Sequence[DeviceApproval],
    trusted: Collection[str],
) -> list[DeviceApproval] | None:
    """The links of ``chain`` leading from ``key`` up to one of the ``trusted``
    keys, each an Ed25519 signature by its approver over
    ``device_approval_payload(account, key, handle, tag)`` for one of the names
    in ``accounts`` (the account as the approving device signed in; the server
    keeps no plain name, so the caller offers the forms it knows). None when
    there is no such path: a missing link, a signature by another key or for
    another account, or a path leading nowhere trusted. ``[]`` when ``key`` is
    trusted already. Pure: the chain is the server's word until checked here."""
    names = list(dict.fromkeys(a for a in accounts if a))
    by_key: dict[str, DeviceApproval] = {}
    for given in chain[:MAX_CHAIN]:
        by_key.setdefault(given.public_key, given)
    path: list[DeviceApproval] = []
    while key not in trusted:
        link = by_key.pop(key, None)  # pop: a cycle ends the walk
        if link is None or not _approved(names, link):
            return None
        path.append(link)
        key = link.approver
    return path


def _approved(names: list[str], link: DeviceApproval) -> bool:
    try:
        approver = Ed25519PublicKey.from_public_bytes(b64url_decode(link.approver))
        signature = b64url_decode(link.signature)
    except ValueError:
        return False
    for name in names:
        payload = device_approval_payload(name, link.public_key, link.handle, link.tag)
        try:
            approver.verify(signature, payload)
        except InvalidSignature:
            continue
        return True
    return False
