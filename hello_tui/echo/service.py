"""Run the rendezvous server with the echo peer beside it (``hello-tui serve``).

The echo bot gets a fresh Ed25519 key at every start; the server is told the
key (``ServerSettings.service_keys``) and reserves the name, so nobody else
can register or log in as ``echo``. The bot then connects over loopback like
any client.

``hello-tui serve`` runs the bot in a child process (``python -m
hello_tui.echo``): the server process then never loads aiortc, PyAV or NumPy
(44 MB it would otherwise carry with 10,000 idle connections), and media
work cannot stall signaling. The child gets its key on stdin and exits when
that pipe closes, so it never outlives the server.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hello_tui.echo import ECHO_NAME
from hello_tui.server.accounts import with_service
from hello_tui.server.app import serve
from hello_tui.server.settings import ServerSettings
from hello_tui.signaling.identity import generate_key, public_key_b64

__all__ = ["ECHO_NAME", "local_url", "prepare_echo", "serve_with_echo"]

log = logging.getLogger(__name__)
EchoMode = Literal["process", "inline", "off"]


def prepare_echo(settings: ServerSettings) -> tuple[ServerSettings, Ed25519PrivateKey]:
    """A fresh echo key, and ``settings`` that reserve ``echo`` for it."""
    key = generate_key()
    return with_service(settings, ECHO_NAME, public_key_b64(key)), key


def local_url(url: str) -> str:
    """The server's own URL as a local client reaches it (0.0.0.0 → 127.0.0.1)."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))


async def serve_with_echo(
    settings: ServerSettings,
    ready: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
    *,
    echo: EchoMode = "process",
) -> None:
    """:func:`hello_tui.server.app.serve`, plus the echo peer once it listens."""
    if echo == "off":
        await serve(settings, ready=ready, stop=stop)
        return
    settings, key = prepare_echo(settings)
    starting: list[asyncio.Task[None]] = []
    closers: list[Callable[[], Awaitable[None]]] = []

    async def start_inline(url: str) -> None:
        from hello_tui.echo.bot import EchoBot

        bot = EchoBot(local_url(url), key)
        try:
            await bot.start()
        except Exception as exc:
            log.warning("the echo peer could not start: %s", exc)
            return
        closers.append(bot.close)
        log.info("echo peer ready")

    async def start_process(url: str) -> None:
        raw = key.private_bytes_raw()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hello_tui.echo", local_url(url),
            stdin=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdin is not None
        proc.stdin.write(base64.b64encode(raw) + b"\n")
        await proc.stdin.drain()

        async def close() -> None:
            if proc.stdin is not None:
                proc.stdin.close()  # the child exits when its stdin closes
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()

        closers.append(close)

    def on_ready(url: str) -> None:
        ready(url)
        start = start_process if echo == "process" else start_inline
        starting.append(asyncio.get_running_loop().create_task(start(url)))

    try:
        await serve(settings, ready=on_ready, stop=stop)
    finally:
        for task in starting:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for close in closers:
            with contextlib.suppress(Exception):
                await close()
