"""TUI tests: the real app under Pilot, with real stores, a real server and real calls.

Every test runs in its own XDG directories (the autouse ``isolated_home``).
Waiting is on conditions (the screen shows X, the store holds Y), with a
timeout, never a bare sleep. Pilot's keys wait for the app to have handled them,
not for an idle CPU (the autouse ``quick_pilot``; tests/tui/pilot_keys.py).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from aiohttp.test_utils import TestServer

from hello_tui.config.paths import resolve_paths

from .pilot_keys import install as install_quick_pilot

T = 15.0  # generous bound for any single wait


@pytest.fixture(autouse=True)
def quick_pilot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key costs what the app needs to handle it (2 s each during a call before)."""
    install_quick_pilot(monkeypatch)


def write_config(data: dict[str, Any]) -> Path:
    path = resolve_paths().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


TEST_AUDIO = {"audio": {"input": "sine:440", "output": "null:"}}


async def wait_until(
    pilot: Any, predicate: Callable[[], object], timeout: float = T, what: str = ""
) -> None:
    """Let the app run until ``predicate()`` is true (fails after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await pilot.pause(0.05)


def visible_text(app: Any) -> str:
    """The text of every visible Static/Label/Digits/Option of the active screen."""
    from textual.widgets import Label, OptionList, Static

    parts: list[str] = []
    for widget in app.screen.query("*"):
        if not widget.display or not widget.is_mounted:
            continue
        if isinstance(widget, (Static, Label)):
            parts.append(str(widget.render()))
        elif isinstance(widget, OptionList):
            for i in range(widget.option_count):
                parts.append(str(widget.get_option_at_index(i).prompt))
    return "\n".join(parts)


def screen_text(app: Any) -> str:
    """The screen as drawn (what a user sees: cut, scrolled off and covered parts
    excluded), one line per terminal row, as ``export_screenshot`` renders it."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      record=True, legacy_windows=False, safe_box=False)  # fmt: skip
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text()


@dataclass
class RunningServer:
    url: str  # ws://127.0.0.1:PORT/ws
    telemetry: Any  # its TelemetryAggregator: what /telemetry and /feedback received


@pytest.fixture
async def server_app() -> AsyncIterator[RunningServer]:
    """A real rendezvous server on 127.0.0.1 (an ephemeral port), with its
    telemetry aggregator (to assert on what it received)."""
    from hello_tui.server.app import create_app
    from hello_tui.server.settings import ServerSettings
    from hello_tui.server.telemetry import TelemetryAggregator

    settings = ServerSettings(rate=0.0, max_connections_per_ip=0)
    telemetry = TelemetryAggregator()
    srv = TestServer(create_app(settings, telemetry=telemetry), host="127.0.0.1", port=0)
    await srv.start_server()
    yield RunningServer(str(srv.make_url("/ws")), telemetry)
    await srv.close()


@pytest.fixture
async def server(server_app: RunningServer) -> AsyncIterator[str]:
    """The real server's ws URL."""
    yield server_app.url


Peer = Callable[[str], Awaitable[Any]]


@pytest.fixture
async def peers(server: str, tmp_path: Path) -> AsyncIterator[Peer]:
    """Scripted peers: ``phone = await peer("bob@example.org")`` registers, logs in
    and returns a started :class:`Phone` (``sine:440`` in, ``null:`` out)."""
    from hello_tui.call.engine import CallOptions, Phone
    from hello_tui.call.identity_proof import Identity
    from hello_tui.signaling.client import SignalingClient
    from hello_tui.signaling.identity import generate_key

    made: list[tuple[Any, Any]] = []

    async def make(name: str) -> Any:
        client = SignalingClient(reconnect=None)
        await client.connect(server)
        key = generate_key()
        await client.register(name, key)
        await client.login(name, key)
        options = CallOptions(
            audio_in="sine:440",
            audio_out="null:",
            host_addresses=("127.0.0.1",),
            identity=Identity(name, key),  # signs its SDP, as a real client does
        )
        phone = Phone(client, options)
        phone.start()
        made.append((phone, client))
        return phone

    yield make
    for phone, client in made:
        await phone.close()
        await client.close()


async def register_tui_account(server: str, name: str) -> dict[str, Any]:
    """Register ``name`` with a key saved where the TUI's profile looks for it;
    returns the config sections that make the TUI sign in on ``server``."""
    from hello_tui.signaling.client import SignalingClient
    from hello_tui.signaling.identity import generate_key, save_key

    paths = resolve_paths()
    key = generate_key()
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    save_key(paths.data_dir / "account.key", key)
    async with SignalingClient(reconnect=None) as client:
        await client.connect(server)
        await client.register(name, key)
    return {"server": {"url": server}, "account": {"name": name}}
