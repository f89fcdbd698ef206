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
import contextlib
import logging
import ssl
from urllib.parse import urlsplit, urlunsplit

from hello_tui.telemetry.store import Entry, TelemetryStore

__all__ = ["PATHS", "endpoint", "flush", "post_status"]

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


async def _post(entry: Entry) -> str:
    """``"sent"``, ``"refused"`` (4xx: drop) or ``"failed"`` (retry later)."""
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status = await post_status(entry.url, entry.body.encode())
    except (OSError, TimeoutError, ValueError) as exc:
        log.debug("telemetry: %s not sent: %s", entry.kind, type(exc).__name__)
        return "failed"
    if 200 <= status < 300:
        return "sent"
    return "refused" if 400 <= status < 500 else "failed"


async def post_status(url: str, body: bytes) -> int:
    """POST ``body`` (JSON) to an ``http(s)://`` URL on a connection of its own and
    return the status code: one HTTP/1.1 request on asyncio streams, so that sending
    a report loads no HTTP client library (aiohttp is the server's). TLS: the
    system's default context; no proxy, no redirect followed (a 3xx is "failed")."""
    parts = urlsplit(url)
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError(f"not an HTTP URL: {url!r}")
    secure = parts.scheme == "https"
    context = ssl.create_default_context() if secure else None
    reader, writer = await asyncio.open_connection(
        host, parts.port or (443 if secure else 80), ssl=context
    )
    try:
        authority = f"[{host}]" if ":" in host else host
        if parts.port:
            authority += f":{parts.port}"
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = (
            f"POST {target} HTTP/1.1\r\nHost: {authority}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("ascii") + body)
        await writer.drain()
        line = await reader.readline()  # "HTTP/1.1 200 OK"; bounded by the reader's 64 KiB
        version, _, rest = line.partition(b" ")
        if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
            raise ValueError("not an HTTP answer")
        # The rest of the answer is not needed (bounded read, then close).
        with contextlib.suppress(OSError):
            await reader.read(64 * 1024)
        return int(rest[:3])
    finally:
        writer.close()


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
    unsent = list(pending)
    try:
        for entry in pending:
            result = await _post(entry)
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
