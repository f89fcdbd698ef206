"""What a server URL is, in one place (stdlib only: the CLI's parser uses it).

:func:`canonical_origin` is the form a login is bound to (``protocol.login_payload``)
and the one test of "is this a server URL" for ``--server``, ``--public-url``,
room links and the configured server.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_SCHEMES = {"http": "http", "ws": "http", "https": "https", "wss": "https"}


def canonical_origin(url: str) -> str:
    """``scheme://host[:port]`` of a server URL: ``ws``/``wss`` become
    ``http``/``https``, the host is lower-case, a default port is dropped.
    Raises ``ValueError`` for anything that is not a server URL."""
    parts = urlsplit(url.strip())
    scheme = _SCHEMES.get(parts.scheme.lower())
    host = parts.hostname
    if scheme is None or not host:
        raise ValueError(f"not a server URL: {url!r}")
    port = parts.port  # ValueError for a port out of range
    if port == 0:
        raise ValueError(f"not a server URL (port 0): {url!r}")
    if port in (None, 80 if scheme == "http" else 443):
        port = None
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port else "")
