"""Random identifiers: room tokens, call and session ids, invite codes."""

from __future__ import annotations

import base64
import os

_POOL_BYTES = 4096
_pool = b""
_pos = 0


def _reset_pool() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


# A forked child must not hand out its parent's next ids.
os.register_at_fork(after_in_child=_reset_pool)


def _random(n: int) -> bytes:
    """``n`` bytes from the OS's CSPRNG, read 4 KB at a time: one ``getrandom``
    call per ~250 ids instead of one each (a call and a session id per call
    exchange; the syscall was ~3 % of an instance's CPU in the exchange bench)."""
    global _pool, _pos
    if _pos + n > len(_pool):
        _pool, _pos = os.urandom(max(_POOL_BYTES, n)), 0
    chunk = _pool[_pos : _pos + n]
    _pos += n
    return chunk


def new_id(nbytes: int = 16) -> str:
    """``nbytes`` random bytes as base64url (≥ 128 bits by default).

    Never starts with ``-``: these values are typed on command lines, where a
    leading dash reads as an option. Rejecting 1 draw in 64 costs < 0.03 bits.
    """
    while True:
        value = base64.urlsafe_b64encode(_random(nbytes)).rstrip(b"=").decode()
        if not value.startswith("-"):
            return value
