"""Privacy and integrity of logs: IPs truncated (IPv4 /24, IPv6 /48) before
anything is logged, and untrusted text escaped so it cannot forge a line.

The server's own log calls pass truncated addresses and never names or SDP;
:class:`RedactingFilter` is the belt to those braces, rewriting any address
that reaches a log record anyway (aiohttp's access log prints the peer), and
escaping every control, format and separator character (``\x1b``, ``\n``,
``\u202e``): one record is one line, whatever a client sent.
"""

from __future__ import annotations

import ipaddress
import logging
import re

LOGGER_NAME = "hello_tui.server"
log = logging.getLogger(LOGGER_NAME)

# Loggers whose records may carry a peer address.
_GUARDED = (LOGGER_NAME, "aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.websocket")
# An address may carry a prefix length; "Product/1.2.3.4" is a version, not an address.
_IPV4 = re.compile(r"(?<![\w.])(?<![A-Za-z]/)(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?(?![\w.])")
_IPV6 = re.compile(
    r"(?<![\w:])(?<![A-Za-z]/)[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:/\d{1,3})?(?![\w:])"
)


def truncate_ip(address: str | None) -> str:
    """``203.0.113.7`` → ``203.0.113.0/24``; ``2001:db8:1:2::5`` → ``2001:db8:1::/48``."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "?"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


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


class RedactingFilter(logging.Filter):
    """Rewrites a record's message with every IP address truncated and every
    control character escaped (:func:`escape_log`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is still logged, as is
            return True
        cleaned = escape_log(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactingFilter()


def install_log_privacy() -> None:
    """Attach the redacting filter to every logger that may see a peer (idempotent)."""
    for name in _GUARDED:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def short(identifier: str) -> str:
    """A log-safe prefix of a random id: enough to follow one call, useless to join it."""
    return identifier[:6]
