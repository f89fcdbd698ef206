"""Encryption you can check: a short code that no man in the middle can grind.

Media is DTLS-SRTP: each side has a certificate whose fingerprint is in its
SDP (``a=fingerprint:sha-256 AB:CD:...``), and the DTLS handshake fails unless
the certificate the peer presents matches the fingerprint in the SDP we
received. A server that swapped the SDP (a man in the middle) has to put its
*own* fingerprints in, so the two sides then hold different pairs, and a
short code hashed from the pair, read aloud, exposes it.

A code of the fingerprints alone can be ground: the relay sees the offerer's
fingerprint and the answerer's before it must commit to its own certificates,
so it can mint certificates until both sides' six digits agree (the audit did
it in 1.8 s). Hence a ZRTP-style hash commitment (RFC 6189 §4.4.1.1):

1. The **offerer** draws a 32-byte nonce ``n_o`` and puts only its commitment
   in the offer, a session-level SDP attribute::

       a=hello-sas-commit:B64URL(SHA-256("hello-tui sas commit v1" || n_o))

2. The **answerer** draws ``n_a`` and puts it in the clear in the answer
   (``a=hello-sas-nonce:B64URL(n_a)``).
3. Only after the answer arrived does the offerer reveal ``n_o`` (the
   ``sas-reveal`` signaling message); the answerer checks it against the
   commitment. A wrong one means someone tampered: a loud warning, never a code.
4. Both sides show six digits, in two groups of three (``"482 913"``)::

       digest = SHA-256("hello-tui sas v2" 0x00 fp_offer 0x00 fp_answer 0x00 n_o n_a)
       code   = int.from_bytes(digest[:8], "big") % 1_000_000, zero-padded

   with each ``fp`` written ``"sha-256 AB:CD:..."`` (RFC 8122 form).

A relay in the middle must answer the offerer (fixing its fingerprint and
nonce there) before it learns ``n_o``, and commit its own offer to the
answerer before it sees ``n_a``: whatever it computes, the two codes it ends
up with are independent random draws, one guess in a million per call. A peer
that sends no commitment (or no nonce) gets no code at all, not a weak one.
See docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from typing import Literal

__all__ = [
    "COMMIT_ATTR",
    "NONCE_ATTR",
    "SasError",
    "SasExchange",
    "commitment",
    "fingerprint_from_sdp",
    "new_nonce",
    "sas_code",
    "sdp_attribute",
    "with_sdp_attribute",
]

_FP_RE = re.compile(r"^a=fingerprint:(\S+)\s+([0-9A-Fa-f:]+)\s*$", re.MULTILINE)
PREFERRED = "sha-256"
COMMIT_ATTR = "hello-sas-commit"
NONCE_ATTR = "hello-sas-nonce"
NONCE_BYTES = 32
COMMIT_BYTES = 32  # a SHA-256 digest
COMMIT_LABEL = b"hello-tui sas commit v1"
CODE_LABEL = b"hello-tui sas v2"

Role = Literal["offerer", "answerer"]
# waiting: not settled yet; verified: the code can be shown; mismatch: the
# revealed nonce does not open the commitment; unsupported: the peer sent none.
Status = Literal["waiting", "verified", "mismatch", "unsupported"]


class SasError(ValueError):
    """An SDP without a usable DTLS fingerprint."""


def _normalise(algorithm: str, value: str) -> str:
    return f"{algorithm.lower()} {value.upper()}"


def fingerprint_from_sdp(sdp: str) -> str:
    """The DTLS fingerprint an SDP announces (the sha-256 one when several)."""
    found = [(alg.lower(), val) for alg, val in _FP_RE.findall(sdp)]
    if not found:
        raise SasError("the SDP carries no a=fingerprint line")
    for alg, val in found:
        if alg == PREFERRED:
            return _normalise(alg, val)
    alg, val = found[0]
    return _normalise(alg, val)


# ---------------------------------------------------------------- primitives
def new_nonce() -> bytes:
    return secrets.token_bytes(NONCE_BYTES)


def commitment(nonce: bytes) -> bytes:
    """What the offer carries instead of the nonce."""
    return hashlib.sha256(COMMIT_LABEL + nonce).digest()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str, size: int = NONCE_BYTES) -> bytes | None:
    """Strict base64url of exactly ``size`` bytes, else None."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text or ""):
        return None
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return data if len(data) == size and b64(data) == text else None


def sas_code(fp_offer: str, fp_answer: str, nonce_offer: bytes, nonce_answer: bytes) -> str:
    """The six-digit code, ``"482 913"``: both sides pass the offerer's items first."""
    a = _normalise(*fp_offer.strip().split(None, 1))
    b = _normalise(*fp_answer.strip().split(None, 1))
    if len(nonce_offer) != NONCE_BYTES or len(nonce_answer) != NONCE_BYTES:
        raise ValueError(f"nonces are {NONCE_BYTES} bytes")
    parts = [CODE_LABEL, a.encode("ascii"), b.encode("ascii"), nonce_offer + nonce_answer]
    digest = hashlib.sha256(b"\0".join(parts)).digest()
    digits = f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"
    return f"{digits[:3]} {digits[3:]}"


# ---------------------------------------------------------------- SDP carriage
def sdp_attribute(sdp: str, name: str) -> str | None:
    """The value of a session-level ``a=name:value`` (before the first m= line)."""
    prefix = f"a={name}:"
    for line in sdp.splitlines():
        if line.startswith("m="):
            return None
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def with_sdp_attribute(sdp: str, name: str, value: str) -> str:
    """``sdp`` with a session-level ``a=name:value`` (just before the first m= line).
    Peers ignore attributes they do not know (RFC 8866 §5.13): aiortc and Chromium do."""
    newline = "\r\n" if "\r\n" in sdp else "\n"
    lines = sdp.split(newline)
    at = next((i for i, line in enumerate(lines) if line.startswith("m=")), None)
    if at is None:  # no media section: append (before a trailing empty line)
        at = len(lines) - 1 if lines and lines[-1] == "" else len(lines)
    lines.insert(at, f"a={name}:{value}")
    return newline.join(lines)


# ---------------------------------------------------------------- one exchange
class SasExchange:
    """One side's part of the commitment exchange, for one offer/answer.

    Offerer: ``stamp_offer(sdp)`` → send; on the answer ``take_answer(sdp)``
    returns the nonce to reveal (None: the answer carried none, no code).
    Answerer: ``stamp_answer(offer_sdp, answer_sdp)`` → send; then
    ``take_reveal(nonce)`` once. ``code(fp_offer, fp_answer)`` is the code
    once ``status == "verified"``, never before.
    """

    def __init__(self, role: Role) -> None:
        self.role: Role = role
        self.status: Status = "waiting"
        self._mine = new_nonce()
        self._theirs: bytes | None = None
        self._commit: bytes | None = None  # answerer: what the offer committed to

    # offerer
    def stamp_offer(self, sdp: str) -> str:
        return with_sdp_attribute(sdp, COMMIT_ATTR, b64(commitment(self._mine)))

    def take_answer(self, sdp: str) -> str | None:
        """Read the answerer's nonce; returns our nonce to reveal (once), or None."""
        if self.role != "offerer" or self.status != "waiting":
            return None
        theirs = unb64(sdp_attribute(sdp, NONCE_ATTR) or "")
        if theirs is None:
            self.status = "unsupported"
            return None
        self._theirs = theirs
        self.status = "verified"  # we hold both nonces; ours was committed before theirs
        return b64(self._mine)

    # answerer
    def stamp_answer(self, offer_sdp: str, answer_sdp: str) -> str:
        self._commit = unb64(sdp_attribute(offer_sdp, COMMIT_ATTR) or "", COMMIT_BYTES)
        if self._commit is None:
            self.status = "unsupported"
        return with_sdp_attribute(answer_sdp, NONCE_ATTR, b64(self._mine))

    def take_reveal(self, nonce: str) -> Status:
        """Check the offerer's revealed nonce (only the first reveal counts)."""
        if self.role != "answerer" or self.status != "waiting" or self._commit is None:
            return self.status
        theirs = unb64(nonce)
        if theirs is None or not hmac.compare_digest(commitment(theirs), self._commit):
            self.status = "mismatch"
        else:
            self._theirs = theirs
            self.status = "verified"
        return self.status

    def code(self, fp_offer: str, fp_answer: str) -> str | None:
        if self.status != "verified" or self._theirs is None:
            return None
        if self.role == "offerer":
            return sas_code(fp_offer, fp_answer, self._mine, self._theirs)
        return sas_code(fp_offer, fp_answer, self._theirs, self._mine)
