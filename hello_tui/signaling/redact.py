"""Pure redaction rules shared by the server's and the client's logs.

The server (``server/privacy.py``) and the client (``util/logs.py``) both
import this module; it imports only the stdlib, so the layering rule (the
server shares nothing client-side) holds.

* IP addresses are truncated (IPv4 /24, IPv6 /48), the same rule as telemetry.
* SDP (which carries every candidate address and the DTLS fingerprint) is
  replaced whole, line by line.
* E-mail addresses (account names and contacts' addresses) keep only their
  domain.
"""

from __future__ import annotations

import ipaddress
import re

# An address may carry a prefix length; "Product/1.2.3.4" is a version, not an address.
_IPV4 = re.compile(r"(?<![\w.])(?<![A-Za-z]/)(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\w.])")
_IPV6 = re.compile(
    r"(?<![\w:])(?<![A-Za-z]/)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:/\d{1,3})?(?![\w:])"
)
# Where an SDP body starts ("v=0" then a newline, also inside a repr'd string),
# and the lines that matter most if one shows up alone.
_SDP_START = re.compile(r"(?<![\w=])v=0(?=\r?\n|\\r\\n|\\n|$)")
_SDP_SECRET = re.compile(r"a=(?:fingerprint|candidate|ice-ufrag|ice-pwd|crypto):[^\r\n\\'\"]*")
# The look-behind starts a match only at the head of a run of local-part
# characters: without it a long run with no "@" is rescanned from each of its
# characters, quadratic (15 ms for 1,000 characters, minutes for 200,000).
_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)")
SDP_REDACTED = "[sdp redacted]"


def network_of(address: str | None, v4_prefix: int, v6_prefix: int) -> str:
    """The network ``address`` belongs to, at these prefix lengths ("-" for none,
    "?" for garbage); an IPv4-mapped IPv6 address counts as IPv4."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "?"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = v4_prefix if ip.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def truncate_ip(address: str | None) -> str:
    """``203.0.113.7`` → ``203.0.113.0/24``; ``2001:db8:1:2::5`` → ``2001:db8:1::/48``."""
    return network_of(address, 24, 48)


def redact_ips(text: str) -> str:
    """Truncate every IP address found in free text."""

    def _sub(match: re.Match[str]) -> str:
        token = match.group(0)
        address, _, prefix = token.partition("/")
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return token
        limit = 24 if ip.version == 4 else 48
        if prefix and int(prefix) <= limit:
            # Already a network of /24 (/48) or wider: truncating again would only
            # mangle it ("127.0.0.0/24/24"); a narrower prefix still gets truncated.
            return str(ipaddress.ip_network(token, strict=False))
        return truncate_ip(address)

    return _IPV6.sub(_sub, _IPV4.sub(_sub, text))


def redact_sdp(text: str) -> str:
    """Cut an SDP body (from its ``v=0`` line to the end of the text) down to a
    marker, and blank any fingerprint/candidate/ICE-credential line found alone."""
    start = _SDP_START.search(text)
    if start is not None:
        text = f"{text[: start.start()]}{SDP_REDACTED}"
    return _SDP_SECRET.sub(SDP_REDACTED, text)


def redact_emails(text: str) -> str:
    """``alice@example.org`` → ``…@example.org``."""
    if "@" not in text:
        return text
    return _EMAIL.sub(lambda m: f"…@{m.group('domain')}", text)


def escape_log(text: str) -> str:
    """``text`` on one line: every non-printable character (control, format such
    as bidi and zero-width, separators, unassigned) written as a ``\\xNN`` /
    ``\\uNNNN`` escape: ESC never reaches a terminal reading the log, a newline
    never starts a forged record."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def redact(text: str) -> str:
    """Every rule above, SDP first (it holds addresses of its own)."""
    return redact_emails(redact_ips(redact_sdp(text)))
