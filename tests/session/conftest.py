"""Session tests: a real server on loopback, and accounts registered where
the profile looks for them (the TUI tests' helpers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer

from tests.tui.conftest import register_tui_account, write_config

__all__ = ["register_tui_account", "write_config"]


@pytest.fixture
async def live_server() -> AsyncIterator[TestServer]:
    """A real rendezvous server on 127.0.0.1 (ephemeral port) that a test may stop."""
    from hello_tui.server.app import create_app
    from hello_tui.server.settings import ServerSettings

    srv = TestServer(create_app(ServerSettings(rate=0.0, max_connections_per_ip=0)),
                     host="127.0.0.1", port=0)  # fmt: skip
    await srv.start_server()
    yield srv
    await srv.close()


@pytest.fixture
def server(live_server: TestServer) -> str:
    return str(live_server.make_url("/ws"))
