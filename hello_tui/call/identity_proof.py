"""Who is calling, really: each side signs its own DTLS fingerprint with its account key.

The server tells each party the other's account public key (``incoming``'s
``caller_key``, ``accepted``'s ``callee_key``), but that is only its word. So
each side that has an account signs the fingerprint of the certificate it
will present in the DTLS handshake, and puts the signature in its SDP as a
session-level attribute (as :mod:`hello_tui.call.sas` does its own)::

    a=hello-identity:B64URL(Ed25519(account key, payload))
    payload = "hello-tui identity v1\\n" + role + "\\n" + name + "\\n" + fingerprint

``role`` is ``offer`` or ``answer``, ``name`` the signer's own account name
normalised (:func:`normalize_name`: the server's ``names.fold``, as the server
compares names) and ``fingerprint`` its DTLS fingerprint as
:func:`~hello_tui.call.sas.fingerprint_from_sdp` writes it. The peer checks
the signature with the key the server announced. DTLS then refuses any
certificate but the signed one, so a valid signature means: the media peer
holds the announced account's key. A server that swaps the SDP (a man in the
middle) must put its own fingerprint in and cannot sign it with that key; a
server that announces another key gets a signature that does not verify. In
both cases the call is "unproven"; a server that announces its *own* key and
signs with it passes this check, and is caught by the pins (trust on first
use: :mod:`hello_tui.contacts.pins`) as a changed key. See docs/security.md,
"Who is calling, really".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hello_tui.call.sas import (
    SasError,
    b64,
    fingerprint_from_sdp,
    sdp_attribute,
    unb64,
    with_sdp_attribute,
)
from hello_tui.signaling.names import normalize_name

if TYPE_CHECKING:  # cryptography loads when a call needs it, not with the front ends
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "IDENTITY_ATTR",
    "Identity",
    "payload",
    "proven",
    "stamp",
]

IDENTITY_ATTR = "hello-identity"
LABEL = "hello-tui identity v1"
KEY_BYTES = 32
SIGNATURE_BYTES = 64


class Identity:
    """Our account, as a call needs it: the name we signed in as and its key."""

    def __init__(self, name: str, key: Ed25519PrivateKey) -> None:
        self.name = name
        self.key = key


def payload(role: str, name: str, fingerprint: str) -> bytes:
    """What the signature covers."""
    return f"{LABEL}\n{role}\n{normalize_name(name)}\n{fingerprint}".encode()


def stamp(sdp: str, role: str, identity: Identity) -> str:
    """``sdp`` with our signature over its fingerprint (unchanged if it has none)."""
    try:
        fingerprint = fingerprint_from_sdp(sdp)
    except SasError:
        return sdp
    signature = identity.key.sign(payload(role, identity.name, fingerprint))
    return with_sdp_attribute(sdp, IDENTITY_ATTR, b64(signature))


def public_key(key_b64: str) -> Ed25519PublicKey | None:
    """An announced key (raw 32 bytes, base64url), or None if it is not one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    raw = unb64(key_b64, KEY_BYTES)
    if raw is None:
        return None
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        return None


def proven(sdp: str, role: str, name: str, key_b64: str) -> bool:
    """True when ``sdp`` carries a valid signature by ``key_b64`` (the key the
    server announced for ``name``) over its own DTLS fingerprint."""
    from cryptography.exceptions import InvalidSignature

    key = public_key(key_b64)
    signature = unb64(sdp_attribute(sdp, IDENTITY_ATTR) or "", SIGNATURE_BYTES)
    if key is None or signature is None or not name:
        return False
    try:
        fingerprint = fingerprint_from_sdp(sdp)
        key.verify(signature, payload(role, name, fingerprint))
    except (SasError, InvalidSignature):
        return False
    return True
