"""Everything an operator can tune, in one frozen dataclass.

Defaults follow Firefox Hello's loop-server (supervisory 10 s, ringing 30 s,
connection 10 s, rooms kept 8 weeks after their last use). Tests shrink the
timers; the CLI maps its flags onto these fields.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

WEEK = 7 * 24 * 3600
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Configuration of one server instance (all durations in seconds)."""

    host: str = "127.0.0.1"
    port: int = 5000
    registration: Literal["open", "invite-only"] = "open"
    # Base of room URLs ("https://hello.example.org"); empty: derived from the request.
    public_url: str = ""
    # Other URLs this server is reached by (a second DNS name, an onion address):
    # logins signed for them are accepted too (server/origin.py).
    aliases: tuple[str, ...] = ()
    # Key of the identity HMAC. Random per process unless loaded with load_secret().
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(SECRET_BYTES), repr=False)
    # True when ``secret`` is the operator's (--secret-file), the same on every
    # instance: per-network quotas then count in a shared store (server/quotas.py).
    shared_secret: bool = False
    # Where the invite file lives; None: invites only in memory (tests, embedded).
    data_dir: Path | None = None

    # Call timers (Firefox Hello's names and defaults).
    supervisory_timeout: float = 10.0  # call created → a callee device answered "ringing"
    ring_timeout: float = 30.0  # ringing → accept
    connection_timeout: float = 10.0  # accept → "connected"
    call_ttl: float = 24 * 3600.0  # store TTL of a connected call (a crashed instance's leftovers)
    # With a shared store (Redis): how often each instance looks for due timers,
    # and how long a claimed timer waits before another instance may retry it.
    timer_poll: float = 0.1
    timer_lease: float = 5.0
    # An instance that has not beaten for this long is dead: a survivor forgets
    # its sessions and ends their connected calls (server/reaper.py). Each
    # instance beats five times per period.
    instance_timeout: float = 15.0

    # Rooms.
    room_ttl: int = 8 * WEEK  # default lifetime, refreshed by every join
    room_max_ttl: int = 8 * WEEK  # a client may ask for less, never more
    room_expired_grace: int = 3600  # an expired room answers "room-expired" this long, then goes
    max_rooms_per_owner: int = 100  # live rooms of one account (or one anonymous connection)
    anonymous_room_ttl: int = 24 * 3600  # an anonymous creator's room: short-lived
    knock_timeout: float = 300.0  # a knock-to-enter visitor waits this long in the lobby
    max_lobby: int = 8  # visitors knocking at one room at a time (more: room-full)
    # A paired participant whose connection dropped keeps its seat this long: its
    # client reconnects and takes it back (room-join ``seat``), the call goes on.
    room_seat_grace: float = 20.0

    # Accounts and presence.
    account_ttl: int = 2 * 365 * 24 * 3600  # an account unused (no login) this long is forgotten
    invite_ttl: int = 30 * 24 * 3600
    presence_ttl: float = 120.0  # device and session records; refreshed while connected
    sweep_interval: float = 30.0  # drop expired records, refresh live ones

    # Connections.
    heartbeat: float = 30.0  # WebSocket ping interval; a peer missing the pong is dropped
    rate: float = 20.0  # messages per second per connection (token bucket refill)
    burst: int = 60  # bucket size
    max_connections_per_ip: int = 100  # per network (IPv4 address, IPv6 /64); 0: no cap
    max_connections: int = 20_000  # WebSocket sessions of this instance; 0: no cap
    # Pending TCP connections the kernel queues for accept (capped by
    # net.core.somaxconn). aiohttp's default, 128, is small for the clients of
    # a lost instance coming back at once (thousands): an overflowing queue
    # drops handshakes, which then wait for TCP retransmits (seconds).
    listen_backlog: int = 4096
    hello_timeout: float = 10.0  # a connection that sends no hello by then is closed
    # HTTP: a request's head (request line and headers) must arrive within this
    # of the connection opening or of the previous response (aiohttp's
    # keep-alive timer, which partial data does not extend); a body within
    # body_timeout of its handler starting to read it.
    header_timeout: float = 10.0
    body_timeout: float = 10.0

    # Quotas per client network (an IPv4 address or an IPv6 /64, counted under a
    # keyed hash: in memory, or in Redis for all instances: server/quotas.py)
    # and per owner. 0: no quota.
    quota_window: float = 3600.0  # the window of the counted-per-window quotas
    registrations_per_network: int = 10  # accounts registered per window
    rooms_per_network: int = 60  # rooms created per window (accounts and anonymous)
    anonymous_rooms_per_network: int = 20  # live rooms made by anonymous connections
    pending_calls_per_network: int = 20  # calls placed and not yet answered or ended
    pending_calls_per_caller: int = 5  # the same, per account (or anonymous connection)
    max_held_offer: int = 16 * 1024  # bytes of SDP held for an unanswered call
    allowed_origins: tuple[str, ...] = ()  # browser origins besides the server's own
    send_queue: int = 1024  # messages waiting for a slow reader before it is dropped
    # Reverse proxies (addresses or networks) whose X-Forwarded-For names the
    # client (server/forwarded.py); from any other peer the header is ignored.
    trusted_proxies: tuple[str, ...] = ()
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Empty: state in this process (MemoryStore). A redis:// URL: RedisStore, shared
    # by every instance pointing at it (they must share the secret too).
    redis_url: str = ""
    # With MemoryStore: save accounts and rooms here so a restart keeps them (never calls).
    state_file: Path | None = None
    # TURN REST API (coturn use-auth-secret): with a secret and URLs, logged-in
    # sessions get time-limited credentials in ``logged-in``. No hidden defaults.
    turn_secret: bytes = field(default=b"", repr=False)
    turn_urls: tuple[str, ...] = ()
    turn_ttl: int = 2 * 3600  # not revocable: the lifetime is the limit (server/turn.py)
    # Room visitors (anonymous too) ask per room (server/room_turn.py): shorter-lived,
    # rationed per room and per network within quota_window. 0: no limit.
    room_turn_ttl: int = 3600
    room_turn_per_room: int = 8
    room_turn_per_network: int = 30
    # Direct calls refresh the login's credentials (call-turn): per account per quota_window.
    call_turn_per_account: int = 60
    # Service accounts (the echo peer): names nobody may register, and the keys
    # the services log in with — HMAC(secret, name) (``accounts.name_key``) →
    # raw Ed25519 public key, base64url. A service generates its key at start
    # and the server is given it here (``accounts.with_service``); nothing is
    # written anywhere.
    reserved_names: tuple[str, ...] = ("echo",)
    service_keys: dict[str, str] = field(default_factory=dict, repr=False)
    # Telemetry and monitoring (docs/telemetry.md): /stats and /metrics need
    # ``Authorization: Bearer <admin_token>``; empty: both answer 403.
    admin_token: bytes = field(default=b"", repr=False)
    telemetry_period: int = 24 * 3600  # aggregates are published when a period closes
    telemetry_epsilon: float = 1.0  # privacy budget of each published count (Laplace noise)

    @property
    def invites_file(self) -> Path | None:
        return self.data_dir / "invites" if self.data_dir else None


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """Read the HMAC secret from ``path``, creating it (0600, random) if missing.

    A stable secret keeps account keys valid across restarts; losing it makes
    every stored identity unreachable, which is the intended failure mode.
    """
    target = Path(path)
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
        data = secrets.token_bytes(SECRET_BYTES)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    check_private(target, "the server secret")
    if len(data) < 16:
        raise ValueError(f"{target}: secret too short (need at least 16 bytes)")
    return data


def check_private(path: Path, what: str) -> None:
    """Refuse a secret that other users can read (as ssh refuses such a key):
    whoever reads it can recompute every identity hash or mint credentials."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ValueError(
            f"{path}: {what} is readable by other users (mode {mode:04o}); run: chmod 600 {path}"
        )
