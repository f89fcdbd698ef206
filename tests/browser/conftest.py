"""A real browser (Debian's Chromium, headless) against the real server and real peers.

The server is the real aiohttp app on 127.0.0.1 (an ephemeral port) with a
:class:`FakeClock` store, so a room can expire without sleeping. Terminal
peers are the real call engine (:class:`Phone`, aiortc, ICE on 127.0.0.1).
The browser is ``/usr/bin/chromium`` driven by Playwright for Python
(``executable_path``: no browser is ever downloaded), with a fresh profile,
no background networking, and fake media devices: its microphone is
Chromium's built-in beeping source. It only ever opens 127.0.0.1 URLs.

Chromium missing is a failure, not a skip: ``./dev.sh test`` installs it.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from hello_tui.call.engine import CallOptions, Phone
from hello_tui.server.app import HUB, TELEMETRY, create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store import MemoryStore
from hello_tui.server.telemetry import TelemetryAggregator
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.roomcrypt import encode_key, encrypt_name, new_room_key
from tests.server.conftest import FakeClock

CHROMIUM = "/usr/bin/chromium"
LOOPBACK = ("127.0.0.1",)
T = 15.0  # generous timeout for any single wait
HOW_TO_INSTALL = (
    "the browser tests need Debian's chromium and chromium-driver: run ./dev.sh test "
    "(it installs them), or: sudo apt-get install chromium chromium-driver"
)
# Never talk to anything but loopback: no background fetches, no component
# updates, no sync, a fresh profile (Playwright makes one per launch).
CHROMIUM_ARGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-default-apps",
    "--disable-domain-reliability",
    # WebRTC host candidates on 127.0.0.1, like the terminal peers' (tests only).
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]
FAKE_MEDIA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]


def chromium_path() -> str:
    path = shutil.which("chromium") or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if path is None:
        pytest.fail(f"Chromium is not installed: {HOW_TO_INSTALL}", pytrace=False)
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.fail(
            "Playwright for Python is missing: run ./dev.sh test (it installs the dev extra)",
            pytrace=False,
        )
    return path


@dataclass
class Room:
    token: str
    key: str
    name: str
    url: str  # with #k=KEY

    @property
    def bare_url(self) -> str:
        return self.url.split("#", 1)[0]


@dataclass
class Env:
    server: TestServer
    clock: FakeClock
    tmp: Path
    clients: list[SignalingClient] = field(default_factory=list)
    phones: list[Phone] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return str(self.server.make_url("/ws"))

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    @property
    def telemetry(self) -> TelemetryAggregator:
        return self.server.app[TELEMETRY]

    @property
    def store(self) -> MemoryStore:
        store = self.server.app[HUB].store
        assert isinstance(store, MemoryStore)
        return store

    async def client(self) -> SignalingClient:
        client = SignalingClient(reconnect=None)
        await client.connect(self.ws_url)
        self.clients.append(client)
        return client

    async def phone(self, **options: Any) -> Phone:
        client = await self.client()
        phone = Phone(client, CallOptions(host_addresses=LOOPBACK, **options))
        phone.start()
        self.phones.append(phone)
        return phone

    async def room(self, name: str = "Friday call", ttl: int | None = None) -> Room:
        """Create a room as a terminal client does (``hello-tui room create``)."""
        client = await self.client()
        key = new_room_key()
        created = await client.room_create(encrypt_name(key, name), ttl=ttl)
        text = encode_key(key)
        return Room(created.room.token, text, name, f"{created.url}#k={text}")


StartEnv = Callable[..., Awaitable[Env]]


@pytest.fixture
async def start_env(tmp_path: Path) -> AsyncIterator[StartEnv]:
    started: list[Env] = []

    async def start(**overrides: Any) -> Env:
        clock = FakeClock()
        settings = ServerSettings(**{"rate": 0.0, "max_connections_per_ip": 0, **overrides})
        app = create_app(settings, MemoryStore(clock=clock))
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        env = Env(server, clock, tmp_path)
        started.append(env)
        return env

    yield start
    for env in started:
        for phone in env.phones:
            await phone.close()
        for client in env.clients:
            await client.close()
        await env.server.close()


@pytest.fixture
async def env(start_env: StartEnv) -> Env:
    return await start_env()


@dataclass
class Browser:
    """One headless Chromium; pages opened with :meth:`page` record their console."""

    browser: Any
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    async def page(self, *, init_script: str | None = None, **context_options: Any) -> Any:
        context = await self.browser.new_context(**context_options)
        if init_script:
            await context.add_init_script(init_script)
        page = await context.new_page()
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))
        return page


LaunchBrowser = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def launch_browser() -> AsyncIterator[LaunchBrowser]:
    """``await launch_browser(fake_media=True, extra_args=[...])``."""
    path = chromium_path()
    from playwright.async_api import async_playwright

    manager = async_playwright()
    playwright = await manager.start()
    launched: list[Any] = []

    async def launch(*, fake_media: bool = True, extra_args: tuple[str, ...] = ()) -> Browser:
        args = [*CHROMIUM_ARGS, *(FAKE_MEDIA if fake_media else []), *extra_args]
        browser = await playwright.chromium.launch(
            executable_path=path, headless=True, chromium_sandbox=False, args=args
        )
        launched.append(browser)
        return Browser(browser)

    try:
        yield launch
    finally:
        for browser in launched:
            await browser.close()
        await manager.__aexit__()


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    caplog.set_level(logging.INFO, logger="hello_tui.server")
    return caplog


async def wait_phase(page: Any, phase: str, timeout: float = T) -> None:
    """Wait until the page's state machine is in ``phase`` (or fail with where it is)."""
    try:
        await page.wait_for_function(
            "phase => window.__hello && window.__hello.test.phase() === phase",
            arg=phase,
            timeout=timeout * 1000,
        )
    except Exception:
        state = await page.evaluate(
            "() => window.__hello ? [window.__hello.test.phase(), window.__hello.test.errorKind(),"
            " document.getElementById('error-text').textContent] : 'no __hello'"
        )
        raise AssertionError(f"page never reached {phase!r}: {state}") from None


async def join(page: Any, name: str = "Guest") -> None:
    """As a person does on the join screen: the name, then Join."""
    await wait_phase(page, "join")
    await page.fill("#display-name", name)
    await page.click("#join")
