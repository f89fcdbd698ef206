"""Privacy and integrity of logs: IPs truncated (IPv4 /24, IPv6 /48) before
anything is logged, and untrusted text escaped so it cannot forge a line.

The server's own log calls pass truncated addresses and never names or SDP;
:class:`RedactingFilter` is the belt to those braces, rewriting any address
that reaches a log record anyway (aiohttp's access log prints the peer), and
escaping every control, format and separator character (``\x1b``, ``\n``,
``\u202e``): one record is one line, whatever a client sent.
"""

from __future__ import annotations

import logging

from hello_tui.signaling.redact import escape_log as escape_log  # re-exported
from hello_tui.signaling.redact import redact_ips
from hello_tui.signaling.redact import truncate_ip as truncate_ip  # re-exported

LOGGER_NAME = "hello_tui.server"
log = logging.getLogger(LOGGER_NAME)

# Loggers whose records may carry a peer address.
_GUARDED = (LOGGER_NAME, "aiohttp.access", "aiohttp.server", "aiohttp.web", "aiohttp.websocket")
# The rules themselves are shared with the client's log (signaling/redact.py).
redact = redact_ips


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
