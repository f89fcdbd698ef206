"""The conversation page: a room URL opened in a browser joins the call.

``GET /r/{token}`` serves one small page (``hello_tui/server/web/``: plain
HTML, CSS and JavaScript shipped in the package, no build step) and
``GET /static/{name}`` its assets (among them xterm.js, vendored under
``web/vendor/``). The page speaks the same WebSocket protocol as the
terminal client (``/ws``) and decrypts the room name itself with the key
from the URL fragment (``#k=…``), which browsers never send: the server
sees the token in the path, never the key, and the name stays ciphertext. See ``docs/browser.md``.

Every response carries a strict Content-Security-Policy (only this origin,
no inline script, no framing), ``Referrer-Policy: no-referrer`` and
``Cache-Control: no-store`` for the page. The page is told whether the room
is live, expired or unknown (``data-room-state``), so a dead link says so
before asking for the microphone, and gets the room's name and context as
the ciphertext they are (``data-room-name``, ``data-room-context``); joining
still reports ``room-expired`` / ``room-full`` / ``unknown-room`` for what
changes later.

The access log would print the request path, i.e. the room token (a
capability: whoever holds it can join). :class:`TokenLogFilter` shortens it to
the same 6-character prefix the server's own log lines use.
"""

from __future__ import annotations

import html
import logging
import re
from importlib import resources
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

import hello_tui

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub

__all__ = [
    "STATIC_FILES",
    "STATIC_PATHS",
    "TokenLogFilter",
    "add_web_routes",
    "content_security_policy",
]

# The only files served under /static/ (no directory listing, no path tricks).
STATIC_FILES = {
    "hello.js": "text/javascript",
    "hello.css": "text/css",
    "icon.svg": "image/svg+xml",
    "xterm.js": "text/javascript",  # vendor/: the shared terminal's emulator (docs/browser.md)
}
# Where a static file lives under web/, when not at its top.
STATIC_PATHS = {"xterm.js": "vendor/xterm.js"}
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_PATH_TOKEN_RE = re.compile(r"(/r/[A-Za-z0-9_-]{6})[A-Za-z0-9_-]+")
_ACCESS_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web")

# Where the WebSocket lives is added per request (ws:// or wss:// of the host).
_CSP = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "media-src 'self' blob: mediastream:",
    "font-src 'none'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "manifest-src 'none'",
    "worker-src 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
)
_COMMON_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": (
        "microphone=(self), camera=(self), geolocation=(), usb=(), payment=(), "
        "display-capture=(), interest-cohort=()"
    ),
}


class TokenLogFilter(logging.Filter):
    """``GET /r/Zb3kQ9xW2mLpT7vRq0aB1c`` → ``GET /r/Zb3kQ9…`` in log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        cleaned = _PATH_TOKEN_RE.sub(r"\1…", message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = TokenLogFilter()


def _ws_origins(request: web.Request, public_url: str) -> list[str]:
    """The WebSocket origin(s) the page may connect to: this host, and the public URL's."""
    scheme = "wss" if request.secure else "ws"
    origins = [f"{scheme}://{request.host}"]
    if public_url:
        parts = urlsplit(public_url)
        ws_scheme = "wss" if parts.scheme == "https" else "ws"
        public = f"{ws_scheme}://{parts.netloc}"
        if parts.netloc and public not in origins:
            origins.append(public)
    return origins


def content_security_policy(request: web.Request, public_url: str = "") -> str:
    connect = " ".join(["connect-src 'self'", *_ws_origins(request, public_url)])
    return "; ".join([*_CSP, connect])


def _read(name: str) -> str:
    return (resources.files("hello_tui.server") / "web" / name).read_text("utf-8")


def add_web_routes(app: web.Application, hub: Hub) -> None:
    """Register ``GET /r/{token}`` and ``GET /static/{name}`` on ``app``."""
    for name in _ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    template = _read("index.html")
    assets = {name: _read(STATIC_PATHS.get(name, name)).encode("utf-8") for name in STATIC_FILES}

    def headers(request: web.Request, cache: str) -> dict[str, str]:
        return {
            **_COMMON_HEADERS,
            "Content-Security-Policy": content_security_policy(request, hub.settings.public_url),
            "Cache-Control": cache,
        }

    async def room_page(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        state, status, name, context = "unknown", 404, "", ""
        if _TOKEN_RE.match(token):
            room = await hub.store.get_room(token)
            if room is not None and room.token == token:
                if hub.store.clock() >= room.expires:
                    state, status = "expired", 410
                else:
                    state, status, name, context = "live", 200, room.name, room.context
        page = (
            template.replace("{{state}}", state)
            .replace("{{name}}", html.escape(name, quote=True))
            .replace("{{context}}", html.escape(context, quote=True))
            .replace("{{version}}", html.escape(hello_tui.__version__, quote=True))
        )
        return web.Response(
            text=page,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers=headers(request, "no-store"),
        )

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            raise web.HTTPNotFound(text="not found")
        return web.Response(
            body=assets[name],
            content_type=STATIC_FILES[name],
            charset="utf-8",
            headers=headers(request, "no-cache"),
        )

    app.router.add_get("/r/{token}", room_page)
    app.router.add_get("/static/{name}", static)
