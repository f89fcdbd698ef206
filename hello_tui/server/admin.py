"""Who may read ``/stats`` and ``/metrics``: the holder of the admin token.

The operator puts a token in a file only they can read and starts the server
with ``--admin-token-file PATH``; a monitor then sends
``Authorization: Bearer TOKEN``. Without a configured token both routes are
off (403 saying how to turn them on), so nothing about the server's use is
public by default. The token is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from aiohttp import web

from hello_tui.server.settings import check_private

MIN_TOKEN_BYTES = 16
ENABLE_HINT = "/stats and /metrics are off: start the server with --admin-token-file PATH"


def load_admin_token(path: str | os.PathLike[str]) -> bytes:
    """The token in ``path`` (surrounding whitespace removed); ValueError with one line."""
    target = Path(path).expanduser()
    try:
        check_private(target, "the admin token")
        token = target.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"{target}: cannot read the admin token: {exc.strerror}") from None
    if len(token) < MIN_TOKEN_BYTES:
        raise ValueError(
            f"{target}: the admin token is too short (need at least {MIN_TOKEN_BYTES} "
            "characters, e.g. from: head -c 24 /dev/urandom | base64)"
        )
    if any(b <= 0x20 or b >= 0x7F for b in token):
        raise ValueError(f"{target}: the admin token must be one line of printable ASCII")
    return token


def _same(given: bytes, token: bytes) -> bool:
    # Digests first: equal lengths, so even the token's length does not leak through timing.
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(token).digest())


def refusal(request: web.Request, token: bytes) -> web.Response | None:
    """None if ``request`` carries the admin token; else the 403 (none set) or 401 answer."""
    if not token:
        return web.json_response({"error": ENABLE_HINT}, status=403)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    given_bytes = given.strip().encode("utf-8", "surrogateescape")
    if scheme.lower() == "bearer" and _same(given_bytes, token):
        return None
    return web.json_response(
        {"error": "admin token required (Authorization: Bearer TOKEN)"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="hello-tui admin"'},
    )


__all__ = ["ENABLE_HINT", "load_admin_token", "refusal"]
