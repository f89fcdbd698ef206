"""Load-test the rendezvous server against the bars of the server issue.

* 10,000 idle *authenticated* connections (hello, register, login challenge
  and Ed25519 proof each): the server's RSS (``VmRSS``) must stay under 250 MB.
* Full direct-call exchanges with 3–5 KB SDPs (call → call-created/incoming →
  ringing → accept → offer/accepted → answer → connected → hangup → call-ended
  on both sides): at least 500 exchanges/s with p99 under 50 ms, and zero
  messages lost or misrouted (every message is checked: type, call id, ref,
  caller name and SDP content).
* The same across two instances behind Redis (callers on A, callees on B).

The server is a real subprocess (``python -m hello_tui serve --port 0``)
pinned to core 0 with ``--rate 0 --max-connections-per-ip 0`` and the
per-network quotas off (one address plays every user); this load
generator pins itself to core 1. With ``--redis``, both instances and
redis-server share core 0. Exchanges are scheduled open-loop at a target
rate (latency is measured from the *scheduled* start, so queueing counts),
over a pool of ``--concurrency`` caller/callee pairs; a step-up sweep finds
the highest rate that keeps p99 under the bar, and a closed-loop run (every
pair back to back) finds the maximum throughput.

The generator speaks raw WebSocket frames (bench/rawws.py: the least CPU
taken from the servers' cores) to set up and log in; the timed exchanges run
in C (bench/loadgen.c via bench/native_gen.py, ``--generator native``, the
default since session 10: ~0.2 ms of CPU per exchange against ~0.35 for the
Python generators), every frame still checked against the expected message;
``--generator machine`` runs them in Python, ``--generator aiohttp`` with
aiohttp's client, as every figure before session 6 did. The servers run on uvloop when it is
installed (``--server-loop asyncio`` for the stdlib loop); ``--loop-ab`` runs
an asyncio pair and a uvloop pair of instances at once on one Redis, and
``--code-ab DIR`` this checkout's pair and another checkout's (a change's A/B
under one load: compare the pairs' CPU ms per exchange).

Run: ``.venv/bin/python bench/server_load.py [--quick] [--idle N] [--calls N]
[--concurrency N] [--redis] [--rates 500,1000] [--server-log-level info]``;
bar 1 of issue 18: ``--redis-only --idle 0 --calls 4000 --rates 1000
--concurrency 64 --max-calls 4000 --no-pin``.
Prints a plain-text table; exits 1 if a bar is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import itertools
import os
import random
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hello_tui.server.gcpauses import GcPauses
from hello_tui.signaling import protocol as p

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))
import native_gen  # noqa: E402  (bench/native_gen.py: drives bench/loadgen.c)
import rawws  # noqa: E402  (bench/rawws.py, beside this script)

SERVER_CPU = 0
CLIENT_CPU = 1
IDLE_BAR_MB = 250.0
RATE_BAR = 500.0
REDIS_RATE_BAR = 1000.0  # two instances + one Redis (issue 18)
P99_BAR_MS = 50.0
EXCHANGE_TIMEOUT = 10.0  # a message not there after this long is lost
SETUP_CONCURRENCY = 200  # connections being set up (hello/register/login) at once
KEY_POOL = 8  # Ed25519 keys reused across names: signing cost is the client's
ADMIN_TOKEN = secrets.token_urlsafe(24)  # /metrics needs it (--admin-token-file)
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
MSGS_PER_EXCHANGE = 8  # caller: created, ringing, accepted, answer, ended; callee: 3
NOFILE = 200_000

M = TypeVar("M", bound=p.Message)


class Misrouted(AssertionError):
    """A message arrived with the wrong type, call id, ref or content."""


class Lost(AssertionError):
    """An expected message did not arrive (timeout or closed connection)."""


# ---------------------------------------------------------------- process set-up
def raise_nofile() -> None:
    """As many descriptors as the kernel allows us (root may raise the hard limit)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (max(NOFILE, hard), hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
            return


PINNING = True  # --no-pin: let the kernel place every process
SERVER_PYTHON = ""  # --server-python: the servers' interpreter (empty: this one)


def pin(pid: int, cpu: int) -> None:
    """Pin ``pid`` (0: this process) to ``cpu`` when the machine has it."""
    if PINNING and (os.cpu_count() or 1) > cpu:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kernel_seconds(pid: int) -> float:
    """System (kernel) CPU seconds of ``pid``: on loopback, mostly TCP send and receive."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


@dataclass
class ServerProc:
    """One ``hello-tui serve`` subprocess."""

    proc: asyncio.subprocess.Process
    url: str
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def metrics(self, http: aiohttp.ClientSession) -> dict[str, float]:
        async with http.get(self.url + "/metrics", headers=ADMIN) as resp:
            resp.raise_for_status()
            text = await resp.text()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start_server(
    tmp: Path,
    log_level: str,
    redis_url: str = "",
    secret_file: Path | None = None,
    cpu: int = SERVER_CPU,
    loop: str = "auto",
    root: Path = ROOT,
    python: str = "",
    env_extra: dict[str, str] | None = None,
) -> ServerProc:
    index = len(list(tmp.glob("server-*.log")))
    log = tmp / f"server-{index}.log"
    token_file = tmp / "admin-token"
    if not token_file.exists():
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(ADMIN_TOKEN + "\n")
    cmd = [
        python or SERVER_PYTHON or sys.executable,
        "-m",
        "hello_tui",
        "serve",
        "--port",
        "0",
        "--max-connections-per-ip",
        "0",
        "--rate",
        "0",
        # One address plays 10k users: the per-network quotas would refuse it.
        "--registrations-per-network",
        "0",
        "--rooms-per-network",
        "0",
        "--anonymous-rooms-per-network",
        "0",
        "--pending-calls-per-network",
        "0",
        "--data-dir",
        str(tmp / "data"),
        "--log-level",
        log_level,
        "--admin-token-file",
        str(token_file),
        "--loop",
        loop,
    ]
    if redis_url:
        cmd += ["--redis", redis_url, "--secret-file", str(secret_file)]
    if profile := os.environ.get("HELLO_BENCH_PROFILE"):  # a directory: cProfile each server
        cmd[1:1] = ["-m", "cProfile", "-o", str(Path(profile) / f"server-{index}.prof")]

    def child() -> None:  # runs in the child, before exec
        raise_nofile()
        pin(0, cpu)

    env = None
    if root != ROOT:  # another checkout's server (--code-ab): its code first on the path
        env = {**os.environ, "PYTHONPATH": str(root)}
    if env_extra:  # --env-ab: the other pair's settings
        env = {**(env or os.environ), **env_extra}
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=err, preexec_fn=child, cwd=root, env=env
        )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    except TimeoutError:
        line = ""
    match = re.search(r"listening on (\S+)", line)
    if not match:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"server did not start: {log.read_text()[-2000:]}")
    return ServerProc(proc, match.group(1), log)


# ---------------------------------------------------------------- protocol client
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Keys:
    """A few Ed25519 keys shared by many names (the server verifies once per login)."""

    def __init__(self, n: int = KEY_POOL) -> None:
        self.keys = [Ed25519PrivateKey.generate() for _ in range(n)]
        self.public = [b64(k.public_key().public_bytes_raw()) for k in self.keys]

    def pick(self, i: int) -> tuple[Ed25519PrivateKey, str]:
        return self.keys[i % len(self.keys)], self.public[i % len(self.public)]


class Conn:
    """One WebSocket speaking the protocol; every receive is checked by the caller."""

    __slots__ = ("name", "origin", "ref", "session", "ws")

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, name: str, origin: str = "") -> None:
        self.ws = ws
        self.name = name
        self.origin = origin  # the server as dialled: what a login is signed for
        self.session = ""
        self.ref = 0

    def next_ref(self) -> int:
        self.ref += 1
        return self.ref

    async def send(self, message: p.Message) -> None:
        await self.ws.send_frame(p.encode(message), aiohttp.WSMsgType.TEXT)

    async def recv(self) -> p.Message:
        frame = await self.ws.receive()
        if frame.type != aiohttp.WSMsgType.TEXT:
            raise Lost(f"{self.name}: connection ended ({frame.type.name})")
        return p.decode_server(frame.data)

    async def expect(self, kind: type[M], **fields: Any) -> M:
        message = await self.recv()
        if type(message) is not kind:
            raise Misrouted(f"{self.name}: expected {kind.__name__}, got {message!r:.200}")
        for key, value in fields.items():
            got = getattr(message, key)
            if got != value:
                raise Misrouted(f"{self.name}: {kind.__name__}.{key} {got!r:.80} != {value!r:.80}")
        return message

    async def close(self) -> None:
        await self.ws.close()

    async def drain(self, wait: float) -> int:
        """Text frames still arriving within ``wait`` s of each other (each one unexpected)."""
        count = 0
        with contextlib.suppress(TimeoutError):
            while True:
                frame = await self.ws.receive(timeout=wait)
                if frame.type != aiohttp.WSMsgType.TEXT:
                    return count
                count += 1
        return count

    async def read_idle(self, counts: dict[str, int]) -> None:
        """Read (so pings are answered) until cancelled; count what arrives."""
        with contextlib.suppress(asyncio.CancelledError):
            async for frame in self.ws:
                counts["unexpected"] += 1
                del frame


class RawConn(Conn):
    """The same, over :class:`rawws.RawWebSocket` (the lean generator, the default):
    no aiohttp on the client side, frames built and parsed in one place."""

    __slots__ = ()
    ws: rawws.RawWebSocket  # type: ignore[assignment]

    async def send(self, message: p.Message) -> None:
        self.ws.send(p.encode(message))

    async def recv(self) -> p.Message:
        try:
            data = await self.ws.recv()
        except rawws.Closed as exc:
            raise Lost(f"{self.name}: connection ended ({exc})") from None
        return p.decode_server(data)

    async def close(self) -> None:
        await self.ws.close()

    async def drain(self, wait: float) -> int:
        count = 0
        with contextlib.suppress(TimeoutError, rawws.Closed):
            while True:
                async with asyncio.timeout(wait):
                    await self.ws.recv()
                count += 1
        return count

    async def read_idle(self, counts: dict[str, int]) -> None:
        with contextlib.suppress(asyncio.CancelledError, rawws.Closed):
            while True:
                await self.ws.recv()
                counts["unexpected"] += 1


LEAN = True  # --generator aiohttp: the aiohttp client of the earlier figures
MACHINE = True  # --generator lean: the lean client driven by a task per side
NATIVE = False  # --generator native: the timed exchanges run by bench/loadgen.c


async def open_account(
    http: aiohttp.ClientSession, url: str, name: str, key: Ed25519PrivateKey, public: str
) -> Conn:
    """Connect, hello, register ``name`` and log in with the challenge-response."""
    if LEAN:
        conn: Conn = RawConn(await rawws.RawWebSocket.connect(url), name, p.canonical_origin(url))
    else:
        ws = await http.ws_connect(url + "/ws", autoping=True, max_msg_size=1 << 20)
        conn = Conn(ws, name, p.canonical_origin(url))
    await conn.send(p.Hello(version=p.PROTOCOL_VERSION, client="bench/server_load", ref=1))
    conn.session = (await conn.expect(p.Welcome, ref=1)).session
    await conn.send(p.Register(name=name, public_key=public, ref=2))
    await conn.expect(p.Ok, ref=2)
    return conn


async def login(conn: Conn, key: Ed25519PrivateKey) -> None:
    await conn.send(p.Login(name=conn.name, ref=3))
    nonce = (await conn.expect(p.Challenge, ref=3)).nonce
    signature = key.sign(p.login_payload(nonce, conn.session, conn.origin))
    await conn.send(p.LoginProof(signature=b64(signature), origin=conn.origin, ref=4))
    await conn.expect(p.LoggedIn, ref=4, name=conn.name)


def http_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=False))


# ---------------------------------------------------------------- statistics
def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


@dataclass
class Row:
    what: str
    n: int
    rate: float
    lat_ms: list[float] = field(default_factory=list)
    rss: float = float("nan")
    bar: str = "–"
    ok: bool | None = None  # None: information only
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        def ms(q: float) -> str:
            v = pct(self.lat_ms, q)
            return "–" if v != v else f"{v:.1f}"

        verdict = "info" if self.ok is None else ("pass" if self.ok else "FAIL")
        rss = "–" if self.rss != self.rss else f"{self.rss:.1f}"
        return [
            self.what,
            str(self.n),
            f"{self.rate:.0f}",
            ms(50),
            ms(95),
            ms(99),
            rss,
            self.bar,
            verdict,
        ]


def table(rows: list[Row]) -> str:
    head = ["what", "n", "throughput/s", "p50 ms", "p95 ms", "p99 ms", "RSS MB", "bar", "result"]
    grid = [head] + [r.cells() for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(head))]
    out = []
    for i, line in enumerate(grid):
        out.append(
            "  ".join(
                c.ljust(w) if j == 0 else c.rjust(w)
                for j, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# ---------------------------------------------------------------- idle connections
@dataclass
class IdleResult:
    n: int
    connected: int
    seconds: float
    setup_ms: list[float]
    unexpected: int
    server_connections: float
    rss_before: float
    rss_after: float


async def _idle_reader(conn: Conn, counts: dict[str, int]) -> None:
    """Idle clients still read (so pings are answered); nothing should arrive."""
    await conn.read_idle(counts)


async def run_idle(
    http: aiohttp.ClientSession,
    url: str,
    n: int,
    keys: Keys,
    server_pid: int | None = None,
    settle: float = 2.0,
    tag: str = "",
) -> tuple[IdleResult, list[Conn]]:
    """Open ``n`` authenticated connections and leave them idle; the caller closes them."""
    tag = tag or secrets.token_hex(3)
    rss_before = rss_mb(server_pid) if server_pid else float("nan")
    sem = asyncio.Semaphore(SETUP_CONCURRENCY)
    conns: list[Conn] = []
    setup_ms: list[float] = []
    counts = {"unexpected": 0, "failed": 0}
    readers: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        async with sem:
            key, public = keys.pick(i)
            t = time.perf_counter()
            try:
                conn = await open_account(http, url, f"idle-{tag}-{i}@bench.example", key, public)
                await login(conn, key)
            except (OSError, aiohttp.ClientError, AssertionError, p.ProtocolError) as exc:
                counts["failed"] += 1
                if counts["failed"] <= 3:
                    print(f"  idle connection {i} failed: {exc!r:.200}", file=sys.stderr)
                return
            setup_ms.append((time.perf_counter() - t) * 1000)
            conns.append(conn)
            readers.append(asyncio.create_task(_idle_reader(conn, counts)))

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    seconds = time.perf_counter() - t0
    await asyncio.sleep(settle)
    rss_after = rss_mb(server_pid) if server_pid else float("nan")
    server_connections = float("nan")
    if server_pid:
        async with http.get(url + "/metrics", headers=ADMIN) as resp:
            match = re.search(r"^hello_connections_open ([\d.]+)", await resp.text(), re.M)
            server_connections = float(match.group(1)) if match else float("nan")
    for task in readers:
        task.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    result = IdleResult(
        n,
        len(conns),
        seconds,
        setup_ms,
        counts["unexpected"],
        server_connections,
        rss_before,
        rss_after,
    )
    return result, conns


async def close_all(conns: list[Conn]) -> None:
    for i in range(0, len(conns), 500):
        await asyncio.gather(*(c.close() for c in conns[i : i + 500]), return_exceptions=True)


# ---------------------------------------------------------------- call exchanges
_SDP_HEAD = (
    "v=0\r\no=- {sid} 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "a=extmap-allow-mixed\r\na=msid-semantic: WMS {msid}\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\n"
    "a=ice-options:trickle\r\na=fingerprint:sha-256 {fp}\r\na=setup:{setup}\r\na=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n"
    "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=sendrecv\r\na=msid:{msid} {track}\r\na=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\n"
    "a=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\na=ssrc:{ssrc} cname:{cname}\r\n"
    "a=ssrc:{ssrc} msid:{msid} {track}\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 104 105 106 107 108 109 127 125\r\n"
    "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:{ufrag}\r\n"
    "a=ice-pwd:{pwd}\r\na=fingerprint:sha-256 {fp}\r\na=setup:{setup}\r\na=mid:1\r\n"
    "a=sendrecv\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
)
_SDP_CODEC = (
    "a=rtpmap:{pt} VP8/90000\r\na=rtcp-fb:{pt} goog-remb\r\na=rtcp-fb:{pt} transport-cc\r\n"
    "a=rtcp-fb:{pt} ccm fir\r\na=rtcp-fb:{pt} nack\r\na=rtcp-fb:{pt} nack pli\r\n"
)
_SDP_CANDIDATE = (
    "a=candidate:{f} 1 udp {prio} 127.0.0.{h} {port} typ host generation 0 "
    "network-id {nid} network-cost 10\r\n"
)


def make_sdp(kind: str, serial: int, rng: random.Random) -> str:
    """A realistic audio+video SDP of 3–5 KB, unique to this exchange and side."""
    token = secrets.token_hex(8)
    text = _SDP_HEAD.format(
        sid=f"{serial}{rng.randrange(10**9)}",
        msid=f"{kind}-{serial}-{token}",
        track=secrets.token_hex(16),
        ufrag=token[:8],
        pwd=secrets.token_hex(12),
        fp=":".join(f"{b:02X}" for b in secrets.token_bytes(32)),
        setup="actpass" if kind == "offer" else "active",
        ssrc=rng.randrange(2**32),
        cname=secrets.token_hex(8),
    )
    parts = [text]
    for pt in range(96, 104):
        parts.append(_SDP_CODEC.format(pt=pt))
    target = rng.randrange(3000, 5000)
    size = sum(map(len, parts))
    i = 0
    while size < target:
        line = _SDP_CANDIDATE.format(
            f=rng.randrange(10**9),
            prio=rng.randrange(2**31),
            h=i % 250 + 1,
            port=rng.randrange(1024, 65535),
            nid=i,
        )
        parts.append(line)
        size += len(line)
        i += 1
    return "".join(parts)


@dataclass
class Exchange:
    serial: int
    offer: str
    answer: str
    callee_call_ids: list[str] = field(default_factory=list)
    verified: int = 0
    callee_done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass
class Pair:
    caller: Conn
    callee: Conn
    current: Exchange | None = None
    broken: bool = False


@dataclass
class CallStats:
    latencies_ms: list[float] = field(default_factory=list)
    # Per exchange (callback-driven generator only): the times of STAGES' ends.
    marks: list[list[float]] = field(default_factory=list)
    done: int = 0
    failed: int = 0
    lost: int = 0
    misrouted: int = 0
    verified: int = 0
    errors: list[str] = field(default_factory=list)

    def fail(self, exc: BaseException, exchange: Exchange | None) -> None:
        self.failed += 1
        verified = exchange.verified if exchange else 0
        if isinstance(exc, Misrouted | p.ProtocolError):
            self.misrouted += 1
            self.lost += MSGS_PER_EXCHANGE - verified - 1
        else:
            self.lost += MSGS_PER_EXCHANGE - verified
        if len(self.errors) < 5:
            self.errors.append(f"{type(exc).__name__}: {exc}"[:300])


class Jobs:
    """Scheduled start times: open loop at ``rate``/s, or now (closed loop) if rate is 0."""

    def __init__(self, n: int, rate: float) -> None:
        self.n, self.rate = n, rate
        self.i = 0
        self.running = 0  # pairs still taking jobs (the callback-driven generator)
        # Open loop starts a little ahead, so the first scheduled start is not late.
        self.t0 = time.perf_counter() + (0.05 if rate > 0 else 0.0)

    def take(self) -> float | None:
        if self.i >= self.n:
            return None
        self.i += 1
        if self.rate <= 0:
            return time.perf_counter()
        return self.t0 + (self.i - 1) / self.rate


async def callee_loop(pair: Pair, stats: CallStats) -> None:
    """React to every incoming call: ring, accept, check the offer, answer, await the end."""
    conn = pair.callee
    exchange: Exchange | None = None
    try:
        while True:
            incoming = await conn.recv()  # waits between exchanges: no timeout here
            exchange = pair.current
            if exchange is None or type(incoming) is not p.Incoming:
                raise Misrouted(f"{conn.name}: unexpected {incoming!r:.200}")
            call_id = incoming.call_id
            exchange.callee_call_ids.append(call_id)
            if incoming.caller != pair.caller.name or incoming.video:
                raise Misrouted(f"{conn.name}: incoming from {incoming.caller!r}")
            exchange.verified += 1
            ref = conn.next_ref()
            await conn.send(p.Ringing(call_id=call_id))
            await conn.send(p.Accept(call_id=call_id, ref=ref))
            async with asyncio.timeout(EXCHANGE_TIMEOUT):
                await conn.expect(p.Offer, call_id=call_id, ref=ref, sdp=exchange.offer)
                exchange.verified += 1
                await conn.send(p.Answer(call_id=call_id, sdp=exchange.answer))
                await conn.expect(p.CallEnded, call_id=call_id, reason="hangup", ref=None)
                exchange.verified += 1
            exchange.callee_done.set_result(None)
            exchange = None
    except asyncio.CancelledError:
        raise
    except (AssertionError, TimeoutError, p.ProtocolError) as exc:
        pair.broken = True
        if exchange is not None and not exchange.callee_done.done():
            exchange.callee_done.set_exception(
                Lost(str(exc)) if isinstance(exc, TimeoutError) else exc
            )
        elif exchange is None:  # a message outside any exchange
            stats.misrouted += 1
            stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])


async def caller_loop(
    pair: Pair, jobs: Jobs, stats: CallStats, sdps: list[tuple[str, str]]
) -> None:
    conn = pair.caller
    while not pair.broken and (t_sched := jobs.take()) is not None:
        delay = t_sched - time.perf_counter()
        serial = jobs.i
        if delay > 0:
            await asyncio.sleep(delay)
        exchange = Exchange(serial, *sdps[serial - 1])
        pair.current = exchange
        try:
            async with asyncio.timeout(EXCHANGE_TIMEOUT):
                ref = conn.next_ref()
                await conn.send(p.Call(to=pair.callee.name, offer=exchange.offer, ref=ref))
                call_id = (await conn.expect(p.CallCreated, ref=ref)).call_id
                exchange.verified += 1
                await conn.expect(p.Ringing, call_id=call_id)
                exchange.verified += 1
                await conn.expect(p.Accepted, call_id=call_id)
                exchange.verified += 1
                await conn.expect(p.Answer, call_id=call_id, sdp=exchange.answer, ref=None)
                exchange.verified += 1
                await conn.send(p.Connected(call_id=call_id))
                ref = conn.next_ref()
                await conn.send(p.Hangup(call_id=call_id, ref=ref))
                await conn.expect(p.CallEnded, call_id=call_id, reason="hangup", ref=ref)
                exchange.verified += 1
                await exchange.callee_done
            if exchange.callee_call_ids != [call_id]:
                raise Misrouted(f"callee saw {exchange.callee_call_ids}, caller {call_id}")
        except (AssertionError, TimeoutError, p.ProtocolError) as exc:
            pair.broken = True
            stats.fail(
                Lost(f"timeout in exchange {serial}") if isinstance(exc, TimeoutError) else exc,
                exchange,
            )
            if not exchange.callee_done.done():
                exchange.callee_done.cancel()
            elif not exchange.callee_done.cancelled():
                exchange.callee_done.exception()  # retrieved: no "never retrieved" warning
            return
        stats.latencies_ms.append((time.perf_counter() - t_sched) * 1000)
        stats.verified += exchange.verified
        stats.done += 1
        pair.current = None


async def open_pairs(
    http: aiohttp.ClientSession, caller_url: str, callee_url: str, n: int, keys: Keys
) -> list[Pair]:
    tag = secrets.token_hex(3)
    sem = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def account(url: str, name: str, i: int) -> Conn:
        async with sem:
            key, public = keys.pick(i)
            conn = await open_account(http, url, name, key, public)
            await login(conn, key)
            return conn

    callers = [account(caller_url, f"caller-{tag}-{i}@bench.example", i) for i in range(n)]
    callees = [account(callee_url, f"callee-{tag}-{i}@bench.example", i) for i in range(n)]
    conns = await asyncio.gather(*callers, *callees)
    return [Pair(conns[i], conns[n + i]) for i in range(n)]


def make_sdps(n: int, seed: int = 1) -> list[tuple[str, str]]:
    """One unique (offer, answer) per exchange, made before the clock starts."""
    rng = random.Random(seed)
    return [(make_sdp("offer", i, rng), make_sdp("answer", i, rng)) for i in range(n)]


async def run_calls(
    pairs: list[Pair], n: int, rate: float, cpu: dict[str, int] | None = None
) -> tuple[CallStats, float, str]:
    """``n`` exchanges over ``pairs`` (open loop at ``rate``/s, or closed loop if 0).

    Returns the stats, the wall time from the first scheduled start to the last
    end, and the CPU use of the ``cpu`` processes over that time.
    """
    stats = CallStats()
    sdps = make_sdps(n)
    if GEN_GC_FREEZE:
        # The generator's heap (aiohttp, cryptography, msgspec, 2n SDPs) out of the
        # collector's reach: a full collection of it stopped every exchange in flight
        # for 30–60 ms once per run, at the p99 (docs/benchmarks.md, session 8).
        gc.collect()
        gc.freeze()
        GEN_PAUSES.reset()  # that collection was before the clock
    live = [pair for pair in pairs if not pair.broken]
    machine = LEAN and MACHINE
    callees = [] if machine else [asyncio.create_task(callee_loop(p_, stats)) for p_ in live]
    meter = CpuMeter(cpu or {})
    jobs = Jobs(n, rate)
    t0 = jobs.t0
    if NATIVE:
        wall, taken = await run_native(live, rate, stats, sdps, meter)
        jobs.i = taken
        usage = meter.read(stats.done)
        if taken < n and not stats.failed:  # every pair broke: the rest never ran
            stats.failed += n - taken
            stats.lost += (n - taken) * MSGS_PER_EXCHANGE
        return stats, wall, usage
    if machine:
        await run_machines(live, jobs, stats, sdps)
    else:
        await asyncio.gather(*(caller_loop(pair, jobs, stats, sdps) for pair in live))
    wall = time.perf_counter() - t0
    usage = meter.read(stats.done)
    # Anything still arriving now is a message nobody expected.
    await asyncio.sleep(0.2)
    for task in callees:
        task.cancel()
    await asyncio.gather(*callees, return_exceptions=True)
    if jobs.i < n:  # every pair broke: the remaining exchanges never ran
        stats.failed += n - jobs.i
        stats.lost += (n - jobs.i) * MSGS_PER_EXCHANGE
    return stats, wall, usage


class MachinePair:
    """One caller/callee pair driven by callbacks (``--generator machine``, the
    default): each frame is checked and answered inside the read callback that
    parsed it, with no task, future or timeout object per message. The checks
    are the lean loops' (callee_loop, caller_loop), message for message; an
    exchange ends when both sides have seen ``call-ended``."""

    __slots__ = (
        "call_id",
        "callee",
        "callee_ref",
        "callee_step",
        "caller",
        "caller_ref",
        "done",
        "exchange",
        "jobs",
        "loop",
        "marks",
        "pair",
        "sdps",
        "stats",
        "step",
        "t_sched",
        "timer",
    )  # fmt: skip

    def __init__(
        self, pair: Pair, jobs: Jobs, stats: CallStats, sdps: list[tuple[str, str]],
        done: asyncio.Future[None], loop: asyncio.AbstractEventLoop,
    ) -> None:  # fmt: skip
        self.pair, self.jobs, self.stats, self.sdps = pair, jobs, stats, sdps
        self.done, self.loop = done, loop
        self.caller = cast("RawConn", pair.caller)
        self.callee = cast("RawConn", pair.callee)
        self.exchange: Exchange | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.call_id = ""
        self.caller_ref = self.callee_ref = 0
        self.step = self.callee_step = 0  # how far each side is in its exchange
        self.t_sched = 0.0
        self.marks: list[float] = []
        self.caller.ws.on_message = self.on_caller
        self.callee.ws.on_message = self.on_callee

    # ------------------------------------------------------------ scheduling
    def next(self) -> None:
        """Take the next scheduled exchange (open loop: start it at its time)."""
        self.exchange = self.pair.current = None
        if self.pair.broken or (t_sched := self.jobs.take()) is None:
            self.finish()
            return
        self.t_sched = t_sched
        delay = t_sched - time.perf_counter()
        if delay > 0:
            self.loop.call_later(delay, self.start, self.jobs.i)
        else:
            self.start(self.jobs.i)

    def start(self, serial: int) -> None:
        if self.pair.broken:  # broke by a stray message while waiting for its time
            return
        exchange = self.exchange = Exchange(serial, *self.sdps[serial - 1])
        self.pair.current = exchange
        self.step = self.callee_step = 0
        self.call_id = ""
        self.timer = self.loop.call_later(EXCHANGE_TIMEOUT, self.timed_out)
        self.marks = [self.t_sched, time.perf_counter(), 0.0, 0.0, 0.0, 0.0, 0.0]
        self.caller_ref = ref = self.caller.next_ref()
        self.caller.ws.send(p.encode(p.Call(to=self.callee.name, offer=exchange.offer, ref=ref)))

    def finish(self) -> None:
        """This pair runs no more exchanges: the run ends when every pair has."""
        if self.caller.ws.on_message is None:  # already finished
            return
        self.caller.ws.on_message = self.callee.ws.on_message = None
        self.jobs.running -= 1
        if self.jobs.running == 0 and not self.done.done():
            self.done.set_result(None)

    def timed_out(self) -> None:
        self.timer = None
        if self.exchange is not None:
            self.fail(Lost(f"timeout in exchange {self.exchange.serial}"))

    def fail(self, exc: AssertionError | p.ProtocolError) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.pair.broken = True
        if self.exchange is None:  # a message outside any exchange
            self.stats.misrouted += 1
            self.stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])
        else:
            self.stats.fail(exc, self.exchange)
        self.exchange = None
        self.finish()

    def check_end(self) -> None:
        """Both sides saw the end: the exchange is done."""
        exchange = self.exchange
        if exchange is None or self.step != 5 or self.callee_step != 3:
            return
        if exchange.callee_call_ids != [self.call_id]:
            self.fail(Misrouted(f"callee saw {exchange.callee_call_ids}, caller {self.call_id}"))
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        stats = self.stats
        now = self.marks[6] = time.perf_counter()
        stats.latencies_ms.append((now - self.t_sched) * 1000)
        stats.marks.append(self.marks)
        stats.verified += exchange.verified
        stats.done += 1
        self.next()

    # ------------------------------------------------------------ the two sides
    def decode(self, conn: RawConn, data: bytes) -> p.Message:
        if not data:
            raise Lost(f"{conn.name}: connection ended ({conn.ws.closed})")
        return p.decode_server(data)

    def on_caller(self, data: bytes) -> None:
        if self.pair.broken:
            return
        conn, exchange = self.caller, self.exchange
        try:
            message = self.decode(conn, data)
            if exchange is None:
                raise Misrouted(f"{conn.name}: unexpected {message!r:.200}")
            step, kind = self.step, type(message)
            if step == 0:
                _expect(conn, message, p.CallCreated, ref=self.caller_ref)
                self.call_id = message.call_id  # type: ignore[attr-defined]
            elif step == 1:
                _expect(conn, message, p.Ringing, call_id=self.call_id)
            elif step == 2:
                _expect(conn, message, p.Accepted, call_id=self.call_id)
            elif step == 3:
                _expect(
                    conn, message, p.Answer, call_id=self.call_id, sdp=exchange.answer, ref=None
                )
                self.marks[4] = time.perf_counter()
                conn.ws.send(p.encode(p.Connected(call_id=self.call_id)))
                self.caller_ref = ref = conn.next_ref()
                conn.ws.send(p.encode(p.Hangup(call_id=self.call_id, ref=ref)))
            elif step == 4:
                _expect(
                    conn, message, p.CallEnded, call_id=self.call_id, reason="hangup",
                    ref=self.caller_ref,
                )  # fmt: skip
                self.marks[5] = time.perf_counter()
            else:
                raise Misrouted(f"{conn.name}: unexpected {kind.__name__} after the end")
            exchange.verified += 1
            self.step = step + 1
        except (AssertionError, p.ProtocolError) as exc:
            self.fail(exc)
            return
        if self.step == 5:
            self.check_end()

    def on_callee(self, data: bytes) -> None:
        if self.pair.broken:
            return
        conn, exchange = self.callee, self.exchange
        try:
            message = self.decode(conn, data)
            step = self.callee_step
            if exchange is None or (step == 0 and type(message) is not p.Incoming):
                raise Misrouted(f"{conn.name}: unexpected {message!r:.200}")
            if step == 0:
                incoming = cast("p.Incoming", message)
                call_id = incoming.call_id
                exchange.callee_call_ids.append(call_id)
                if incoming.caller != self.caller.name or incoming.video:
                    raise Misrouted(f"{conn.name}: incoming from {incoming.caller!r}")
                self.marks[2] = time.perf_counter()
                self.callee_ref = ref = conn.next_ref()
                conn.ws.send(p.encode(p.Ringing(call_id=call_id)))
                conn.ws.send(p.encode(p.Accept(call_id=call_id, ref=ref)))
            elif step == 1:
                call_id = exchange.callee_call_ids[0]
                _expect(
                    conn, message, p.Offer, call_id=call_id, ref=self.callee_ref,
                    sdp=exchange.offer,
                )  # fmt: skip
                self.marks[3] = time.perf_counter()
                conn.ws.send(p.encode(p.Answer(call_id=call_id, sdp=exchange.answer)))
            elif step == 2:
                call_id = exchange.callee_call_ids[0]
                _expect(conn, message, p.CallEnded, call_id=call_id, reason="hangup", ref=None)
            else:
                raise Misrouted(f"{conn.name}: unexpected {message!r:.200}")
            exchange.verified += 1
            self.callee_step = step + 1
        except (AssertionError, p.ProtocolError) as exc:
            self.fail(exc)
            return
        if self.callee_step == 3:
            self.check_end()


STAGES = (
    "start late",
    "call→incoming",
    "incoming→offer",
    "offer→answer",
    "answer→ended",
    "callee's end after",
)


def stage_note(stats: CallStats) -> str:
    """Where an exchange's time goes, stage by stage along its critical path: the
    median of each stage over all exchanges, and its mean over the slowest 1 %
    (those at or above the p99), so a tail made in one stage shows as that stage."""
    if not stats.marks:
        return ""
    rows = [[max(0.0, b - a) * 1000 for a, b in itertools.pairwise(m)] for m in stats.marks]
    p99 = pct(stats.latencies_ms, 99)
    slow = [r for r, lat in zip(rows, stats.latencies_ms, strict=True) if lat >= p99]
    parts = []
    for i, name in enumerate(STAGES):
        column = [r[i] for r in rows]
        tail = sum(r[i] for r in slow) / max(1, len(slow))
        parts.append(f"{name} {pct(column, 50):.1f} / {tail:.1f}")
    return (
        f"ms per stage, median of all / mean of the {len(slow)} slowest (≥ p99 {p99:.1f}): "
        + ", ".join(parts)
    )


def _expect(conn: Conn, message: p.Message, kind: type[p.Message], **fields: Any) -> None:
    """``Conn.expect``'s checks on a message already read."""
    if type(message) is not kind:
        raise Misrouted(f"{conn.name}: expected {kind.__name__}, got {message!r:.200}")
    for key, value in fields.items():
        got = getattr(message, key)
        if got != value:
            raise Misrouted(f"{conn.name}: {kind.__name__}.{key} {got!r:.80} != {value!r:.80}")


async def run_machines(
    live: list[Pair], jobs: Jobs, stats: CallStats, sdps: list[tuple[str, str]]
) -> None:
    """Every pair as a :class:`MachinePair` until the jobs run out (or all broke)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    jobs.running = len(live)
    machines = [MachinePair(pair, jobs, stats, sdps, done, loop) for pair in live]
    for machine in machines:
        machine.next()
    if live:
        await done


async def run_native(
    live: list[Pair], rate: float, stats: CallStats, sdps: list[tuple[str, str]], meter: CpuMeter
) -> tuple[float, int]:
    """The run's exchanges by bench/loadgen.c over these pairs' connections (Python
    stops reading them meanwhile); its counts, marks and CPU go where the Python
    generators' go. Returns the wall time from the first scheduled start to the
    last end, and how many exchanges were started."""
    specs, transports = [], []
    for pair in live:
        fds = []
        for conn in (pair.caller, pair.callee):
            transport = cast("RawConn", conn).ws.transport
            assert transport is not None
            transport.pause_reading()
            transports.append(transport)
            fds.append(transport.get_extra_info("socket").fileno())
        specs.append(
            native_gen.PairSpec(
                fds[0], fds[1], pair.caller.name, pair.callee.name, pair.caller.ref, pair.callee.ref
            )
        )
    try:
        result = await native_gen.run(specs, sdps, rate, EXCHANGE_TIMEOUT, meter.restart)
    finally:
        for transport in transports:
            transport.resume_reading()
    for pair in live:  # the refs it used, and more: later runs never reuse one
        pair.caller.ref += 2 * len(sdps) + 2
        pair.callee.ref += len(sdps) + 1
    for i in result.broken:
        live[i].broken = True
    meter.add("generator", result.cpu, result.kernel, result.waited)
    stats.latencies_ms = [(m[6] - m[0]) * 1000 for m in result.marks]
    stats.marks = result.marks
    stats.done, stats.failed, stats.lost = result.done, result.failed, result.lost
    stats.misrouted, stats.verified = result.misrouted, result.verified
    stats.errors = result.errors
    return result.t_end - result.t0, result.taken


async def leftovers(pairs: list[Pair], wait: float = 0.3) -> int:
    """Frames still queued on any client after a run (each one is misrouted)."""

    conns = [c for pair in pairs if not pair.broken for c in (pair.caller, pair.callee)]
    return sum(await asyncio.gather(*(c.drain(wait) for c in conns)))


# ---------------------------------------------------------------- scenarios
@dataclass
class Options:
    idle: int
    calls: int
    concurrency: int
    rates: list[float]
    redis: bool
    redis_only: bool
    redis_cpus: tuple[int, int, int]
    log_level: str
    max_calls: int
    server_loop: str = "auto"
    loop_ab: bool = False
    code_ab: Path | None = None
    python_ab: str = ""
    env_ab: dict[str, str] = field(default_factory=dict)

    @property
    def pair_ab(self) -> bool:
        """Two instance pairs at once, the other differing in code, interpreter or env."""
        return self.code_ab is not None or bool(self.python_ab) or bool(self.env_ab)


def host_line() -> str:
    """The CPU these figures were taken on, and the servers' interpreter: a host
    drawn from another CPU generation moves every CPU-per-exchange figure (session
    11 landed on one that took about half session 10's), so each run says which."""
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    python = SERVER_PYTHON or sys.executable
    try:
        version = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        version = "?"
    return (
        f"{info.get('model name', '?')} (family {info.get('cpu family', '?')}, model "
        f"{info.get('model', '?')}), {os.cpu_count()} CPUs; the servers' Python: "
        f"{version} ({python})"
    )


def runqueue_wait(pid: int) -> float:
    """Seconds the process's main thread has waited, runnable, for a CPU
    (``/proc/PID/schedstat``, second field): what a loaded machine costs it."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    return float("nan")


def stolen_seconds() -> float:
    """CPU seconds the hypervisor gave other guests while this VM's CPUs wanted to
    run (``/proc/stat``'s steal, summed over CPUs): on a shared host a "quiet"
    machine can still lose a quarter of its two cores, which no process here shows."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    return float("nan")


class CpuMeter:
    """CPU share (of one core) of some processes over a phase, how long each
    waited for a CPU while runnable (the scheduling delay other load adds), and
    how much of the machine the hypervisor took (steal)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        # Processes that ran and ended within the phase (the native generator), by name:
        # CPU, of it in the kernel, waiting for a CPU (seconds).
        self.extra: dict[str, tuple[float, float, float]] = {}
        self.t = time.perf_counter()
        self.stolen = stolen_seconds()
        self.start = {name: self._cpu(pid) for name, pid in pids.items()}
        self.kernel = {name: self._kernel(pid) for name, pid in pids.items()}
        self.waits = {name: runqueue_wait(pid or os.getpid()) for name, pid in pids.items()}

    def restart(self) -> None:
        """The phase starts now (what ran before is not counted)."""
        self.__init__(self.pids)  # type: ignore[misc]

    def add(self, name: str, cpu: float, kernel: float, waited: float) -> None:
        c, k, w = self.extra.get(name, (0.0, 0.0, 0.0))
        self.extra[name] = (c + cpu, k + kernel, w + waited)

    def _cpu(self, pid: int, name: str = "") -> float:
        own = time.process_time() if pid == os.getpid() else cpu_seconds(pid)
        return own + self.extra.get(name, (0.0, 0.0, 0.0))[0]

    def _kernel(self, pid: int, name: str = "") -> float:
        own = os.times().system if pid == os.getpid() else kernel_seconds(pid)
        return own + self.extra.get(name, (0.0, 0.0, 0.0))[1]

    def _wait(self, pid: int, name: str = "") -> float:
        return runqueue_wait(pid or os.getpid()) + self.extra.get(name, (0.0, 0.0, 0.0))[2]

    def read(self, exchanges: int = 0) -> str:
        if not self.pids:
            return ""
        dt = time.perf_counter() - self.t
        per = ""
        if exchanges:  # CPU per exchange: what a loaded machine distorts least
            per = "; CPU ms per exchange " + ", ".join(
                f"{name} {1000 * (self._cpu(pid, name) - self.start[name]) / exchanges:.3f}"
                for name, pid in self.pids.items()
            )
            per += (
                " (of which in the kernel "
                + ", ".join(
                    f"{name} {1000 * (self._kernel(pid, name) - self.kernel[name]) / exchanges:.3f}"
                    for name, pid in self.pids.items()
                )
                + ")"
            )
        parts = [
            f"{name} {100 * (self._cpu(pid, name) - self.start[name]) / dt:.0f}%"
            for name, pid in self.pids.items()
        ]
        waits = [
            f"{name} {100 * (self._wait(pid, name) - self.waits[name]) / dt:.0f}%"
            for name, pid in self.pids.items()
        ]
        steal = 100 * (stolen_seconds() - self.stolen) / dt / (os.cpu_count() or 1)
        return (
            "CPU " + ", ".join(parts) + "; waiting for a CPU " + ", ".join(waits)
            + f"; stolen by the hypervisor {steal:.0f}% of the machine" + per
        )  # fmt: skip


async def idle_scenario(opts: Options, tmp: Path, keys: Keys) -> Row:
    server = await start_server(tmp, opts.log_level, loop=opts.server_loop)
    try:
        async with http_session() as http:
            meter = CpuMeter({"server": server.pid, "generator": os.getpid()})
            result, conns = await run_idle(http, server.url, opts.idle, keys, server.pid)
            cpu = meter.read()
            row = Row(
                "idle authenticated connections (1 instance)",
                opts.idle,
                result.connected / result.seconds,
                result.setup_ms,
                result.rss_after,
                f"RSS < {IDLE_BAR_MB:.0f} MB, all held",
            )
            held = result.server_connections >= opts.idle  # + the echo peer's own
            row.ok = result.rss_after < IDLE_BAR_MB and result.connected == opts.idle and held
            per_conn = (result.rss_after - result.rss_before) * 1024 / max(1, result.connected)
            row.notes.append(
                f"{result.connected}/{opts.idle} logged in in {result.seconds:.1f} s "
                f"(latency = connect → logged-in); server holds {result.server_connections:.0f}; "
                f"RSS {result.rss_before:.1f} MB empty → {result.rss_after:.1f} MB "
                f"({per_conn:.1f} KB/connection); {result.unexpected} unexpected frames; {cpu}"
            )
            await close_all(conns)
    finally:
        await server.stop()
    return row


_HANDLE = re.compile(r'^hello_signaling_handle_seconds_(sum|count)\{type="([^"]+)"\}$')


async def step_costs(http: aiohttp.ClientSession, servers: list[ServerProc]) -> dict[str, float]:
    """Per message type, the summed handling time and count over ``servers``."""
    out: dict[str, float] = {}
    for srv in servers:
        for key, value in (await srv.metrics(http)).items():
            if m := _HANDLE.match(key):
                name = f"{m.group(2)} {m.group(1)}"
                out[name] = out.get(name, 0.0) + value
    return out


GEN_PAUSES = GcPauses()  # the generator's own collections
GEN_GC_FREEZE = True  # --gen-gc default: leave the generator's collector alone
REDIS_UNIX = False  # --redis-socket unix: the instances reach Redis by its unix socket
REDIS_NICE = 0  # --redis-nice N: redis-server's scheduling priority (negative: before the others)


async def gc_pauses(http: aiohttp.ClientSession, srv: ServerProc) -> list[list[float]]:
    """A server's GC pauses so far: per generation [count, seconds, longest]."""
    m = await srv.metrics(http)
    return [
        [
            m.get(f'hello_gc_pauses_total{{generation="{g}"}}', 0.0),
            m.get(f'hello_gc_pause_seconds_total{{generation="{g}"}}', 0.0),
            m.get(f'hello_gc_pause_max_seconds{{generation="{g}"}}', 0.0),
        ]
        for g in range(3)
    ]


def gc_note(before: list[list[list[float]]], after: list[list[list[float]]]) -> str:
    """Per process, collections during the run per generation: count, mean and
    longest pause (the longest since start, for the servers)."""

    def one(b: list[list[float]], a: list[list[float]]) -> str:
        parts = []
        for g in range(3):
            n = a[g][0] - b[g][0]
            if n:
                mean = 1000 * (a[g][1] - b[g][1]) / n
                parts.append(f"gen{g} {n:.0f}× {mean:.2f}/{1000 * a[g][2]:.1f}")
        return " ".join(parts) or "none"

    names = "AB" if len(after) == 2 else [str(i) for i in range(len(after))]
    out = [f"{name} {one(b, a)}" for name, b, a in zip(names, before, after, strict=True)]
    gen = [[0.0, 0.0, 0.0] for _ in range(3)]
    out.append("generator " + one(gen, GEN_PAUSES.by_generation))
    return "GC pauses in the run (count× mean/longest ms; the servers' longest since start): " + (
        ", ".join(out)
    )


def step_note(before: dict[str, float], after: dict[str, float], exchanges: int) -> str:
    """Mean server time per step (handler wall time, Redis round trips included)."""
    parts = []
    for name in sorted(k for k in after if k.endswith(" count")):
        kind = name.removesuffix(" count")
        n = after[name] - before.get(name, 0.0)
        if n <= 0 or kind in {"hello", "register", "login", "login-proof"}:
            continue
        total = after[f"{kind} sum"] - before.get(f"{kind} sum", 0.0)
        parts.append(f"{kind} {1000 * total / n:.2f}")
    return f"mean handling ms per step over {exchanges} exchanges: " + ", ".join(parts)


async def redis_commands(url: str) -> dict[str, int]:
    """Commands Redis has run so far, by name (scripts' inner calls as well), and
    the microseconds Redis spent in each (``usec:NAME``; a script's time includes
    its inner calls')."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    try:
        stats = await r.info("commandstats")
        out = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
        out |= {"usec:" + k.removeprefix("cmdstat_"): int(v["usec"]) for k, v in stats.items()}
        return out
    finally:
        await r.aclose()


SLOWLOG_US = 1000  # a Redis command over 1 ms is a tail cause for every instance


async def redis_slowlog(url: str, reset: bool = False) -> str:
    """Redis commands slower than ``SLOWLOG_US`` since the reset (Redis's own
    execution time: one slow command stalls both instances)."""
    import redis.asyncio as aioredis

    r = aioredis.Redis.from_url(url)
    try:
        if reset:
            await r.config_set("slowlog-log-slower-than", SLOWLOG_US)
            await r.config_set("slowlog-max-len", 1024)
            await r.slowlog_reset()
            return ""
        n = await r.slowlog_len()
        entries = await r.slowlog_get(1024)
        worst = sorted(entries, key=lambda e: -int(e["duration"]))[:3]

        def what(command: Any) -> str:
            text = command.decode(errors="replace") if isinstance(command, bytes) else command
            return str(text)[:40]

        shown = ", ".join(f"{int(e['duration']) / 1000:.1f} ms {what(e['command'])}" for e in worst)
        return f"Redis commands over {SLOWLOG_US / 1000:.0f} ms (SLOWLOG): {n}" + (
            f"; slowest {shown}" if shown else ""
        )
    finally:
        await r.aclose()


async def calls_scenario(
    opts: Options,
    tmp: Path,
    keys: Keys,
    label: str,
    servers: list[ServerProc],
    cpu: dict[str, int],
    redis_url: str = "",
) -> list[Row]:
    """Warm-up, an open-loop sweep up from the bar's rate, then closed loop at full tilt."""
    rows: list[Row] = []
    caller_srv, callee_srv = servers[0], servers[-1]
    async with http_session() as http:
        pairs = await open_pairs(http, caller_srv.url, callee_srv.url, opts.concurrency, keys)
        await run_calls(pairs, min(300, opts.calls or 300), 0)  # warm-up (not reported)
        costs_before = await step_costs(http, servers)
        commands_before = await redis_commands(redis_url) if redis_url else {}
        if redis_url:
            await redis_slowlog(redis_url, reset=True)
        t_before = time.perf_counter()
        exchanges = 0
        best: Row | None = None
        for rate in opts.rates:
            gc_before = [await gc_pauses(http, srv) for srv in servers]
            GEN_PAUSES.reset()
            stats, wall, usage = await run_calls(pairs, opts.calls, rate, cpu)
            gc_after = [await gc_pauses(http, srv) for srv in servers]
            usage += "; " + gc_note(gc_before, gc_after)
            exchanges += stats.done
            stray = await leftovers(pairs)
            row = _call_row(f"{label}, open loop @{rate:.0f}/s", stats, wall, stray, servers)
            row.notes.append(usage)
            if stats.marks:
                row.notes.append(stage_note(stats))
            passed = row.ok
            if rate == opts.rates[0]:
                bar = RATE_BAR if len(servers) == 1 else REDIS_RATE_BAR
                row.bar = f"≥{bar:.0f}/s, p99<{P99_BAR_MS:.0f}, 0 lost"
                row.ok = passed and row.rate >= 0.97 * bar
            else:
                row.ok = None
            rows.append(row)
            if passed and stats.done == opts.calls:
                best = row
            else:
                break
            if any(pair.broken for pair in pairs):
                break
        stats, wall, usage = await run_calls(pairs, opts.max_calls, 0, cpu)
        exchanges += stats.done
        costs_after = await step_costs(http, servers)
        if redis_url:
            after = await redis_commands(redis_url)
            per = {k: (v - commands_before.get(k, 0)) / max(1, exchanges) for k, v in after.items()}
            # Every instance polls the timer due-list (10/s): not per exchange.
            polls = 10 * len(servers) * (time.perf_counter() - t_before) / max(1, exchanges)
            calls = {k: v for k, v in per.items() if not k.startswith("usec:")}
            shown = ", ".join(f"{k} {v:.2f}" for k, v in sorted(calls.items()) if v >= 0.01)
            rows[0].notes.append(
                f"Redis commands per exchange over {exchanges} exchanges "
                f"(~{polls:.2f} of them timer polls; inner script calls counted too): {shown}"
            )
            usec = {k[5:]: v for k, v in per.items() if k.startswith("usec:") and v >= 0.05}
            timed = ", ".join(f"{k} {v:.1f}" for k, v in sorted(usec.items(), key=lambda i: -i[1]))
            rows[0].notes.append(
                "Redis µs per exchange in commands (INFO commandstats; a script's time "
                f"includes its inner calls', so they overlap): {timed}"
            )
            rows[0].notes.append(await redis_slowlog(redis_url))
        rows[0].notes.append(step_note(costs_before, costs_after, exchanges))
        stray = await leftovers(pairs)
        row = _call_row(
            f"{label}, closed loop ×{opts.concurrency} (max)", stats, wall, stray, servers
        )
        row.notes.append(usage)
        clean = stats.lost == 0 and stats.misrouted + stray == 0 and stats.failed == 0
        row.bar, row.ok = "0 lost", (None if clean else False)
        rows.append(row)
        if best is not None:
            rows[0].notes.append(
                f"highest swept rate with p99 < {P99_BAR_MS:.0f} ms: "
                f"{best.rate:.0f}/s (p99 {pct(best.lat_ms, 99):.1f} ms)"
            )
        ended: dict[str, float] = {}
        for srv in servers:
            for key, value in (await srv.metrics(http)).items():
                ended[key] = ended.get(key, 0) + value
        errors = {k: v for k, v in ended.items() if k.startswith("hello_errors_total")}
        active = ended.get("hello_calls_active", 0)
        rows[-1].notes.append(f"server: calls active at the end {active:.0f}, errors {errors or 0}")
        if errors or active:
            rows[-1].ok = False
        await close_all([c for pair in pairs for c in (pair.caller, pair.callee)])
    return rows


def _call_row(
    what: str, stats: CallStats, wall: float, stray: int, servers: list[ServerProc]
) -> Row:
    row = Row(
        what,
        stats.done,
        stats.done / wall if wall > 0 else 0.0,
        stats.latencies_ms,
        max(rss_mb(s.pid) for s in servers),
    )
    lost, misrouted = stats.lost, stats.misrouted + stray
    row.ok = (
        lost == 0
        and misrouted == 0
        and stats.failed == 0
        and pct(stats.latencies_ms, 99) < P99_BAR_MS
    )
    row.bar = f"p99<{P99_BAR_MS:.0f}, 0 lost"
    row.notes.append(
        f"{stats.done} exchanges, {stats.verified} messages verified, {lost} lost, "
        f"{misrouted} misrouted, {stats.failed} failed exchanges"
    )
    row.notes += stats.errors
    return row


async def single_scenario(opts: Options, tmp: Path, keys: Keys) -> list[Row]:
    server = await start_server(tmp, opts.log_level, loop=opts.server_loop)
    try:
        cpu = {"server": server.pid, "generator": os.getpid()}
        return await calls_scenario(opts, tmp, keys, "call exchanges (1 instance)", [server], cpu)
    finally:
        await server.stop()


@contextlib.contextmanager
def _redis(cpu: int) -> Iterator[Any]:
    sys.path.insert(0, str(ROOT))
    from tests.services.redis import redis_server

    with redis_server(unix=REDIS_UNIX) as srv:
        pin(srv.process.pid, cpu)
        if REDIS_NICE:
            os.setpriority(os.PRIO_PROCESS, srv.process.pid, REDIS_NICE)
        yield srv


def _url(redis: Any) -> str:
    """How the instances reach the bench's Redis (--redis-socket)."""
    return str(redis.unix_url if REDIS_UNIX else redis.url)


async def redis_scenario(opts: Options, tmp: Path, keys: Keys) -> list[Row]:
    secret = tmp / "secret"
    secret.write_bytes(secrets.token_bytes(32))
    secret.chmod(0o600)
    cpu_a, cpu_b, cpu_redis = opts.redis_cpus
    with _redis(cpu_redis) as redis:
        servers = [
            await start_server(tmp, opts.log_level, _url(redis), secret, cpu, opts.server_loop)
            for cpu in (cpu_a, cpu_b)
        ]
        try:
            cpu = {"A": servers[0].pid, "B": servers[1].pid, "redis": redis.process.pid,
                   "generator": os.getpid()}  # fmt: skip
            where = (
                "core 0"
                if opts.redis_cpus == (0, 0, 0)
                else "cores A{}/B{}/R{}".format(*opts.redis_cpus)
            )
            label = f"call exchanges (2 instances + Redis on {where})"
            return await calls_scenario(opts, tmp, keys, label, servers, cpu, _url(redis))
        finally:
            for srv in servers:
                await srv.stop()


async def loop_ab_scenario(opts: Options, tmp: Path, keys: Keys) -> list[Row]:
    """uvloop against asyncio *at the same time*: two pairs of instances on one
    Redis (A1/B1 on the stdlib loop, A2/B2 on uvloop), each driven at half the
    rate by this one generator, so both arms share whatever else the machine
    runs. The figure to read is each arm's server CPU per exchange.

    ``--code-ab DIR`` runs the same with this checkout's servers against those
    of another checkout (DIR, e.g. a ``git worktree`` of the commit before a
    change), both on the default loop: a change's A/B under one load.
    ``--python-ab PATH`` runs the other pair on another interpreter and
    ``--env-ab KEY=VALUE`` with extra environment (combinable with each other
    and with ``--code-ab``)."""
    secret = tmp / "secret"
    secret.write_bytes(secrets.token_bytes(32))
    secret.chmod(0o600)
    rows: list[Row] = []
    arms: tuple[str, ...] = ("asyncio", "uvloop")
    setups: dict[str, tuple[Any, ...]] = {
        "asyncio": ("asyncio", ROOT),
        "uvloop": ("uvloop", ROOT),
    }
    if opts.pair_ab:
        arms = ("this", "other")
        setups = {
            "this": (opts.server_loop, ROOT),
            "other": (opts.server_loop, opts.code_ab or ROOT, opts.python_ab, opts.env_ab),
        }
    with _redis(opts.redis_cpus[2]) as redis:
        url = _url(redis)
        servers = {
            arm: [
                await start_server(tmp, opts.log_level, url, secret, SERVER_CPU, *setups[arm])
                for _ in range(2)
            ]
            for arm in arms
        }
        try:
            async with http_session() as http:
                pairs = {
                    arm: await open_pairs(http, srv[0].url, srv[1].url, opts.concurrency // 2, keys)
                    for arm, srv in servers.items()
                }
                await asyncio.gather(*(run_calls(pairs[a], 200, 0) for a in arms))  # warm-up
                for rate in opts.rates:
                    results = await asyncio.gather(
                        *(
                            run_calls(
                                pairs[arm],
                                opts.calls // 2,
                                rate / 2,
                                {"A": servers[arm][0].pid, "B": servers[arm][1].pid},
                            )
                            for arm in arms
                        )
                    )
                    for arm, (stats, wall, usage) in zip(arms, results, strict=True):
                        stray = await leftovers(pairs[arm])
                        what = f"{arm} pair, open loop @{rate / 2:.0f}/s (of {rate:.0f})"
                        row = _call_row(what, stats, wall, stray, servers[arm])
                        clean = stats.lost == stats.failed == stats.misrouted + stray == 0
                        row.bar, row.ok = "0 lost", (None if clean else False)
                        row.notes.append(usage)
                        rows.append(row)
                for arm in arms:
                    await close_all([c for pair in pairs[arm] for c in (pair.caller, pair.callee)])
        finally:
            for srv in (s for arm in arms for s in servers[arm]):
                await srv.stop()
    return rows


async def main_async(opts: Options) -> int:
    GEN_PAUSES.install()
    keys = Keys()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hello-load-") as name:
        tmp = Path(name)
        try:
            if opts.idle:
                rows.append(await idle_scenario(opts, tmp, keys))
            ab = opts.loop_ab or opts.pair_ab
            if opts.calls and not opts.redis_only and not ab:
                rows += await single_scenario(opts, tmp, keys)
            if ab:
                rows += await loop_ab_scenario(opts, tmp, keys)
            elif opts.calls and opts.redis:
                rows += await redis_scenario(opts, tmp, keys)
        except BaseException:
            for log in sorted(tmp.glob("server-*.log")):
                print(f"--- {log.name} (last lines)", file=sys.stderr)
                print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
    print(table(rows))
    print()
    for row in rows:
        for note in row.notes:
            print(f"- {row.what}: {note}")
    print(f"- host: {host_line()}")
    return 0 if all(row.ok is not False for row in rows) else 1


def parse(argv: list[str] | None = None) -> Options:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run under 30 s")
    ap.add_argument("--idle", type=int, help="idle authenticated connections (10000)")
    ap.add_argument("--calls", type=int, help="call exchanges per open-loop rate (5000)")
    ap.add_argument("--max-calls", type=int, help="exchanges of the closed-loop run (= --calls)")
    ap.add_argument("--concurrency", type=int, help="caller/callee pairs (128)")
    ap.add_argument(
        "--rates",
        help="open-loop rates to sweep, comma-separated "
        "(500,1000,1500,2000,2500,3000); the first is judged against the bar",
    )
    ap.add_argument("--redis", action="store_true", help="also run two instances behind Redis")
    ap.add_argument(
        "--redis-only", action="store_true", help="only the two-instance Redis scenario"
    )
    ap.add_argument(
        "--redis-cpus",
        default="0,0,0",
        help="cores of instance A, instance B and redis-server (0,0,0: all on the server core)",
    )
    ap.add_argument(
        "--server-log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="(warning)",
    )
    ap.add_argument(
        "--no-pin", action="store_true", help="pin no process to a core (a loaded machine)"
    )
    ap.add_argument(
        "--generator",
        default="native",
        choices=["native", "machine", "lean", "aiohttp"],
        help="the load generator: the timed exchanges in C over connections Python opened "
        "and logged in (native, the default since session 10: bench/loadgen.c, built with "
        "cc), raw frames (bench/rawws.py) checked and answered in Python's read callback "
        "(machine, sessions 8-9), the same frames through a task per side (lean, sessions "
        "6-7) or aiohttp's WebSocket client (the figures before session 6)",
    )
    ap.add_argument(
        "--loop-ab",
        action="store_true",
        help="only this: two instance pairs on one Redis at once, one on asyncio and one "
        "on uvloop, each at half of each --rates rate (both arms under the same load)",
    )
    ap.add_argument(
        "--code-ab",
        type=Path,
        metavar="DIR",
        help="only this: like --loop-ab, this checkout's servers against those of the "
        "checkout at DIR (e.g. a git worktree of the commit before a change)",
    )
    ap.add_argument(
        "--python-ab",
        metavar="PYTHON",
        help="only this: like --code-ab, the other pair's servers on this interpreter "
        "(e.g. a Python 3.13 venv's python with the server's dependencies)",
    )
    ap.add_argument(
        "--env-ab",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only this (repeatable): like --code-ab, the other pair's servers with this "
        "in their environment (e.g. HELLO_TASKS=lazy)",
    )
    ap.add_argument(
        "--server-python",
        metavar="PYTHON",
        help="the servers' interpreter (default: this one); it must import this "
        "checkout's hello_tui and have the server extra installed",
    )
    ap.add_argument(
        "--server-loop",
        default="auto",
        choices=["auto", "uvloop", "asyncio"],
        help="the servers' event loop (`serve --loop`; auto: uvloop when installed)",
    )
    ap.add_argument(
        "--gen-gc",
        default="freeze",
        choices=["freeze", "default"],
        help="the generator's own cyclic GC: its heap frozen before each run (freeze), or "
        "left as Python sets it (default: a full collection stalls it mid-run)",
    )
    ap.add_argument(
        "--redis-nice",
        type=int,
        default=0,
        help="redis-server's nice value (e.g. -5: it runs before the instances and the "
        "generator when several are runnable; needs root for negative values)",
    )
    ap.add_argument(
        "--redis-socket",
        default="tcp",
        choices=["tcp", "unix"],
        help="how the instances reach Redis: loopback TCP (tcp, as from another host) or "
        "its unix socket (unix: a Redis on the instances' host)",
    )
    args = ap.parse_args(argv)
    global PINNING, LEAN, GEN_GC_FREEZE, MACHINE, NATIVE, REDIS_NICE, REDIS_UNIX, SERVER_PYTHON
    SERVER_PYTHON = args.server_python or ""
    REDIS_NICE = args.redis_nice
    REDIS_UNIX = args.redis_socket == "unix"
    if args.no_pin:
        PINNING = False
    GEN_GC_FREEZE = args.gen_gc == "freeze"
    LEAN = args.generator in ("machine", "lean", "native")
    MACHINE = args.generator in ("machine", "native")
    NATIVE = args.generator == "native"
    quick = args.quick
    calls = args.calls if args.calls is not None else (400 if quick else 5000)
    rates = args.rates or ("500" if quick else "500,1000,1500,2000,2500,3000")
    return Options(
        idle=args.idle if args.idle is not None else (300 if quick else 10_000),
        calls=calls,
        concurrency=args.concurrency or (32 if quick else 128),
        rates=[float(r) for r in rates.split(",") if r.strip()],
        redis=args.redis or args.redis_only,
        redis_only=args.redis_only,
        redis_cpus=tuple(int(c) for c in args.redis_cpus.split(",")),  # type: ignore[arg-type]
        log_level=args.server_log_level,
        max_calls=args.max_calls or calls,
        server_loop=args.server_loop,
        loop_ab=args.loop_ab,
        code_ab=args.code_ab.resolve() if args.code_ab else None,
        python_ab=args.python_ab or "",
        env_ab=dict(kv.split("=", 1) for kv in args.env_ab),
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    raise_nofile()
    pin(0, CLIENT_CPU)
    with contextlib.suppress(ImportError):
        import uvloop  # type: ignore[import-not-found]

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(main_async(opts))


if __name__ == "__main__":
    sys.exit(main())
