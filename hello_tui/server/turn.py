"""Time-limited TURN credentials (the TURN REST API / coturn ``use-auth-secret``).

The operator gives the server the same shared secret as the TURN server;
each logged-in session gets ``username = "<expiry>:<opaque id>"`` and
``credential = base64(HMAC-SHA1(secret, username))``. The TURN server checks
the HMAC and the expiry itself, so nothing is stored. The opaque id is random
for each issue: neither the account nor the session (the TURN server's logs
cannot tie a relay to a signaling session, and a leaked credential names
nobody).

Credentials cannot be revoked (the TURN server holds no list to revoke
from), so what limits one that outlives a logout or an account deletion is
its lifetime: 2 hours by default (``turn_ttl``), long enough for a call set
up on it to keep refreshing its allocation, far from the 24 hours it was.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from hello_tui.signaling.protocol import IceServer


def turn_credentials(secret: bytes, urls: tuple[str, ...], now: float, ttl: int) -> list[IceServer]:
    """ICE server entries valid for ``ttl`` seconds from ``now`` (empty without TURN)."""
    if not secret or not urls:
        return []
    username = f"{int(now) + ttl}:{secrets.token_urlsafe(12)}"
    digest = hmac.new(secret, username.encode(), hashlib.sha1).digest()
    return [
        IceServer(urls=list(urls), username=username, credential=base64.b64encode(digest).decode())
    ]
