"""Ask a TURN server for one relay allocation (``hello-tui doctor``).

A call needs TURN when neither side can reach the other directly; a wrong
secret or a blocked port only shows up then, mid-call. This makes the same
request aiortc's ICE agent would (aioice's TURN client, the credentials the
server handed out after login) and releases the allocation at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class TurnCheckError(Exception):
    """The allocation failed; the message says how (one line)."""


class _Probe(asyncio.DatagramProtocol):
    """Receives nothing; tells when the allocation is released."""

    def __init__(self) -> None:
        self.released = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.released.done():
            self.released.set_result(None)


async def try_allocation(url: str, username: str, credential: str, timeout: float = 5.0) -> None:
    """Allocate a relay on the TURN server ``url`` and release it; raise TurnCheckError."""
    from aioice.turn import create_turn_endpoint
    from aiortc.rtcicetransport import parse_stun_turn_uri

    try:
        parsed = parse_stun_turn_uri(url)
    except ValueError as exc:
        raise TurnCheckError(f"{url!r}: {exc}") from None
    if parsed["scheme"] not in ("turn", "turns"):
        raise TurnCheckError(f"{url!r} is not a turn: or turns: URL")
    try:
        async with asyncio.timeout(timeout):
            transport, probe = await create_turn_endpoint(
                _Probe,
                server_addr=(parsed["host"], parsed["port"]),
                username=username or None,
                password=credential or None,
                ssl=parsed["scheme"] == "turns",
                transport=parsed["transport"],
            )
    except TimeoutError:
        raise TurnCheckError(f"no answer within {timeout:g} s") from None
    except Exception as exc:  # aioice raises TransactionFailed, OSError, ConnectionError...
        raise TurnCheckError(_describe(exc)) from None
    transport.close()  # deletes the allocation on the server
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await probe.released


def _describe(exc: Any) -> str:
    response = getattr(exc, "response", None)
    error = getattr(response, "attributes", {}).get("ERROR-CODE") if response else None
    if error:
        code, reason = error
        hint = " (wrong or expired credentials?)" if code == 401 else ""
        return f"refused: {code} {reason}{hint}"
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
