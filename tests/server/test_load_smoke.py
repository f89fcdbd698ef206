"""The load benchmark's core scenario at tiny scale, so ``bench/server_load.py`` cannot rot.

Idle authenticated connections, then full call exchanges (closed and open
loop) with realistic SDPs, every message checked by the bench's own
verifier. Asserts zero lost or misrouted messages; no timing is asserted.
"""

from __future__ import annotations

import pytest

from tests.benches import load_bench
from tests.server.conftest import StartServer

bench = load_bench("server_load.py")


def test_sdps_are_realistic_and_unique() -> None:
    sdps = bench.make_sdps(20)
    flat = [s for pair in sdps for s in pair]
    assert len(set(flat)) == len(flat)
    assert all(3000 <= len(s) <= 5200 and s.startswith("v=0\r\n") for s in flat)


@pytest.mark.parametrize("generator", ["machine", "native", "lean", "aiohttp"])
async def test_bench_scenario_loses_and_misroutes_nothing(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch, generator: str
) -> None:
    # The callback-driven raw-frame client (the default), the same frames through a
    # task per side (--generator lean) and aiohttp's (--generator aiohttp) alike.
    monkeypatch.setattr(bench, "LEAN", generator != "aiohttp")
    monkeypatch.setattr(bench, "MACHINE", generator in ("machine", "native"))
    monkeypatch.setattr(bench, "NATIVE", generator == "native")
    # Real timers (not the tests' 0.3 s): a slow CI machine must not end calls early.
    srv = await start_server(
        supervisory_timeout=10.0,
        ring_timeout=30.0,
        connection_timeout=10.0,
        registrations_per_network=0,  # one address plays every user, as in the bench
        pending_calls_per_network=0,
    )
    url = str(srv.server.make_url("")).rstrip("/")
    keys = bench.Keys(2)
    async with bench.http_session() as http:
        idle, idle_conns = await bench.run_idle(http, url, 50, keys, settle=0.0)
        assert idle.connected == 50 and idle.unexpected == 0
        assert len(srv.hub.sessions) == 50

        pairs = await bench.open_pairs(http, url, url, 5, keys)
        assert isinstance(pairs[0].caller, bench.RawConn) == (generator != "aiohttp")
        for rate in (0.0, 500.0):  # closed loop, then open loop
            stats, _, _ = await bench.run_calls(pairs, 50, rate)
            assert (stats.lost, stats.misrouted, stats.failed) == (0, 0, 0), stats.errors
            assert stats.done == 50
            assert stats.verified == 50 * bench.MSGS_PER_EXCHANGE
            assert len(stats.latencies_ms) == 50
            assert await bench.leftovers(pairs, wait=0.05) == 0

        await bench.close_all(idle_conns)
        await bench.close_all([c for pair in pairs for c in (pair.caller, pair.callee)])

    metrics = srv.hub.metrics
    assert metrics.calls_total == 100 and metrics.calls_active == 0
    assert dict(metrics.calls_ended) == {"hangup": 100}
    assert not metrics.errors
    assert not [k for k in (await srv.store.dump())["records"] if k.startswith("call:")]


@pytest.mark.parametrize("generator", ["machine", "native", "lean"])
async def test_bench_counts_a_misrouted_call(
    start_server: StartServer, monkeypatch: pytest.MonkeyPatch, generator: str
) -> None:
    # Two callees' names swapped in the generator's books: each caller dials the
    # other pair's callee, whose incoming names the wrong caller.
    monkeypatch.setattr(bench, "LEAN", True)
    monkeypatch.setattr(bench, "MACHINE", generator in ("machine", "native"))
    monkeypatch.setattr(bench, "NATIVE", generator == "native")
    srv = await start_server(registrations_per_network=0, pending_calls_per_network=0)
    url = str(srv.server.make_url("")).rstrip("/")
    async with bench.http_session() as http:
        pairs = await bench.open_pairs(http, url, url, 2, bench.Keys(2))
        a, b = pairs[0].callee, pairs[1].callee
        a.name, b.name = b.name, a.name
        stats, _, _ = await bench.run_calls(pairs, 4, 0.0)
        assert stats.misrouted >= 1 and stats.done == 0, stats
        assert stats.errors and "Misrouted" in stats.errors[0]
        await bench.close_all([c for pair in pairs for c in (pair.caller, pair.callee)])


class _Transport:
    """What RawWebSocket writes, for the parser test (no socket)."""

    def __init__(self) -> None:
        self.out: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.out.append(data)

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def test_raw_frames_parse_across_any_split_and_pings_are_answered() -> None:
    rawws = load_bench("rawws.py")
    payloads = [b"x" * 5, b"y" * 300, b"z" * 70_000, b'{"type":"ok"}']

    def server_frame(data: bytes, opcode: int = 1) -> bytes:  # unmasked, as a server sends
        n = len(data)
        if n < 126:
            return bytes([0x80 | opcode, n]) + data
        if n < 1 << 16:
            return bytes([0x80 | opcode, 126]) + n.to_bytes(2, "big") + data
        return bytes([0x80 | opcode, 127]) + n.to_bytes(8, "big") + data

    stream = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    stream += server_frame(payloads[0]) + server_frame(payloads[1]) + server_frame(b"hi", 9)
    stream += server_frame(payloads[2]) + server_frame(payloads[3])
    for step in (1, 3, 7, 1000, len(stream)):
        ws = rawws.RawWebSocket()
        transport = _Transport()
        ws.connection_made(transport)
        for i in range(0, len(stream), step):
            ws.data_received(stream[i : i + step])
        assert [await ws.recv() for _ in payloads] == payloads
        assert ws.pending() == 0
        # The ping's pong: FIN + opcode 10, masked (zero key), the same payload.
        assert transport.out == [bytes([0x8A, 0x80 | 2]) + b"\0\0\0\0" + b"hi"]


def test_raw_client_frames_are_masked_with_their_lengths() -> None:
    rawws = load_bench("rawws.py")
    for n, head in ((5, b"\x81\x85"), (300, b"\x81\xfe\x01\x2c"), (70_000, b"\x81\xff")):
        data = rawws.frame(b"a" * n)
        assert data.startswith(head)
        assert data.endswith(b"\0\0\0\0" + b"a" * n)
        assert len(data) == n + 4 + {5: 2, 300: 4, 70_000: 10}[n]
