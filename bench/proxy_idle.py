"""Idle connections behind the proxy, one instance killed (issue 18's bar: 10k
spread evenly over three instances; kill one, every client signed in again
within 10 s).

Three real ``hello-tui serve`` processes on one redis-server behind a real
HAProxy running deploy/haproxy.cfg (tests/server/proxy.py). ``--clients``
real ``SignalingClient``\\ s (the client the TUI and CLI use: reconnect with
jittered backoff, log in again) register and log in through the proxy and
stay idle; the spread is read from the instances' own logs (the sessions each
one opened). Then instance 0 is killed with SIGKILL and the time until each
of its clients is logged in again elsewhere is measured.

Where the time goes: the CPU each process spent from the kill until the last
client was back (this bench's own clients included: they sign and handshake
too), each process's run-queue wait over that time (``/proc/PID/schedstat``:
runnable, no CPU free), and how many attempts the clients needed.

Past ~9,000 clients one HAProxy would need more than the 20,000 descriptors
this machine allows a process (two per proxied connection): ``--proxies 2``
(the default there) runs two HAProxy processes on the same ports, which the
kernel spreads new connections over (SO_REUSEPORT), as two proxy hosts behind
one address would be.

Run: ``.venv/bin/python bench/proxy_idle.py [--clients 3000] [--proxies N]``.
Exits 1 if a client does not come back, if it takes over 10 s, or if an
instance holds under 80 % of its even share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hello_tui.signaling.client import Disconnected, Reconnected, SignalingClient  # noqa: E402
from hello_tui.signaling.errors import SignalingClientError  # noqa: E402
from tests.server.instances import Fleet  # noqa: E402
from tests.server.proxy import SOURCE, free_port, haproxy  # noqa: E402
from tests.services.redis import redis_server  # noqa: E402

INSTANCES = 3
BAR_S = 10.0
SPREAD = 0.8  # each instance holds at least this share of an even split


def raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (200_000, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
            return
        except (ValueError, OSError):
            continue


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def waited_s(pid: int) -> float:
    """Seconds the process was runnable but had no CPU (run-queue wait)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def usage(pids: dict[str, int]) -> dict[str, tuple[float, float]]:
    out = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            out[name] = (cpu_s(pid), waited_s(pid))
    return out


def opened(log: Path) -> set[str]:
    """Session id prefixes an instance logged as opened."""
    return set(re.findall(r"session (\S+) open from", log.read_text()))


async def back(client: SignalingClient) -> tuple[float, float, int]:
    """When the client saw its connection drop, when it was logged in again
    (monotonic times), and in how many attempts."""
    dropped = 0.0
    while True:
        event = await client.next_event()
        if isinstance(event, Disconnected) and not dropped:
            dropped = time.monotonic()
        if isinstance(event, Reconnected):
            if event.login_error is not None:
                raise RuntimeError(f"login again failed: {event.login_error}")
            return dropped, time.monotonic(), event.attempts


async def run(n: int, proxies: int) -> int:
    raise_nofile()
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    maxconn = min(n + 500, (limit - 200) // 2)
    if proxies * maxconn < n:
        print(f"{n} clients need {n // maxconn + 1} proxies at {limit} descriptors each")
        return 1
    with redis_server() as redis, tempfile.TemporaryDirectory(prefix="hello-idle-") as name:
        tmp = Path(name)
        async with aiohttp.ClientSession() as http:
            fleet = Fleet(tmp, redis.url, http)
            clients: list[SignalingClient] = []
            try:
                port, tls_port = free_port(), free_port()
                own = ("--trusted-proxy", SOURCE, "--log-level", "info", "--max-connections", "0",
                       "--public-url", f"http://127.0.0.1:{port}")  # fmt: skip
                instances = list(await asyncio.gather(*(fleet.start(*own) for _ in range(3))))
                urls = [i.url for i in instances]
                async with contextlib.AsyncExitStack() as stack:
                    fronts = [
                        await stack.enter_async_context(
                            haproxy(tmp, urls, port, tls_port, maxconn, name=str(k))
                        )
                        for k in range(proxies)
                    ]
                    proxy = fronts[0]
                    sem = asyncio.Semaphore(50)
                    key = Ed25519PrivateKey.generate()  # signing is the client's cost
                    setup_errors: Counter[str] = Counter()

                    async def one(i: int) -> SignalingClient:
                        name = f"idle{i}@bench.example"
                        registered = False
                        async with sem:
                            for attempt in range(5):  # setup, not measured: a loaded
                                client = SignalingClient(heartbeat=None)  # machine may
                                try:  # time a connect or a hello out
                                    await client.connect(proxy.url)
                                    if not registered:
                                        await client.register(name, key)
                                        registered = True
                                    await client.login(name, key)
                                    break
                                except SignalingClientError as exc:
                                    await client.close()
                                    setup_errors[type(exc).__name__] += 1
                                    # registered, but the answer timed out
                                    registered |= getattr(exc, "code", "") == "name-taken"
                                    if attempt == 4:
                                        raise
                        clients.append(client)
                        return client

                    t0 = time.monotonic()
                    try:
                        await asyncio.gather(*(one(i) for i in range(n)))
                    except SignalingClientError:
                        for log in [i.log for i in instances] + sorted(tmp.glob("haproxy*.log")):
                            lines = log.read_text(errors="replace").splitlines()
                            print(f"--- {log.name}:", *lines[-8:], sep="\n  ")
                        raise
                    took = time.monotonic() - t0
                    print(f"{n} clients logged in through {proxies} proxies in {took:.1f} s; "
                          f"retried: {dict(setup_errors)}")  # fmt: skip
                    sessions = [opened(i.log) for i in instances]
                    share = [
                        sum(1 for c in clients if (c.session or "")[:6] in s) for s in sessions
                    ]
                    even = n / INSTANCES
                    spread_ok = all(k >= SPREAD * even for k in share) and sum(share) == n
                    print(f"spread over the instances: {share} (even: {even:.0f} each)")

                    victim = instances[0]
                    on_victim = [c for c in clients if (c.session or "")[:6] in sessions[0]]
                    waits = [asyncio.create_task(back(c)) for c in on_victim]
                    pids = {"bench (clients)": os.getpid(), "redis": redis.process.pid}
                    pids |= {f"instance {k}": i.proc.pid for k, i in enumerate(instances)}
                    pids |= {f"haproxy {k}": f.pid for k, f in enumerate(fronts)}
                    before = usage(pids)
                    killed = time.monotonic()
                    await victim.kill()
                    done, pending = await asyncio.wait(waits, timeout=60)
                    wave = time.monotonic() - killed
                    after = usage(pids)
                    results = [t.result() for t in done if t.exception() is None]
                    times = sorted(t - killed for _, t, _ in results)
                    drops = sorted(d - killed for d, _, _ in results if d)
                    attempts = Counter(a for _, _, a in results)
                    print(f"load average {os.getloadavg()[0]:.1f}; over the {wave:.2f} s wave:")
                    for who, (cpu, wait) in after.items():
                        if who in before:
                            used, queued = cpu - before[who][0], wait - before[who][1]
                            print(f"  {who:16} CPU {used:6.2f} s ({100 * used / wave:4.0f} %), "
                                  f"run-queue wait {queued:6.2f} s")  # fmt: skip
                    print(f"attempts to get back: {dict(sorted(attempts.items()))}")
                    failed = len(pending) + sum(1 for t in done if t.exception() is not None)
                    for task in pending:
                        task.cancel()
                    # Really served: every one of them can act as its account again.
                    acted = 0
                    for client in on_victim:
                        try:
                            await client.room_list()
                            acted += 1
                        except Exception:
                            pass
                    if drops:
                        print(
                            f"drop seen by the clients: median "
                            f"{statistics.median(drops):.2f} s, last {drops[-1]:.2f} s"
                        )
                    if times:
                        p95 = times[int(0.95 * (len(times) - 1))]
                        print(
                            f"kill -9 of instance 0: {len(times)}/{len(on_victim)} of its "
                            f"clients logged in again elsewhere; median "
                            f"{statistics.median(times):.2f} s, p95 {p95:.2f} s, last "
                            f"{times[-1]:.2f} s (bar {BAR_S:g} s); {acted} listed rooms"
                        )
                    ok = (
                        spread_ok
                        and not failed
                        and bool(times)
                        and times[-1] <= BAR_S
                        and acted == len(on_victim)
                    )
                    # A survivor reaps the dead instance (server/reaper.py, 15 s by default).
                    reaped: list[str] = []
                    for _ in range(300):
                        reaped = [
                            line.split("WARNING hello_tui.server: ")[-1]
                            for i in instances[1:]
                            for line in i.log.read_text().splitlines()
                            if "is dead: forgot" in line
                        ]
                        if reaped:
                            break
                        await asyncio.sleep(0.1)
                    print(f"reaped: {reaped or 'not within 30 s'}")
                    print("PASS" if ok else "FAIL")
                    return 0 if ok else 1
            finally:
                await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
                await fleet.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=3000, help="idle clients (3000)")
    ap.add_argument(
        "--proxies", type=int, help="HAProxy processes on the same port (1; 2 past 9,000 clients)"
    )
    args = ap.parse_args(argv)
    proxies = args.proxies or (1 if args.clients <= 9000 else 2)
    return asyncio.run(run(args.clients, proxies))


if __name__ == "__main__":
    sys.exit(main())
