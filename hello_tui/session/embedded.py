"""The embedded default: with no ``[server] url``, a server in this process.

On a fresh machine ``hello-tui call echo`` must just work, with nothing to
configure and nothing sent anywhere: the client starts the rendezvous server
(``create_app``) on 127.0.0.1 with an ephemeral port, plus the echo peer, and
talks to it over loopback. Only peers on this machine can reach it, so every
call through it gathers ICE candidates on loopback only (:data:`LOOPBACK`).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from hello_tui.echo.bot import EchoBot
from hello_tui.echo.service import prepare_echo
from hello_tui.server.app import create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.session.options import LOOPBACK

__all__ = ["LOOPBACK", "Embedded", "embedded_server"]


@dataclass(frozen=True)
class Embedded:
    url: str  # ws://127.0.0.1:PORT/ws
    echo: EchoBot | None


@contextlib.asynccontextmanager
async def embedded_server(*, echo: bool = True) -> AsyncIterator[Embedded]:
    """Run a server (and the echo peer) on 127.0.0.1 for the block's duration."""
    settings = ServerSettings(host="127.0.0.1", port=0, max_connections_per_ip=0)
    key = None
    if echo:
        settings, key = prepare_echo(settings)
    runner = web.AppRunner(create_app(settings), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    bot: EchoBot | None = None
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"ws://{host}:{port}/ws"
        if echo:
            bot = EchoBot(url, key, host_addresses=LOOPBACK)
            await bot.start()
        yield Embedded(url, bot)
    finally:
        if bot is not None:
            await bot.close()
        await runner.cleanup()
