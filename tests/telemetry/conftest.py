"""A real server (create_app on 127.0.0.1:0) that also records every telemetry
body it received, byte for byte, so tests can compare them with what the
client says it sent. Reuses the call tests' Env (real phones, real aiortc)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hello_tui.server.app import create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.server.telemetry import TelemetryAggregator
from tests.call.conftest import FAST, Env

TELEMETRY_PATHS = ("/telemetry", "/feedback", "/crash")


@dataclass
class TelServer:
    env: Env
    base: str  # http://127.0.0.1:PORT
    aggregator: TelemetryAggregator
    received: list[tuple[str, bytes]] = field(default_factory=list)  # (path, raw body)
    refuse: int | None = None  # answer telemetry posts with this status (a sick server)

    def bodies(self, path: str = "/telemetry") -> list[bytes]:
        return [b for p, b in self.received if p == path]


@pytest.fixture
async def tel_server(tmp_path: Path) -> AsyncIterator[TelServer]:
    aggregator = TelemetryAggregator()
    app = create_app(ServerSettings(**FAST), telemetry=aggregator)
    holder: dict[str, TelServer] = {}

    @web.middleware
    async def record(request: web.Request, handler: Callable[..., Awaitable[Any]]) -> Any:
        if request.method == "POST" and request.path in TELEMETRY_PATHS:
            server = holder["s"]
            if server.refuse is not None:
                return web.json_response({"error": "unavailable"}, status=server.refuse)
            server.received.append((request.path, await request.read()))
        return await handler(request)

    app.middlewares.append(record)
    srv = TestServer(app, host="127.0.0.1", port=0)
    await srv.start_server()
    env = Env(str(srv.make_url("/ws")), tmp_path)
    server = TelServer(env, str(srv.make_url("")).rstrip("/"), aggregator)
    holder["s"] = server
    yield server
    for phone in env.phones:
        await phone.close()
    for client in env.clients:
        await client.close()
    for history in env.histories:
        history.close()
    await srv.close()
