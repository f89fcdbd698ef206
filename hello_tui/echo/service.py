"""Run the rendezvous server with the echo peer beside it (``hello-tui serve``).

The echo bot gets a fresh Ed25519 key at every start; the server is told the
key (``ServerSettings.service_keys``) and reserves the name, so nobody else
can register or log in as ``echo``. The bot then connects over loopback like
any client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from hello_tui.echo.bot import ECHO_NAME, EchoBot
from hello_tui.server.accounts import with_service
from hello_tui.server.app import serve
from hello_tui.server.settings import ServerSettings
from hello_tui.signaling.identity import generate_key, public_key_b64

__all__ = ["local_url", "prepare_echo", "serve_with_echo"]

log = logging.getLogger(__name__)


def prepare_echo(settings: ServerSettings) -> tuple[ServerSettings, object]:
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
    echo: bool = True,
) -> None:
    """:func:`hello_tui.server.app.serve`, plus the echo peer once it listens."""
    if not echo:
        await serve(settings, ready=ready, stop=stop)
        return
    settings, key = prepare_echo(settings)
    bots: list[EchoBot] = []
    starting: list[asyncio.Task[None]] = []

    async def start_bot(url: str) -> None:
        bot = EchoBot(local_url(url), key)
        try:
            await bot.start()
        except Exception as exc:
            log.warning("the echo peer could not start: %s", exc)
            return
        bots.append(bot)
        log.info("echo peer ready")

    def on_ready(url: str) -> None:
        ready(url)
        starting.append(asyncio.get_running_loop().create_task(start_bot(url)))

    try:
        await serve(settings, ready=on_ready, stop=stop)
    finally:
        for task in starting:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for bot in bots:
            await bot.close()
