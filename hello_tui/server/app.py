"""The aiohttp application: ``GET /ws``, ``GET /__heartbeat__``, ``GET /metrics``,
and telemetry: ``POST /telemetry``, ``POST /feedback``, ``POST /crash``, ``GET /stats``.
``/metrics`` and ``/stats`` need the admin token (``server/admin.py``).

``create_app`` builds it around a :class:`Hub` (reachable as ``app[HUB]``);
``serve`` runs it until stopped, for ``hello-tui serve``.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from hello_tui.server.admin import refusal
from hello_tui.server.forwarded import client_address
from hello_tui.server.gcpauses import PAUSES, gc_tuning
from hello_tui.server.hub import Hub
from hello_tui.server.origin import own_origins
from hello_tui.server.privacy import install_log_privacy, log, truncate_ip
from hello_tui.server.session import Session
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store import Store
from hello_tui.server.store.base import redact_store_url
from hello_tui.server.telemetry import TelemetryAggregator, log_crash
from hello_tui.server.web_routes import add_web_routes
from hello_tui.signaling import protocol as p
from hello_tui.signaling.protocol import MAX_MESSAGE_BYTES, canonical_origin

HUB = web.AppKey("hub", Hub)
TELEMETRY = web.AppKey("telemetry", TelemetryAggregator)
# Frames up to twice the protocol limit are read and answered "too-big";
# beyond that aiohttp closes the connection with 1009 (message too big).
WS_MAX_MSG_SIZE = 2 * MAX_MESSAGE_BYTES


def origin_allowed(request: web.Request, settings: ServerSettings) -> bool:
    """Terminal clients send no Origin; browsers must be this server (as
    ``own_origins`` knows it, never from the Host header, which a DNS-rebinding
    page controls) or listed in ``allowed_origins``."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin.lower() in (o.lower() for o in settings.allowed_origins):
        return True
    try:
        return canonical_origin(origin) in own_origins(request, settings)
    except ValueError:  # "null" (a sandboxed page, a file) or garbage
        return False


async def websocket(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    settings = hub.settings
    if not origin_allowed(request, settings):
        raise web.HTTPForbidden(text="origin not allowed")
    # The raw address goes no further than these lines: the network's keyed
    # hash counts connections and quotas, the truncated form goes to logs.
    address = client_address(request, settings.trusted_proxies)
    network = hub.quotas.network(address)
    peer = truncate_ip(address)
    # Slots are taken before the upgrade awaits, so a burst of handshakes
    # cannot overshoot either cap.
    if settings.max_connections and hub.connections >= settings.max_connections:
        raise web.HTTPServiceUnavailable(text="server full: too many connections, try later")
    if settings.max_connections_per_ip and hub.connections_by_network[network] >= (
        settings.max_connections_per_ip
    ):
        raise web.HTTPTooManyRequests(text="too many connections from this network")
    hub.connections += 1
    hub.connections_by_network[network] += 1
    try:
        ws = web.WebSocketResponse(heartbeat=settings.heartbeat, max_msg_size=WS_MAX_MSG_SIZE)
        await ws.prepare(request)
        base_url = settings.public_url.rstrip("/") or f"{request.scheme}://{request.host}"
        session = Session(hub, ws, base_url, peer, network)
        session.login_origins = own_origins(request, settings)
        hub.sessions[session.id] = session
        hub.metrics.connections += 1
        hub.metrics.connections_total += 1
        try:
            await session.run()
        finally:
            hub.sessions.pop(session.id, None)
            hub.metrics.connections -= 1
    finally:
        hub.connections -= 1
        hub.connections_by_network[network] -= 1
        if hub.connections_by_network[network] <= 0:
            del hub.connections_by_network[network]
    return ws


async def heartbeat(request: web.Request) -> web.Response:
    """200 if the store answers (load balancers and monitors poll this)."""
    try:
        healthy = await asyncio.wait_for(request.app[HUB].store.ping(), timeout=2.0)
    except Exception:
        healthy = False
    body = {"status": "ok" if healthy else "down"}
    return web.json_response(body, status=200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    if (refused := refusal(request, request.app[HUB].settings.admin_token)) is not None:
        return refused
    await request.app[TELEMETRY].refresh()  # its published aggregates are in here too
    body, content_type = request.app[HUB].metrics.render(request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


# ---------------------------------------------------------------- telemetry
# Each kind's decoder and size cap; _intake hands the report to that kind's sink.
_DECODERS: dict[str, tuple[msgspec.json.Decoder[Any], int]] = {
    "call": (msgspec.json.Decoder(p.CallReport), p.MAX_TELEMETRY_BYTES),
    "feedback": (msgspec.json.Decoder(p.FeedbackReport), p.MAX_TELEMETRY_BYTES),
    "crash": (msgspec.json.Decoder(p.CrashReport), p.MAX_CRASH_BYTES),
}


def _refuse(status: int, message: str) -> web.Response:
    # One line: msgspec's messages are single-line, but make sure of it.
    return web.json_response({"error": " ".join(message.split())}, status=status)


async def _intake(request: web.Request, kind: str) -> web.Response:
    # The address is truncated before anything else happens: nothing below,
    # logs included, ever sees the raw one.
    network = truncate_ip(client_address(request, request.app[HUB].settings.trusted_proxies))
    # JSON only: a cross-site form (text/plain, urlencoded, multipart) needs no
    # CORS preflight, application/json does, and this server answers none.
    if request.content_type != "application/json":
        return _refuse(415, "Content-Type must be application/json")
    decoder, limit = _DECODERS[kind]
    if request.content_length is not None and request.content_length > limit:
        return _refuse(413, f"body over {limit} bytes")
    try:  # aiohttp caps any body at client_max_size (1 MiB); a slow one is cut off
        async with asyncio.timeout(request.app[HUB].settings.body_timeout):
            body = await request.read()
    except TimeoutError:
        return _refuse(408, "body too slow")
    if len(body) > limit:
        return _refuse(413, f"body over {limit} bytes")
    try:
        report = decoder.decode(body)
    except msgspec.DecodeError as exc:
        return _refuse(400, f"bad {kind} report: {exc}")
    await request.app[TELEMETRY].ingest(report, network)
    if kind == "crash":
        log_crash(report)
    return web.json_response({"status": "ok"}, status=202)


async def post_telemetry(request: web.Request) -> web.Response:
    return await _intake(request, "call")


async def post_feedback(request: web.Request) -> web.Response:
    return await _intake(request, "feedback")


async def post_crash(request: web.Request) -> web.Response:
    return await _intake(request, "crash")


async def stats(request: web.Request) -> web.Response:
    """Noisy aggregates of closed periods (``server/telemetry.py``), for the admin only."""
    if (refused := refusal(request, request.app[HUB].settings.admin_token)) is not None:
        return refused
    telemetry = request.app[TELEMETRY]
    await telemetry.refresh()
    return web.json_response(telemetry.stats())


def create_app(
    settings: ServerSettings | None = None,
    store: Store | None = None,
    *,
    telemetry: TelemetryAggregator | None = None,
) -> web.Application:
    """The server as an aiohttp app (tests run it under ``TestServer``).

    ``telemetry``: the aggregator of reports (default: one with the settings'
    period and epsilon); pass one built with ``country_of=`` to count
    countries from a GeoIP database."""
    install_log_privacy()
    hub = Hub(settings or ServerSettings(), store)
    app = web.Application()
    app[HUB] = hub
    if telemetry is None:
        period, epsilon = hub.settings.telemetry_period, hub.settings.telemetry_epsilon
        telemetry = TelemetryAggregator(period=period, epsilon=epsilon)
        if hub.store.shared_quotas:  # several instances on Redis: one period, one set of sums
            from hello_tui.server.store.redis import RedisStore
            from hello_tui.server.telemetry_shared import SharedTelemetry

            if isinstance(hub.store, RedisStore):
                telemetry = SharedTelemetry(hub.store, period=period, epsilon=epsilon)
    app[TELEMETRY] = telemetry
    hub.metrics.register(telemetry)  # its published aggregates, in /metrics too
    app.router.add_get("/ws", websocket)
    app.router.add_get("/__heartbeat__", heartbeat)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/telemetry", post_telemetry)
    app.router.add_post("/feedback", post_feedback)
    app.router.add_post("/crash", post_crash)
    app.router.add_get("/stats", stats)
    add_web_routes(app, hub)  # the conversation page: GET /r/{token}, /static/*

    async def on_startup(_: web.Application) -> None:
        await hub.start()

    async def on_shutdown(_: web.Application) -> None:
        await hub.shutdown()

    async def on_cleanup(_: web.Application) -> None:
        await hub.close()

    async def no_sniffing(_: web.Request, response: web.StreamResponse) -> None:
        # Browsers must take JSON and text for what they are, never guess HTML.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")

    app.on_response_prepare.append(no_sniffing)
    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def runner_options(settings: ServerSettings) -> dict[str, Any]:
    """``AppRunner`` options from the settings (``serve`` and the tests use these).

    Slow-loris: aiohttp has no separate header-read timeout, but its keep-alive
    timer starts when a connection opens and again after each response, is not
    pushed back by partial data, and closes the connection if no complete
    request head has arrived when it fires. So ``keepalive_timeout`` *is* the
    header timeout (aiohttp's default would be 3,630 s). A WebSocket or a
    request being handled is not idle, so the timer leaves it alone.

    A request refused before its body was read (413, a slow body's 408) leaves
    the connection reading and dropping the rest of the body so the client sees
    the answer: 1 s of that, not aiohttp's 10 s a slow-loris could hold.
    """
    return {
        "handle_signals": False,
        "keepalive_timeout": settings.header_timeout,
        "lingering_time": 1.0,
    }


def _tls(settings: ServerSettings) -> ssl.SSLContext | None:
    if not settings.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    return context


async def serve(
    settings: ServerSettings,
    ready: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    store: Store | None = None
    if settings.redis_url:
        from hello_tui.server.store.redis import RedisStore

        store = RedisStore(settings.redis_url)
        if not await store.ping():
            await store.close()
            raise ConnectionError(f"cannot reach Redis at {redact_store_url(settings.redis_url)}")
    elif settings.state_file is not None:
        from hello_tui.server.store.persistent import PersistentMemoryStore

        store = PersistentMemoryStore(settings.state_file)
    runner = web.AppRunner(
        create_app(settings, store), **runner_options(settings), shutdown_timeout=5.0
    )
    await runner.setup()
    tls = _tls(settings)
    site = web.TCPSite(
        runner, settings.host, settings.port, ssl_context=tls, backlog=settings.listen_backlog
    )
    try:
        await site.start()
        host, port = runner.addresses[0][:2]
        scheme = "https" if tls else "http"
        shown = f"[{host}]" if ":" in host else host
        log.info("listening on port %d", port)
        PAUSES.install()
        gc_tuning()
        ready(f"{scheme}://{shown}:{port}")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        PAUSES.uninstall()
        await runner.cleanup()
