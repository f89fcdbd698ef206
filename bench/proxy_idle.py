"""Idle connections behind the proxy, one instance killed (issue 18's bar: 10k
spread evenly over three instances; kill one, every client signed in again
within 10 s).

Three real ``hello-tui serve`` processes on one redis-server behind a real
HAProxy running deploy/haproxy.cfg (tests/server/proxy.py). ``--clients``
lean clients on raw frames (``LeanClient``: the real client's jittered
backoff and growing attempt timeouts, at a fraction of its CPU; with
``--real-clients``, the ``SignalingClient`` the TUI and CLI use) register
and log in through the proxy and stay idle; the spread is read from the
instances' own logs (the sessions each one opened). Then instance 0 is
killed with SIGKILL and the time until each of its clients is logged in
again elsewhere is measured.

Where the time goes: the CPU each process spent from the kill until the last
client was back (this bench's own clients included: they sign and handshake
too), each process's run-queue wait over that time (``/proc/PID/schedstat``:
runnable, no CPU free), and how many attempts the clients needed.

Past ~9,000 clients one HAProxy would need more than the 20,000 descriptors
this machine allows a process (two per proxied connection): ``--proxies 2``
(the default there) runs two HAProxy processes on the same ports, which the
kernel spreads new connections over (SO_REUSEPORT), as two proxy hosts behind
one address would be.

Run: ``.venv/bin/python bench/proxy_idle.py [--clients 3000] [--proxies N]
[--real-clients] [--server-loop auto|uvloop|asyncio]``; bar 2 of issue 18:
``--clients 10000``.
Exits 1 if a client does not come back, if it takes over 10 s, or if an
instance holds under 80 % of its even share.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
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
sys.path.insert(0, str(ROOT / "bench"))

import rawws  # noqa: E402  (bench/rawws.py)

from hello_tui.signaling import protocol as p  # noqa: E402
from hello_tui.signaling.client import (  # noqa: E402
    Disconnected,
    Reconnected,
    ReconnectPolicy,
    SignalingClient,
)
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


async def back(client: SignalingClient | LeanClient) -> tuple[float, float, int]:
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


CONNECT_TIMEOUT = 5.0  # SignalingClient.connect_timeout
REQUEST_TIMEOUT = 10.0  # SignalingClient.request_timeout


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class LeanClient:
    """An idle signed-in client on raw frames (bench/rawws.py) that reconnects
    and signs in again on the real client's schedule: the same jittered
    backoff (``ReconnectPolicy``), each attempt given twice the last one's
    time (``SignalingClient._attempt_timeout``: 5, 10, 20, 40 s), the same
    hello / login / signed proof. What it leaves out is the real client's
    own CPU (an aiohttp session, a reader task, events): ~2.4 ms a re-login
    on the machine the servers share, which the bar is not about.
    ``--real-clients`` runs the real ones."""

    def __init__(self, url: str, name: str, key: Ed25519PrivateKey, rng: random.Random) -> None:
        self.url, self.name, self.key, self.rng = url, name, key, rng
        self.origin = p.canonical_origin(url)
        self.public = b64(key.public_key().public_bytes_raw())
        self.session = ""
        self.ws: rawws.RawWebSocket | None = None
        self.ref = 0
        self.events: asyncio.Queue[Disconnected | Reconnected] = asyncio.Queue()
        self._watch: asyncio.Task[None] | None = None
        self._closed = False
        self.registered = False
        self.failures: Counter[str] = Counter()  # failed reconnect attempts, by why

    async def _request(self, message: p.Message, kind: type[p.Message]) -> p.Message:
        assert self.ws is not None
        self.ref += 1
        message.ref = self.ref
        self.ws.send(p.encode(message))
        while True:  # anything unrelated (none is expected) is skipped
            reply = p.decode_server(await self.ws.recv())
            if reply.ref == self.ref:
                if isinstance(reply, p.Error):
                    raise SignalingClientError(f"{reply.code}: {reply.message}")
                if not isinstance(reply, kind):
                    raise SignalingClientError(f"expected {kind.__name__}, got {reply!r:.80}")
                return reply

    async def _open(self, timeout: float) -> None:
        """Connect, hello, welcome (within ``timeout``, as the real client's _open)."""
        async with asyncio.timeout(timeout):
            self.ws = await rawws.RawWebSocket.connect(self.url, timeout=timeout)
            welcome = await self._request(p.Hello(version=p.PROTOCOL_VERSION), p.Welcome)
        assert isinstance(welcome, p.Welcome)
        self.session = welcome.session

    async def _login(self) -> None:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            challenge = await self._request(p.Login(name=self.name), p.Challenge)
            assert isinstance(challenge, p.Challenge)
            signed = self.key.sign(p.login_payload(challenge.nonce, self.session, self.origin))
            await self._request(p.LoginProof(signature=b64(signed), origin=self.origin), p.LoggedIn)

    async def start(self, register: bool) -> None:
        try:
            await self._open(CONNECT_TIMEOUT)
            if register:
                await self._request(p.Register(name=self.name, public_key=self.public), p.Ok)
                self.registered = True
            await self._login()
        except (OSError, TimeoutError, rawws.Closed) as exc:
            raise SignalingClientError(f"setup: {exc!r}") from None
        self._watch = asyncio.create_task(self._watch_loop())

    async def _watch_loop(self) -> None:
        policy = ReconnectPolicy()
        while not self._closed:
            assert self.ws is not None
            with contextlib.suppress(rawws.Closed):
                while True:
                    await self.ws.recv()  # idle: nothing should come
            if self._closed:
                return
            self.events.put_nowait(Disconnected(self.ws.closed, will_retry=True))
            attempt = 0
            while not self._closed:
                await asyncio.sleep(policy.delay(attempt, self.rng))
                attempt += 1
                if self.ws is not None:
                    self.ws.abort()
                step = "connect/hello"
                try:
                    await self._open(CONNECT_TIMEOUT * 2 ** min(attempt - 1, 3))
                    step = "login"
                    await self._login()
                except (OSError, TimeoutError, rawws.Closed, SignalingClientError) as exc:
                    reason = str(exc) if isinstance(exc, rawws.Closed) else type(exc).__name__
                    self.failures[f"{step}: {reason[:60]}"] += 1
                    continue
                self.events.put_nowait(Reconnected(self.session, self.name, attempt, None))
                break

    async def next_event(self) -> Disconnected | Reconnected:
        return await self.events.get()

    async def room_list(self) -> list[p.RoomInfo]:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            rooms = await self._request(p.RoomList(), p.Rooms)
        assert isinstance(rooms, p.Rooms)
        return rooms.rooms

    async def close(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
        if self.ws is not None:
            await self.ws.close()


async def run(n: int, proxies: int, real: bool = False, loop: str = "auto") -> int:
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
            clients: list[SignalingClient | LeanClient] = []
            try:
                port, tls_port = free_port(), free_port()
                own = ("--trusted-proxy", SOURCE, "--log-level", "info", "--max-connections", "0",
                       "--public-url", f"http://127.0.0.1:{port}", "--loop", loop)  # fmt: skip
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

                    rng = random.Random(1)

                    async def one(i: int) -> SignalingClient | LeanClient:
                        name = f"idle{i}@bench.example"
                        registered = False
                        async with sem:
                            for attempt in range(5):  # setup, not measured: a loaded
                                client: SignalingClient | LeanClient  # machine may time
                                try:  # a connect or a hello out
                                    if not real:
                                        client = LeanClient(proxy.url, name, key, rng)
                                        await client.start(register=not registered)
                                        break
                                    client = SignalingClient(heartbeat=None)
                                    await client.connect(proxy.url)
                                    if not registered:
                                        await client.register(name, key)
                                        registered = True
                                    await client.login(name, key)
                                    break
                                except SignalingClientError as exc:
                                    await client.close()
                                    setup_errors[type(exc).__name__] += 1
                                    registered |= getattr(client, "registered", False)
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
                    kind = "real SignalingClients" if real else "lean clients (raw frames)"
                    print(f"{n} {kind} logged in through {proxies} proxies in {took:.1f} s; "
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
                    if not real:
                        why: Counter[str] = Counter()
                        for client in on_victim:
                            why.update(getattr(client, "failures", {}))
                        print(f"failed attempts, by why: {dict(why.most_common(8))}")
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
    ap.add_argument(
        "--real-clients",
        action="store_true",
        help="the TUI's SignalingClient for every client (the figures before session 6) "
        "instead of the lean raw-frame clients",
    )
    ap.add_argument(
        "--server-loop",
        default="auto",
        choices=["auto", "uvloop", "asyncio"],
        help="the instances' event loop (`serve --loop`; auto: uvloop when installed)",
    )
    args = ap.parse_args(argv)
    proxies = args.proxies or (1 if args.clients <= 9000 else 2)
    with contextlib.suppress(ImportError):  # the generator as lean as it can be
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(run(args.clients, proxies, args.real_clients, args.server_loop))


if __name__ == "__main__":
    sys.exit(main())
