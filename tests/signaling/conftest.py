"""A real hello-tui server on 127.0.0.1 for the client tests (nothing mocked).

The server is the server engineer's app factory under aiohttp's ``TestServer``.
A :class:`Server` can be stopped and started again on the same port with the
same store and secret, which is what a real restart of a persistent server
looks like to a client.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestServer

from hello_tui.server.app import HUB, create_app
from hello_tui.server.hub import Hub
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store import MemoryStore
from hello_tui.signaling.client import Event, ReconnectPolicy, SignalingClient

E = TypeVar("E")
WAIT = 5.0  # bound on waiting for an event; tests finish far sooner
FAST = {
    "supervisory_timeout": 2.0,
    "ring_timeout": 2.0,
    "connection_timeout": 2.0,
    "rate": 0.0,
    "max_connections_per_ip": 0,
}


@dataclass
class Server:
    """A startable, stoppable, restartable in-process server."""

    settings: ServerSettings
    store: MemoryStore = field(default_factory=MemoryStore)
    port: int = 0
    _server: TestServer | None = None

    async def start(self) -> None:
        server = TestServer(create_app(self.settings, self.store), host="127.0.0.1", port=self.port)
        await server.start_server()
        self._server = server
        self.port = server.port or 0

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

    @property
    def hub(self) -> Hub:
        assert self._server is not None, "server not running"
        return self._server.app[HUB]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[Server] = []

    async def make(**overrides: Any) -> Server:
        settings = ServerSettings(**{**FAST, "secret": secrets.token_bytes(32), **overrides})
        server = Server(settings)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[Server]]) -> Server:
    return await make_server()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Awaitable[SignalingClient]]]:
    """Clients connected to a server URL; all closed at the end."""
    clients: list[SignalingClient] = []

    async def make(url: str, **kwargs: Any) -> SignalingClient:
        kwargs.setdefault("reconnect", ReconnectPolicy(base=0.05, cap=0.5))
        kwargs.setdefault("request_timeout", WAIT)
        client = SignalingClient(**kwargs)
        clients.append(client)
        await client.connect(url)
        return client

    yield make
    for client in clients:
        await client.close()


async def wait_event(client: SignalingClient, kind: type[E], timeout: float = WAIT) -> E:
    """The first event of ``kind`` (others before it are skipped), within ``timeout``."""
    skipped: list[Event] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                ev = await client.next_event()
                if isinstance(ev, kind):
                    return ev
                skipped.append(ev)
    except TimeoutError:
        raise AssertionError(f"no {kind.__name__} within {timeout} s; saw {skipped!r}") from None
