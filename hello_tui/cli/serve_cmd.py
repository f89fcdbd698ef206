"""``hello-tui serve`` (the rendezvous server) and ``hello-tui serve invite``.

Only the stdlib and hello_tui.cli are imported at module level, so building
the parser (``hello-tui --help``) never loads aiohttp; the server is imported
inside the handlers. Invite codes reach a running server through a file of
SHA-256 digests in the server's data directory, which the server consumes
from (see docs/server.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

from hello_tui.cli.errors import CliError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(text: str) -> int:
    """``3600``, ``90m``, ``12h``, ``30d`` or ``8w`` → seconds."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhdw]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 3600, 12h, 30d, 8w)")
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


MAX_EPSILON = 10.0  # beyond this the noise protects nobody; no flag turns it off


def _epsilon(text: str) -> float:
    """A finite privacy budget in (0, 10]: the command line cannot switch the noise off."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_EPSILON:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(
            f"invalid epsilon {text!r} (a number above 0, at most {MAX_EPSILON:g})"
        )
    return value


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="server data (invite digests); default: the profile's data dir + /server",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``hello-tui serve``; defaults live in ServerSettings."""
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=5000, help="TCP port (5000); 0 picks a free one and prints it"
    )
    p.add_argument(
        "--invite-only",
        action="store_true",
        help="registration needs a one-time code from 'hello-tui serve invite'",
    )
    p.add_argument(
        "--public-url",
        default="",
        metavar="URL",
        help="how clients reach this server, e.g. https://host: the base of room URLs and "
        "the origin logins are signed for (needed behind a proxy or for a DNS name)",
    )
    p.add_argument(
        "--alias",
        action="append",
        default=[],
        metavar="URL",
        help="another URL clients reach this server by (repeatable)",
    )
    p.add_argument(
        "--secret-file",
        metavar="PATH",
        help="identity HMAC key (created 0600 if missing); default: DATA_DIR/secret",
    )
    p.add_argument(
        "--no-echo",
        action="store_true",
        help="do not run the echo peer (by default it runs in a child process)",
    )
    p.add_argument(
        "--ephemeral",
        action="store_true",
        help="keep nothing on disk: random secret, accounts and rooms lost on exit",
    )
    _data_dir(p)
    p.add_argument("--ring-timeout", type=float, metavar="SECONDS", help="ringing timer (30)")
    p.add_argument(
        "--supervisory-timeout",
        type=float,
        metavar="SECONDS",
        help="time for a callee device to answer 'ringing' (10)",
    )
    p.add_argument(
        "--connection-timeout",
        type=float,
        metavar="SECONDS",
        help="accept to 'connected', else media-fail (10)",
    )
    p.add_argument(
        "--room-ttl", type=_duration, metavar="DURATION", help="room lifetime after last join (8w)"
    )
    p.add_argument(
        "--max-connections-per-ip",
        type=int,
        metavar="N",
        help="WebSockets per IPv4 address or IPv6 /64; 0 disables the cap (100)",
    )
    p.add_argument(
        "--max-connections", type=int, metavar="N", help="WebSockets in all; 0: no cap (20000)"
    )
    p.add_argument(
        "--hello-timeout",
        type=float,
        metavar="SECONDS",
        help="close a connection that sends no hello by then (10)",
    )
    p.add_argument(
        "--header-timeout",
        type=float,
        metavar="SECONDS",
        help="an HTTP request's head must arrive within this (10; slow-loris)",
    )
    p.add_argument(
        "--anonymous-room-ttl",
        type=_duration,
        metavar="DURATION",
        help="lifetime of a room made without an account (24h)",
    )
    p.add_argument(
        "--instance-timeout",
        type=float,
        metavar="SECONDS",
        help="with --redis: an instance silent this long is dead, its sessions forgotten (15)",
    )
    quotas = p.add_argument_group(
        "quotas per client network (IPv4 address or IPv6 /64); 0 disables one"
    )
    quotas.add_argument(
        "--registrations-per-network", type=int, metavar="N", help="accounts per hour (10)"
    )
    quotas.add_argument(
        "--rooms-per-network", type=int, metavar="N", help="rooms created per hour (60)"
    )
    quotas.add_argument(
        "--anonymous-rooms-per-network",
        type=int,
        metavar="N",
        help="live rooms made without an account (20)",
    )
    quotas.add_argument(
        "--pending-calls-per-network",
        type=int,
        metavar="N",
        help="calls placed and not yet answered (20)",
    )
    p.add_argument(
        "--rate", type=float, metavar="PER_SECOND", help="messages/s per connection (20)"
    )
    p.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="browser origin allowed besides the server's own (repeatable)",
    )
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="a reverse proxy (address or network, repeatable) whose X-Forwarded-For "
        "names the client; from any other peer the header is ignored",
    )
    p.add_argument("--tls-cert", metavar="PEM", help="serve wss:// with this certificate chain")
    p.add_argument("--tls-key", metavar="PEM", help="private key for --tls-cert")
    p.add_argument(
        "--turn-url",
        action="append",
        default=[],
        metavar="URL",
        help="TURN server for logged-in clients (turn:HOST:PORT; repeat for several)",
    )
    p.add_argument(
        "--turn-secret-file",
        metavar="PATH",
        help="the TURN server's shared secret (coturn static-auth-secret): "
        "clients get time-limited credentials",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        help="share state with other instances through Redis (redis://HOST:PORT/DB); "
        "needs --secret-file with the same secret on every instance",
    )
    p.add_argument(
        "--admin-token-file",
        metavar="PATH",
        help="token (one line, mode 0600) that /stats and /metrics require as "
        "'Authorization: Bearer TOKEN'; without it both answer 403",
    )
    p.add_argument(
        "--telemetry-epsilon",
        type=_epsilon,
        metavar="EPSILON",
        help="privacy budget of each published telemetry count: Laplace noise of "
        "scale 3/EPSILON (1.0; smaller is noisier)",
    )
    p.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="(info)"
    )
    p.add_argument(
        "--loop",
        choices=["auto", "uvloop", "asyncio"],
        default=None,
        help="event loop: uvloop when installed (auto), or insist on one; "
        "default: $HELLO_LOOP, else auto",
    )


def args_invite(p: argparse.ArgumentParser) -> None:
    p.add_argument("-n", "--count", type=int, default=1, help="how many codes (1)")
    p.add_argument(
        "--ttl", type=_duration, default=30 * 86400, metavar="DURATION", help="validity (30d)"
    )
    _data_dir(p)
    p.add_argument(
        "--redis",
        metavar="URL",
        help="put the codes in this Redis (the one the instances share) instead of the data dir",
    )


def _resolve_data_dir(args: argparse.Namespace) -> Path:
    if args.data_dir:
        return Path(args.data_dir).expanduser()
    from hello_tui.config.paths import resolve_paths

    paths = resolve_paths(getattr(args, "config", None), getattr(args, "profile", None))
    return paths.data_dir / "server"


def _read_turn_secret(path: str | None) -> bytes:
    if not path:
        return b""
    from hello_tui.server.settings import check_private

    try:
        secret = Path(path).expanduser().read_bytes().strip()
        check_private(Path(path).expanduser(), "the TURN secret")
    except OSError as exc:
        raise CliError(f"{path}: cannot read the TURN secret: {exc.strerror}") from None
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if not secret:
        raise CliError(f"{path}: the TURN secret is empty")
    return secret


def _read_admin_token(path: str | None) -> bytes:
    if not path:
        return b""
    from hello_tui.server.admin import load_admin_token

    try:
        return load_admin_token(path)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio
    import dataclasses
    import logging
    import os

    from hello_tui.echo.service import serve_with_echo
    from hello_tui.server.settings import ServerSettings, load_secret

    if bool(args.tls_cert) != bool(args.tls_key):
        raise CliError("--tls-cert and --tls-key go together")
    if bool(args.turn_url) != bool(args.turn_secret_file):
        raise CliError("--turn-url and --turn-secret-file go together")
    for url in args.turn_url:
        if not url.startswith(("turn:", "turns:")):
            raise CliError(f"--turn-url: expected a turn: or turns: URL, got {url!r}")
    if args.ephemeral and (args.secret_file or args.redis):
        raise CliError("--ephemeral keeps nothing: it excludes --secret-file and --redis")
    if args.redis and not args.secret_file:
        raise CliError("--redis needs --secret-file (every instance must share the secret)")
    if args.redis and not args.redis.startswith(("redis://", "rediss://", "unix://")):
        raise CliError(
            f"--redis: expected a redis://, rediss:// or unix:// URL, got {args.redis!r}"
        )
    from urllib.parse import urlsplit

    from hello_tui.server.forwarded import trusted_networks
    from hello_tui.signaling.urls import canonical_origin

    try:
        trusted_networks(tuple(args.trusted_proxy))
    except ValueError as exc:
        raise CliError(f"--trusted-proxy: {exc}") from None

    for flag, url in [("--public-url", args.public_url)] + [("--alias", a) for a in args.alias]:
        if not url:
            continue
        try:
            canonical_origin(url)
        except ValueError:
            raise CliError(f"{flag} {url!r}: expected http://HOST[:PORT] or https://…") from None
        if urlsplit(url).scheme not in ("http", "https"):
            raise CliError(f"{flag} {url!r}: expected an http:// or https:// URL")
    if args.redis and importlib.util.find_spec("redis") is None:  # the `server` extra
        raise CliError("--redis needs the Redis client: pip install 'hello-tui[server]'")
    overrides = {
        "ring_timeout": args.ring_timeout,
        "supervisory_timeout": args.supervisory_timeout,
        "connection_timeout": args.connection_timeout,
        "room_ttl": args.room_ttl,
        "max_connections_per_ip": args.max_connections_per_ip,
        "max_connections": args.max_connections,
        "hello_timeout": args.hello_timeout,
        "header_timeout": args.header_timeout,
        "anonymous_room_ttl": args.anonymous_room_ttl,
        "registrations_per_network": args.registrations_per_network,
        "rooms_per_network": args.rooms_per_network,
        "anonymous_rooms_per_network": args.anonymous_rooms_per_network,
        "pending_calls_per_network": args.pending_calls_per_network,
        "rate": args.rate,
        "telemetry_epsilon": args.telemetry_epsilon,
        "instance_timeout": args.instance_timeout,
    }
    for name, value in overrides.items():
        if value is not None and value < 0:
            raise CliError(f"--{name.replace('_', '-')}: must be 0 or more, got {value:g}")
    data_dir = _resolve_data_dir(args)
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        registration="invite-only" if args.invite_only else "open",
        public_url=args.public_url,
        aliases=tuple(args.alias),
        data_dir=data_dir,
        allowed_origins=tuple(args.allowed_origin),
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        redis_url=args.redis or "",
        trusted_proxies=tuple(args.trusted_proxy),
        turn_urls=tuple(args.turn_url),
        turn_secret=_read_turn_secret(args.turn_secret_file),
        admin_token=_read_admin_token(args.admin_token_file),
    )
    settings = dataclasses.replace(
        settings, **{k: v for k, v in overrides.items() if v is not None}
    )
    if settings.room_ttl > settings.room_max_ttl:
        settings = dataclasses.replace(settings, room_max_ttl=settings.room_ttl)
    secret_file = args.secret_file
    if not secret_file and not args.ephemeral:
        # Accounts must survive a restart: a stable secret and a state file by default.
        secret_file = data_dir / "secret"
        if not args.redis:
            settings = dataclasses.replace(settings, state_file=data_dir / "state")
    if secret_file:
        try:
            settings = dataclasses.replace(
                settings, secret=load_secret(secret_file), shared_secret=True
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def ready(url: str) -> None:
        print(f"hello-tui server listening on {url}", flush=True)
        logging.getLogger("hello_tui.server").info(
            "event loop: %s", loop_name(asyncio.get_running_loop())
        )

    from hello_tui.server.eventloop import ENV, loop_factory, loop_name
    from hello_tui.server.store.persistent import StateFileError

    try:
        factory = loop_factory(args.loop or os.environ.get(ENV) or "auto")
    except ValueError as exc:
        raise CliError(f"--loop: {exc}") from None

    try:
        # The echo peer (anyone may call "echo") runs beside the server, as a client.
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(
                serve_with_echo(settings, ready=ready, echo="off" if args.no_echo else "process")
            )
    except StateFileError as exc:
        raise CliError(str(exc)) from None
    return 0


def cmd_invite(args: argparse.Namespace) -> int:
    from hello_tui.server.invites import InviteBook

    if not 1 <= args.count <= 1000:
        raise CliError("--count must be between 1 and 1000")
    if args.redis:
        if not args.redis.startswith(("redis://", "rediss://", "unix://")):
            raise CliError(f"--redis: expected a redis:// URL, got {args.redis!r}")
        if importlib.util.find_spec("redis") is None:
            raise CliError("--redis needs the Redis client: pip install 'hello-tui[server]'")
        from hello_tui.server.store.redis import InviteStoreError, mint_in_redis

        try:
            codes = mint_in_redis(args.redis, args.count, args.ttl)
        except InviteStoreError as exc:
            raise CliError(f"cannot store the codes in Redis: {exc}") from None
    else:
        codes = InviteBook(_resolve_data_dir(args) / "invites").create(args.count, args.ttl)
    for code in codes:
        print(code)
    return 0
