"""Hostile input to the server and from a hostile server (issue 10, item 7):
each gets an error or a refusal, never a crash or an unbounded buffer."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from hello_tui.server.settings import load_secret
from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import Disconnected, SignalingClient
from tests.conftest import Result
from tests.server.conftest import Running


async def test_deeply_nested_frame_gets_an_error_and_the_socket_stays(srv: Running) -> None:
    client = await srv.client()
    deep = '{"type":"room-list","ref":7,"x":' + "[" * 5000 + "]" * 5000 + "}"
    await client.send_raw(deep)
    error = await client.expect(p.Error, code="bad-message")
    assert "nested" in error.message or "unknown field" in error.message
    await client.send(p.RoomList(ref=8))  # still usable
    await client.expect(p.Rooms, ref=8)


@pytest.mark.parametrize("path", ["/__heartbeat__", "/stats", "/metrics", "/r/nope"])
async def test_every_response_forbids_content_sniffing(srv: Running, path: str) -> None:
    async with srv.http.get(srv.url(path)) as response:
        assert response.headers.get("X-Content-Type-Options") == "nosniff", path


def test_a_secret_others_can_read_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o644)
    with pytest.raises(ValueError, match=r"readable by other users \(mode 0644\).*chmod 600"):
        load_secret(secret)
    secret.chmod(0o600)
    assert load_secret(secret) == secret.read_bytes()


def test_serve_refuses_open_secrets_in_one_line(cli: Callable[..., Result], tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o640)
    r = cli("serve", "--port", "0", "--secret-file", str(secret), "--data-dir", str(tmp_path))
    assert r.code == 1 and r.err.count("\n") == 1 and "chmod 600" in r.err, r.err
    turn = tmp_path / "turn"
    turn.write_text("s3cret")
    turn.chmod(0o604)
    r = cli("serve", "--port", "0", "--ephemeral", "--turn-url", "turn:127.0.0.1",
            "--turn-secret-file", str(turn))  # fmt: skip
    assert r.code == 1 and "the TURN secret is readable by other users" in r.err, r.err


async def test_the_client_does_not_buffer_a_huge_frame_from_a_hostile_server() -> None:
    """A server that answers hello with a 64 MB frame: the client drops the
    connection instead of reading it all (max_msg_size)."""

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        hello = await sock.receive_str()
        ref = p.decode_client(hello).ref
        welcome = p.Welcome(version=p.PROTOCOL_VERSION, session="s" * 8, ref=ref)
        await sock.send_str(p.encode(welcome).decode())
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await sock.send_str('{"type":"ok","x":"' + "A" * (64 * 1024 * 1024) + '"}')
        await sock.receive()
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with SignalingClient(reconnect=None) as client:
            await client.connect(str(server.make_url("/")))
            event = await client.next_event(timeout=30)
            assert isinstance(event, Disconnected) and not event.will_retry
    finally:
        await server.close()
    await asyncio.sleep(0)
