"""A hostile server for tests: a WebSocket relay that forwards every text
frame both ways between its clients and a real hello-tui server, records what
the client sent, and keeps its upstream socket for the attacker's own use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

HTTP = web.AppKey("http", aiohttp.ClientSession)


@dataclass
class Relay:
    upstream_url: str  # the real server's /ws
    host_header: str | None = None  # what the relay claims as Host upstream
    server: TestServer | None = None
    seen: list[str] = field(default_factory=list)  # frames from the client, in order
    upstream: aiohttp.ClientWebSocketResponse | None = None  # the last client's
    finished: asyncio.Event = field(default_factory=asyncio.Event)  # client gone, pump stopped
    # A lying server: what the relay does to each frame on its way to the client.
    rewrite_down: Callable[[str], str] | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/")).rstrip("/")

    def sent(self, kind: str) -> bool:
        """Whether the client sent a message of type ``kind`` through the relay."""
        return any(f'"type":"{kind}"' in frame for frame in self.seen)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse()
        await client.prepare(request)
        headers = {"Host": self.host_header} if self.host_header else {}
        self.upstream = upstream = await request.app[HTTP].ws_connect(
            self.upstream_url, headers=headers
        )

        async def down() -> None:
            async for frame in upstream:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    rewrite = self.rewrite_down
                    await client.send_str(rewrite(frame.data) if rewrite else frame.data)
            await client.close()

        pump = asyncio.create_task(down())
        async for frame in client:
            if frame.type == aiohttp.WSMsgType.TEXT:
                self.seen.append(frame.data)
                await upstream.send_str(frame.data)
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        self.finished.set()
        return client


@contextlib.asynccontextmanager
async def relay_to(upstream_ws_url: str, host_header: str | None = None) -> AsyncIterator[Relay]:
    relay = Relay(upstream_ws_url, host_header)
    app = web.Application()
    app[HTTP] = http = aiohttp.ClientSession()
    app.router.add_get("/ws", relay.handle)
    relay.server = TestServer(app, host="127.0.0.1")
    await relay.server.start_server()
    try:
        yield relay
    finally:
        if relay.upstream is not None:
            await relay.upstream.close()
        await relay.server.close()
        await http.close()
