"""Sessions: hello first, strict frames, limits, HTTP endpoints, graceful shutdown."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, Running, StartServer, sdp


async def test_hello_welcome_and_order(srv: Running) -> None:
    client = await srv.raw()
    await client.send(p.RoomList(ref=1))
    await client.error("hello-first", ref=1)
    await client.send(p.Hello(version=99, ref=2))
    await client.error("version", ref=2)
    await client.send(p.Hello(version=p.PROTOCOL_VERSION, ref=3))
    welcome = await client.expect(p.Welcome, ref=3, version=p.PROTOCOL_VERSION)
    assert welcome.registration == "open" and len(welcome.session) >= 22
    await client.send(p.Hello(version=p.PROTOCOL_VERSION, ref=4))
    await client.error("not-allowed", ref=4)
    other = await srv.client()
    assert other.session != welcome.session


async def test_malformed_frames_get_errors_and_the_connection_stays(srv: Running) -> None:
    client = await srv.client()
    for frame in (
        "not json",
        "[]",
        '{"type": "nope"}',
        '{"no": "type"}',
        '{"type": "room-list", "extra": 1}',
        '{"type": "call", "to": 5, "offer": "x"}',
        '{"type": "room-join", "token": "short"}',
        '{"type": "welcome", "version": 1, "session": "aaaaaaaaaaaa"}',  # server-only type
        "\x00\xff",
    ):
        await client.send_raw(frame)
        await client.error("bad-message")
    await client.send_raw('{"type": "call", "to": "", "offer": "x", "ref": 42}')
    await client.error("bad-message", ref=42)  # the ref is salvaged from a bad request
    await client.ws.send_bytes(b'{"type": "room-list"}')
    await client.error("bad-message")
    await client.send_raw(json.dumps({"type": "room-list", "ref": 1, "pad": "x" * 70_000}))
    await client.error("too-big")
    await client.send(p.RoomList(ref=5))
    await client.expect(p.Rooms, ref=5)
    assert srv.hub.metrics.errors["bad-message"] == 11


async def test_frames_far_over_the_limit_close_with_1009(srv: Running) -> None:
    client = await srv.client()
    await client.send_raw("x" * (300 * 1024))
    frame = await client.ws.receive(timeout=3)
    assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert client.ws.close_code == 1009


async def test_rate_limit(start_server: StartServer) -> None:
    srv = await start_server(rate=1.0, burst=5)
    client = await srv.raw()
    await client.hello()
    for ref in range(10):
        await client.send(p.RoomList(ref=ref))
    replies = [await client.recv() for _ in range(10)]
    assert sum(isinstance(r, p.Rooms) for r in replies) == 4  # hello took one token
    assert [r.code for r in replies if isinstance(r, p.Error)] == ["rate-limited"] * 6


async def test_heartbeat_and_metrics(start_server: StartServer) -> None:
    srv = await start_server(admin_token=b"session-test-admin-token")
    async with srv.http.get(srv.url("/__heartbeat__")) as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"
    client = await srv.client()
    await client.send_raw("garbage")
    await client.error("bad-message")
    await client.send(p.RoomList(ref=1))
    await client.expect(p.Rooms, ref=1)
    admin = {"Authorization": "Bearer session-test-admin-token"}
    # What Prometheus asks for: OpenMetrics, read back with its strict parser.
    accept = {**admin, "Accept": "application/openmetrics-text; version=1.0.0"}
    async with srv.http.get(srv.url("/metrics"), headers=accept) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await resp.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    value = {
        s.name + str(sorted(s.labels.items())): s.value
        for f in families.values()
        for s in f.samples
    }
    assert families["hello_connections"].type == "counter"  # and _open is a gauge: no clash
    assert families["hello_connections_open"].type == "gauge"
    assert value["hello_connections_open[]"] == 1
    assert value["hello_errors_total[('code', 'bad-message')]"] == 1
    assert value["hello_messages_in_total[]"] == 3
    assert value["hello_calls_active[]"] == 0
    assert families["hello_signaling_handle_seconds"].type == "histogram"
    assert value["hello_signaling_handle_seconds_count[('type', 'room-list')]"] == 1
    assert "process_resident_memory_bytes" in families  # process metrics come along
    # The classic text format, for older scrapers, says the same.
    async with srv.http.get(srv.url("/metrics"), headers=admin) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert 'hello_errors_total{code="bad-message"} 1.0' in await resp.text()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("https://evil.example", False),
        ("https://friend.example", True),
        ("SAME", True),
    ],
)
async def test_origin_check(start_server: StartServer, origin: str | None, allowed: bool) -> None:
    srv = await start_server(allowed_origins=("https://friend.example",))
    if origin == "SAME":
        origin = f"http://{srv.server.host}:{srv.server.port}"
    headers = {"Origin": origin} if origin else {}
    if allowed:
        client = await srv.raw(headers=headers)
        await client.hello()
    else:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await srv.raw(headers=headers)
        assert info.value.status == 403


async def test_connection_cap_per_ip(start_server: StartServer) -> None:
    srv = await start_server(max_connections_per_ip=2)
    first = await srv.client()
    await srv.client()
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await srv.raw()
    assert info.value.status == 429
    await first.close()
    # The slot comes back once the server has processed the close.
    async with asyncio.timeout(3):
        while srv.hub.connections_by_network[srv.hub.quotas.network("127.0.0.1")] > 1:
            await asyncio.sleep(0)
    await srv.client()


async def test_shutdown_tells_clients_to_reconnect(start_server: StartServer) -> None:
    srv = await start_server()
    client = await srv.client("alice")
    await srv.server.close()
    reconnect = await client.expect(p.Reconnect)
    assert 500 <= reconnect.after_ms <= 3000
    frame = await client.ws.receive(timeout=3)
    assert (frame.type, frame.data) == (aiohttp.WSMsgType.CLOSE, 1012)  # service restart


async def test_peer_that_stops_answering_pings_is_dropped(start_server: StartServer) -> None:
    srv = await start_server(heartbeat=1.0)
    silent_ws = await srv.http.ws_connect(srv.url("/ws"), autoping=False)
    silent = Client(silent_ws)
    await silent.hello()
    await silent.account("silent@example.org")
    # The silent client never answers the server's pings: the server closes it.
    closed = False
    async with asyncio.timeout(10):
        while not closed:
            frame = await silent_ws.receive()
            closed = frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                    aiohttp.WSMsgType.CLOSING)  # fmt: skip
    # Calling it now finds no device: the dropped session left the device list.
    alive = await srv.client("alive@example.org")
    await alive.send(p.Call(to="silent@example.org", offer=sdp(), ref=1))
    created = await alive.expect(p.CallCreated)
    await alive.expect(p.CallEnded, call_id=created.call_id, reason="unavailable")
    await alive.send(p.RoomList(ref=2))
    await alive.expect(p.Rooms)
