"""Encryption you can check: a short code both sides derive from the DTLS fingerprints.

Media is DTLS-SRTP: each side has a certificate whose fingerprint is in its
SDP (``a=fingerprint:sha-256 AB:CD:...``), and the DTLS handshake fails unless
the certificate the peer presents matches the fingerprint in the SDP we
received. A server that swapped the SDP (a man in the middle) would have to
put *its own* fingerprints in, so the two sides would then hold different
pairs. Hashing the pair into a short code that the two people read aloud
exposes that.

The code: **six digits, shown as two groups of three** (``"482 913"``).

    digest = SHA-256("hello-tui sas v1\\n" + "\\n".join(sorted([fp_a, fp_b])))
    code   = int.from_bytes(digest[:8], "big") % 1_000_000, zero-padded to 6 digits

where each ``fp`` is ``"sha-256 AB:CD:..."`` (algorithm lower-case, hex
upper-case with colons, as RFC 8122 writes it). Sorting makes it
order-independent: both sides compute the same code from (local, remote) and
(remote, local). Six digits (about 20 bits) is what ZRTP's SAS gives: an
attacker gets one guess per call, with a one-in-a-million chance.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["SasError", "fingerprint_from_sdp", "sas_code"]

_FP_RE = re.compile(r"^a=fingerprint:(\S+)\s+([0-9A-Fa-f:]+)\s*$", re.MULTILINE)
PREFERRED = "sha-256"


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


def sas_code(fingerprint_a: str, fingerprint_b: str) -> str:
    """The six-digit code for two fingerprints, in either order: ``"482 913"``."""
    a = _normalise(*fingerprint_a.strip().split(None, 1))
    b = _normalise(*fingerprint_b.strip().split(None, 1))
    text = "hello-tui sas v1\n" + "\n".join(sorted([a, b]))
    digest = hashlib.sha256(text.encode("ascii")).digest()
    number = int.from_bytes(digest[:8], "big") % 1_000_000
    digits = f"{number:06d}"
    return f"{digits[:3]} {digits[3:]}"
