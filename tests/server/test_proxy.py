"""Three ``hello-tui serve`` instances on one Redis behind a real HAProxy.

- WebSockets spread over the instances; logins through the proxy (plain and
  TLS terminated at the proxy) are signed for the proxy's URL, which the
  instances know as their public URL.
- The client's address comes from X-Forwarded-For only when the peer is the
  configured proxy, is truncated before it is logged, and a header sent by
  anyone else is ignored (per-network connection caps prove which network
  each connection was counted under).
- An instance stopped (SIGTERM: drain) or killed (-9): every one of its
  clients is back, through the proxy, on another instance and logged in again.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl as ssl_
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import Disconnected, Reconnected, SignalingClient
from tests.server.conftest import Client
from tests.server.instances import Fleet, Instance
from tests.server.proxy import SOURCE, Proxy, free_port, haproxy
from tests.services.redis import RedisServer, redis_server

Stack = tuple[Fleet, list[Instance], Proxy]
StartStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
async def start_stack(redis_srv: RedisServer, tmp_path: Path) -> AsyncIterator[StartStack]:
    """``await start_stack(n, *flags)``: n instances trusting the proxy, HAProxy over them."""
    async with aiohttp.ClientSession() as http:
        fleet = Fleet(tmp_path, redis_srv.url, http)
        proxies: list[contextlib.AbstractAsyncContextManager[Proxy]] = []

        async def start(count: int, *flags: str) -> Stack:
            port, tls_port = free_port(), free_port()
            own = ("--trusted-proxy", SOURCE, "--log-level", "info",
                   "--public-url", f"http://127.0.0.1:{port}",
                   "--alias", f"https://127.0.0.1:{tls_port}")  # fmt: skip
            instances = list(
                await asyncio.gather(*(fleet.start(*own, *flags) for _ in range(count)))
            )
            cm = haproxy(tmp_path, [i.url for i in instances], port, tls_port)
            proxy = await cm.__aenter__()
            proxies.append(cm)
            return fleet, instances, proxy

        try:
            yield start
        finally:
            for cm in proxies:
                await cm.__aexit__(None, None, None)
            await fleet.stop()


async def connect(
    url: str,
    source: str,
    headers: dict[str, str] | None = None,
    ssl: ssl_.SSLContext | bool = True,
) -> tuple[aiohttp.ClientSession, Client]:
    """A protocol client whose TCP connection leaves from ``source``."""
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0), limit=0))
    try:
        ws = await http.ws_connect(url.replace("http", "ws", 1) + "/ws", headers=headers, ssl=ssl)
        client = Client(ws)
        await client.hello()
    except BaseException:
        await http.close()
        raise
    return http, client


def opened_from(log: Path) -> list[str]:
    """The (truncated) addresses an instance logged sessions opening from."""
    return re.findall(r"session \S+ open from (\S+)", log.read_text())


# ---------------------------------------------------------------- balancing, TLS, addresses


async def test_websockets_spread_and_logins_work_through_the_proxy(
    start_stack: StartStack,
) -> None:
    _, instances, proxy = await start_stack(3)
    sessions: list[tuple[aiohttp.ClientSession, Client]] = []
    try:
        for _ in range(12):
            sessions.append(await connect(proxy.url, "127.0.5.9"))
        for n, (_, client) in enumerate(sessions[:2]):
            await client.account(f"user{n}@example.org")  # signed for the proxy's URL
        # TLS terminated at the proxy: wss:// to HAProxy, plain HTTP behind it.
        trust = ssl_.create_default_context(cafile=str(proxy.cert))
        sessions.append(await connect(proxy.tls_url, "127.0.5.9", ssl=trust))
        tls_client = sessions[-1][1]
        assert tls_client.origin.startswith("https://")
        await tls_client.account("tls@example.org")
        await sessions[0][1].send(p.Call(to="tls@example.org", offer="v=0\r\n", ref=9))
        created = await sessions[0][1].expect(p.CallCreated, ref=9)
        await tls_client.expect(p.Incoming, call_id=created.call_id, caller="user0@example.org")

        per_instance = [opened_from(i.log) for i in instances]
        # leastconn over held connections: each instance has its share.
        assert all(len(opened) >= 3 for opened in per_instance), per_instance
        # The client's network, truncated: never the proxy's, never the raw address.
        assert {a for opened in per_instance for a in opened} == {"127.0.5.0/24"}
        for instance in instances:
            assert "127.0.5.9" not in instance.log.read_text()
    finally:
        for http, client in sessions:
            await client.close()
            await http.close()


async def test_forwarded_address_only_from_the_proxy(start_stack: StartStack) -> None:
    """One connection per network: the cap tells which network each connection
    was counted under."""
    _, (instance,), proxy = await start_stack(1, "--max-connections-per-ip", "1")
    held: list[tuple[aiohttp.ClientSession, Client]] = []
    try:
        # Through the proxy: two clients on two addresses are two networks...
        for source in ("127.0.5.9", "127.0.5.10"):
            held.append(await connect(proxy.url, source))
        # ...and a second connection from the first one is over its cap,
        # whatever X-Forwarded-For it sends (the proxy appends the real one).
        spoof = {"X-Forwarded-For": "198.51.100.7"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(proxy.url, "127.0.5.9", spoof)
        assert refused.value.status == 429

        # Straight to the instance, not from the proxy: the header is ignored,
        # so a second connection from the same address is refused too.
        held.append(await connect(instance.url, "127.0.7.1", spoof))
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(instance.url, "127.0.7.1", {"X-Forwarded-For": "198.51.100.8"})
        assert refused.value.status == 429

        opened = opened_from(instance.log)
        assert sorted(opened) == ["127.0.5.0/24", "127.0.5.0/24", "127.0.7.0/24"]
        text = instance.log.read_text()
        assert "198.51.100" not in text and "127.0.5.9" not in text
    finally:
        for http, client in held:
            await client.close()
            await http.close()


# ---------------------------------------------------------------- drain and loss


async def _signed_in(url: str, n: int) -> list[SignalingClient]:
    clients = []
    for i in range(n):
        client = SignalingClient()
        clients.append(client)
        await client.connect(url)
        key = Ed25519PrivateKey.generate()
        await client.register(f"drain{i}@example.org", key)
        await client.login(f"drain{i}@example.org", key)
    return clients


async def _back(client: SignalingClient) -> Reconnected:
    """The client's next Reconnected (skipping the reconnect notice and the drop)."""
    while True:
        event = await client.next_event()
        if isinstance(event, Reconnected):
            return event
        assert isinstance(event, (p.Reconnect, Disconnected)), event


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
async def test_clients_of_a_stopped_instance_sign_in_again_elsewhere(
    start_stack: StartStack, stop: str
) -> None:
    _, instances, proxy = await start_stack(3)
    clients = await _signed_in(proxy.url, 18)
    try:
        victim = instances[0]
        on_victim = [
            c for c in clients if f"session {(c.session or '')[:6]} open" in victim.log.read_text()
        ]  # type: ignore[index]
        assert on_victim, "leastconn put nobody on the first instance"
        started = time.monotonic()
        if stop == "SIGTERM":
            assert await victim.terminate() == 0
        else:
            await victim.kill()
        backs = await asyncio.wait_for(asyncio.gather(*(_back(c) for c in on_victim)), 60)
        took = time.monotonic() - started
        print(f"\n{stop}: {len(on_victim)} clients signed in again in {took:.2f} s")
        for client, back in zip(on_victim, backs, strict=True):
            assert back.login_error is None and back.name == client.name
            assert client.name is not None
        # They are really served: each can still act as its account.
        survivors = "".join(i.log.read_text() for i in instances[1:])
        for client in on_victim:
            assert f"session {(client.session or '')[:6]} open" in survivors
            await client.room_list()
        # The others never noticed.
        for client in clients:
            if client not in on_victim:
                assert client.is_connected and client.session is not None
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
