"""The load benchmark's core scenario at tiny scale, so ``bench/server_load.py`` cannot rot.

Idle authenticated connections, then full call exchanges (closed and open
loop) with realistic SDPs, every message checked by the bench's own
verifier. Asserts zero lost or misrouted messages; no timing is asserted.
"""

from __future__ import annotations

from tests.benches import load_bench
from tests.server.conftest import StartServer

bench = load_bench("server_load.py")


def test_sdps_are_realistic_and_unique() -> None:
    sdps = bench.make_sdps(20)
    flat = [s for pair in sdps for s in pair]
    assert len(set(flat)) == len(flat)
    assert all(3000 <= len(s) <= 5200 and s.startswith("v=0\r\n") for s in flat)


async def test_bench_scenario_loses_and_misroutes_nothing(start_server: StartServer) -> None:
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
