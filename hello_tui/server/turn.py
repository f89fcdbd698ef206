"""Time-limited TURN credentials (the TURN REST API / coturn ``use-auth-secret``).

The operator gives the server the same shared secret as the TURN server;
each logged-in session gets ``username = "<expiry>:<opaque id>"`` and
``credential = base64(HMAC-SHA1(secret, username))``. The TURN server checks
the HMAC and the expiry itself, so nothing is stored. The opaque id is the
session id, never the account name (the TURN server's logs learn nothing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from hello_tui.signaling.protocol import IceServer


def turn_credentials(
    secret: bytes, urls: tuple[str, ...], user: str, now: float, ttl: int
) -> list[IceServer]:
    """ICE server entries valid for ``ttl`` seconds from ``now`` (empty without TURN)."""
    if not secret or not urls:
        return []
    username = f"{int(now) + ttl}:{user}"
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return [
        IceServer(urls=list(urls), username=username, credential=base64.b64encode(digest).decode())
    ]
