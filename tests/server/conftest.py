"""A real server on 127.0.0.1 and a tiny protocol client for the server tests.

Nothing is mocked: every test talks to the real aiohttp app over a real
WebSocket. Timers are short (0.3 s) so the timeout endings run quickly; the
store's clock is a :class:`FakeClock` so room and record expiry can be
reached without sleeping.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hello_tui.server.app import HUB, create_app, runner_options
from hello_tui.server.hub import Hub
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store import MemoryStore
from hello_tui.signaling import protocol as p
from tests.services.redis import RedisServer, redis_server

if TYPE_CHECKING:  # instances.py imports this module's Client
    from tests.server.instances import Fleet

M = TypeVar("M", bound=p.Message)
TIMEOUT = 3.0
FAST = {
    "supervisory_timeout": 0.3,
    "ring_timeout": 0.3,
    "connection_timeout": 0.3,
    "rate": 0.0,  # no rate limit unless a test asks for one
    "max_connections_per_ip": 0,
}


class FakeClock:
    """Unix time that only moves when a test says so."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sdp(kind: str = "offer") -> str:
    """A fake SDP with a unique marker, to prove it is neither kept nor logged."""
    return f"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\na=x-{kind}:SDPMARKER{uuid.uuid4().hex}\r\n"


class UnexpectedMessage(AssertionError):
    pass


@dataclass
class Client:
    """One test connection speaking the protocol."""

    ws: aiohttp.ClientWebSocketResponse
    session: str = ""
    name: str = ""
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    _ref: int = 0

    def next_ref(self) -> int:
        self._ref += 1
        return self._ref

    @property
    def origin(self) -> str:
        """The server as this socket dialled it: what its logins are signed for."""
        return p.canonical_origin(str(self.ws._response.url))

    async def send(self, message: p.Message) -> None:
        await self.ws.send_str(p.encode(message).decode())

    async def send_raw(self, text: str) -> None:
        await self.ws.send_str(text)

    async def recv(self, timeout: float = TIMEOUT) -> p.Message:
        frame = await self.ws.receive(timeout=timeout)
        if frame.type != aiohttp.WSMsgType.TEXT:
            raise UnexpectedMessage(f"expected a text frame, got {frame.type!r} {frame.data!r}")
        return p.decode_server(frame.data)

    async def expect(self, kind: type[M], timeout: float = TIMEOUT, **fields: Any) -> M:
        """The next message must be ``kind`` with these field values."""
        message = await self.recv(timeout)
        if not isinstance(message, kind):
            raise UnexpectedMessage(f"expected {kind.__name__}, got {message!r}")
        for name, value in fields.items():
            got = getattr(message, name)
            assert got == value, f"{kind.__name__}.{name}: expected {value!r}, got {got!r}"
        return message

    async def error(self, code: str, ref: int | None = None) -> p.Error:
        return await self.expect(p.Error, code=code, **({"ref": ref} if ref is not None else {}))

    async def hello(self, version: int = 1) -> p.Welcome:
        """Version 1 unless asked: most tests are an older client's view, which the
        server must keep serving unchanged (version 2 only adds; tests of it say 2)."""
        await self.send(p.Hello(version=version, client="tests"))
        welcome = await self.expect(p.Welcome, version=version)
        self.session = welcome.session
        return welcome

    @property
    def public_key(self) -> str:
        return b64(self.key.public_key().public_bytes_raw())

    async def register(self, name: str, invite: str = "") -> None:
        ref = self.next_ref()
        await self.send(p.Register(name=name, public_key=self.public_key, invite=invite, ref=ref))
        await self.expect(p.Ok, ref=ref)

    async def login(self, name: str, key: Ed25519PrivateKey | None = None) -> p.Message:
        """Run the challenge-response; returns ``logged-in`` or the error."""
        await self.send(p.Login(name=name, ref=self.next_ref()))
        challenge = await self.expect(p.Challenge)
        payload = p.login_payload(challenge.nonce, self.session, self.origin)
        signature = (key or self.key).sign(payload)
        proof = p.LoginProof(signature=b64(signature), origin=self.origin, ref=self.next_ref())
        await self.send(proof)
        reply = await self.recv()
        if isinstance(reply, p.LoggedIn):
            self.name = name
        return reply

    async def account(self, name: str) -> None:
        """Register ``name`` and log in as it."""
        await self.register(name)
        assert isinstance(await self.login(name), p.LoggedIn)

    async def close(self) -> None:
        await self.ws.close()


@dataclass
class Running:
    """A started server and a way to open clients to it."""

    server: TestServer
    http: aiohttp.ClientSession
    clock: FakeClock
    clients: list[Client] = field(default_factory=list)

    @property
    def hub(self) -> Hub:
        return self.server.app[HUB]

    @property
    def store(self) -> MemoryStore:
        store = self.hub.store
        assert isinstance(store, MemoryStore)
        return store

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def raw(self, **kwargs: Any) -> Client:
        ws = await self.http.ws_connect(self.url("/ws"), **kwargs)
        client = Client(ws)
        self.clients.append(client)
        return client

    async def client(self, name: str | None = None) -> Client:
        """A connected client past hello; logged in as ``name`` if given."""
        client = await self.raw()
        await client.hello()
        if name is not None:
            await client.account(name)
        return client

    async def dump_text(self) -> str:
        return json.dumps(await self.store.dump())

    async def assert_forgotten(self, *needles: str) -> None:
        """Nothing the store holds contains any of ``needles``."""
        text = await self.dump_text()
        for needle in needles:
            assert needle not in text, f"store still holds {needle[:40]!r}"


StartServer = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start servers with FAST timers plus any ``ServerSettings`` overrides."""
    running: list[Running] = []
    http = aiohttp.ClientSession()

    async def start(**overrides: Any) -> Running:
        clock = FakeClock()
        settings = ServerSettings(**{**FAST, **overrides})
        server = TestServer(create_app(settings, MemoryStore(clock=clock)), host="127.0.0.1")
        await server.start_server(**runner_options(settings))
        run = Running(server, http, clock)
        running.append(run)
        return run

    yield start
    for run in running:
        for client in run.clients:
            await client.ws.close()
        await run.server.close()
    await http.close()


@pytest.fixture
async def srv(start_server: StartServer) -> Running:
    return await start_server()


# Real ``hello-tui serve`` instances on one real Redis (a module may define its
# own ``redis_srv``, e.g. one it restarts; ``fleet`` then uses that one).
@pytest.fixture
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
async def fleet(redis_srv: RedisServer, tmp_path: Path) -> AsyncIterator[Fleet]:
    from tests.server.instances import Fleet

    async with aiohttp.ClientSession() as http:
        fleet = Fleet(tmp_path, redis_srv.url, http)
        try:
            yield fleet
        finally:
            await fleet.stop()
