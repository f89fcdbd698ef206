"""Invite codes on Redis: minted by ``hello-tui serve invite --redis``, taken by
whichever instance a registration reaches, each exactly once (two instances
racing for one code: one wins), only digests stored, expiring with the code."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator

import aiohttp
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from hello_tui.server.app import create_app
from hello_tui.server.invites import digest
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore, mint_in_redis
from hello_tui.signaling import protocol as p
from tests.conftest import Result
from tests.server.conftest import FAST, Client
from tests.services.redis import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
async def two(redis_srv: RedisServer) -> AsyncIterator[tuple[str, list[str]]]:
    """(key prefix, the URLs of two invite-only instances sharing one Redis)."""
    prefix = f"i{time.monotonic_ns()}:"
    secret = secrets.token_bytes(32)
    servers = []
    for _ in range(2):
        settings = ServerSettings(
            **FAST, secret=secret, redis_url=redis_srv.url, registration="invite-only"
        )
        server = TestServer(create_app(settings, RedisStore(redis_srv.url, prefix=prefix)))
        await server.start_server()
        servers.append(server)
    yield prefix, [str(s.make_url("/ws")) for s in servers]
    for server in servers:
        await server.close()


async def _register(http: aiohttp.ClientSession, url: str, name: str, code: str) -> p.Message:
    client = Client(await http.ws_connect(url))
    await client.hello()
    await client.send(p.Register(name=name, public_key=client.public_key, invite=code, ref=1))
    reply = await client.recv()
    await client.close()
    return reply


async def test_a_code_works_once_across_instances(
    two: tuple[str, list[str]], redis_srv: RedisServer
) -> None:
    prefix, urls = two
    codes = await asyncio.to_thread(mint_in_redis, redis_srv.url, 3, 3600, prefix)
    r = aioredis.Redis.from_url(redis_srv.url)
    try:
        keys = sorted([k.decode() async for k in r.scan_iter(match=f"{prefix}invite:*")])
        assert keys == sorted(f"{prefix}invite:{digest(c)}" for c in codes)  # digests only
        for key in keys:
            assert 0 < await r.ttl(key) <= 3600
        async with aiohttp.ClientSession() as http:
            # Used on one instance, refused on the other.
            assert isinstance(await _register(http, urls[0], "ann@example.org", codes[0]), p.Ok)
            refused = await _register(http, urls[1], "bea@example.org", codes[0])
            assert isinstance(refused, p.Error) and refused.code == "invite-invalid"
            # Two instances racing for one code: exactly one registration.
            for code in codes[1:]:
                replies = await asyncio.gather(
                    _register(http, urls[0], f"x{code[:6]}@example.org", code),
                    _register(http, urls[1], f"y{code[:6]}@example.org", code),
                )
                assert sorted(type(m).__name__ for m in replies) == ["Error", "Ok"]
            bad = await _register(http, urls[1], "cat@example.org", "not-a-code")
            assert isinstance(bad, p.Error) and bad.code == "invite-invalid"
        assert [k async for k in r.scan_iter(match=f"{prefix}invite:*")] == []
    finally:
        await r.aclose()


def test_serve_invite_into_redis(cli: Callable[..., Result], redis_srv: RedisServer) -> None:
    result = cli("serve", "invite", "-n", "2", "--ttl", "1h", "--redis", redis_srv.url)
    assert result.code == 0, result.err
    codes = result.out.split()
    assert len(codes) == 2
    import redis

    r = redis.Redis.from_url(redis_srv.url)
    try:
        for code in codes:
            assert r.exists(f"hello:invite:{digest(code)}")
            assert code.encode() not in b"".join(r.keys("hello:invite:*"))
    finally:
        r.close()
