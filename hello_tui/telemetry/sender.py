"""Posting queued bodies: in the background, bounded in time and in retries.

``flush`` takes every queued body, posts each to its endpoint and records
the ones the server accepted in the sent log (exactly the bytes posted).
A body the server refuses (4xx) is dropped: sending it again would not
help. A body that could not be delivered (server down, timeout, 5xx) goes
back to the queue for the next run, at most ``store.MAX_ATTEMPTS`` runs.
Cancelled half-way (the process is exiting), the unsent bodies are put back
as well. Nothing here ever raises into the caller.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit, urlunsplit

from hello_tui.telemetry.store import Entry, TelemetryStore

__all__ = ["PATHS", "endpoint", "flush"]

log = logging.getLogger(__name__)

PATHS = {"call": "/telemetry", "feedback": "/feedback", "crash": "/crash"}
REQUEST_TIMEOUT = 3.0  # seconds per body


def endpoint(server_url: str, kind: str) -> str:
    """The HTTP endpoint of ``kind`` on the server behind a signaling URL:
    ``ws://h:p/ws`` → ``http://h:p/telemetry`` (``wss`` → ``https``)."""
    parts = urlsplit(server_url.strip())
    scheme = {"ws": "http", "wss": "https", "http": "http", "https": "https"}.get(
        parts.scheme.lower()
    )
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a server URL: {server_url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/ws"):
        path = path[: -len("/ws")]
    return urlunsplit((scheme, parts.netloc, path + PATHS[kind], "", ""))


async def _post(session: object, entry: Entry) -> str:
    """``"sent"``, ``"refused"`` (4xx: drop) or ``"failed"`` (retry later)."""
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    try:
        async with session.post(
            entry.url,
            data=entry.body.encode(),
            headers={"Content-Type": "application/json"},
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        ) as response:
            await response.read()
            if 200 <= response.status < 300:
                return "sent"
            return "refused" if 400 <= response.status < 500 else "failed"
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.debug("telemetry: %s not sent: %s", entry.kind, type(exc).__name__)
        return "failed"


async def flush(store: TelemetryStore) -> dict[str, int]:
    """Send every queued body; returns counts by result. Never raises."""
    counts = {"sent": 0, "refused": 0, "failed": 0}
    try:
        pending = store.take_all()
    except Exception:
        log.debug("telemetry: cannot read the queue", exc_info=True)
        return counts
    if not pending:
        return counts
    import aiohttp

    unsent = list(pending)
    try:
        async with aiohttp.ClientSession() as session:
            for entry in pending:
                result = await _post(session, entry)
                counts[result] += 1
                if result == "sent":
                    store.record_sent(entry)
                if result != "failed":
                    unsent.remove(entry)
    except Exception:
        log.debug("telemetry: flush failed", exc_info=True)
    finally:
        try:
            store.put_back(unsent)
        except Exception:
            log.debug("telemetry: cannot requeue", exc_info=True)
    return counts


async def flush_for(store: TelemetryStore, seconds: float) -> dict[str, int] | None:
    """:func:`flush`, given at most ``seconds`` (unsent bodies stay queued)."""
    try:
        return await asyncio.wait_for(flush(store), seconds)
    except TimeoutError:
        return None
