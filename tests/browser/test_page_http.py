"""The conversation page over plain HTTP: routes, headers, CSP, what is shipped."""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from importlib import resources

import aiohttp
import pytest

from hello_tui.server.web_routes import STATIC_FILES, STATIC_PATHS, TokenLogFilter
from tests.browser.conftest import Env, StartEnv


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


async def get(env: Env, path: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(env.url(path)) as resp:
        return resp.status, dict(resp.headers), await resp.text()


def csp_of(headers: dict[str, str]) -> dict[str, str]:
    policy = headers["Content-Security-Policy"]
    return {d.split()[0]: d.split(None, 1)[1] for d in (p.strip() for p in policy.split(";")) if d}


async def test_room_page_headers_and_markup(env: Env) -> None:
    room = await env.room("Secret plans")
    status, headers, html = await get(env, f"/r/{room.token}")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Frame-Options"] == "DENY"
    assert "microphone=(self)" in headers["Permissions-Policy"]
    csp = csp_of(headers)
    host = env.url("/").split("//", 1)[1].rstrip("/")
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval', no CDN
    assert csp["style-src"] == "'self'"
    assert csp["connect-src"] == f"'self' ws://{host}"
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'" and csp["form-action"] == "'none'"
    assert "unsafe" not in headers["Content-Security-Policy"]

    # The page carries the ciphertext (as room-joined would), never a plain name.
    assert "Secret plans" not in html
    parser = _Tags()
    parser.feed(html)
    body = next(attrs for tag, attrs in parser.tags if tag == "body")
    assert body["data-room-state"] == "live"
    assert body["data-room-name"] and body["data-room-name"] != "{{name}}"
    # No inline script or style, no event-handler attributes, nothing from elsewhere.
    assert parser.script_text == ""
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for attr in ("src", "href", "action"):
            value = attrs.get(attr)
            assert value is None or value.startswith("/static/"), (tag, attr, value)
    scripts = [a["src"] for t, a in parser.tags if t == "script"]
    assert scripts == ["/static/xterm.js", "/static/hello.js"]


async def test_page_carries_the_context_as_ciphertext(env: Env) -> None:
    from hello_tui.signaling.roomcrypt import RoomContext
    from tests.browser.test_v2_page import context_room

    room = await context_room(
        env, "Ctx", RoomContext("Secret agenda", "https://example.org/secret"), ttl=60
    )
    status, _, html = await get(env, f"/r/{room.token}")
    assert status == 200
    assert "Secret agenda" not in html and "example.org" not in html
    parser = _Tags()
    parser.feed(html)
    body = next(attrs for tag, attrs in parser.tags if tag == "body")
    stored = await env.store.get_room(room.token)
    assert stored is not None and stored.context
    assert body["data-room-context"] == stored.context
    assert not [tag for tag, _ in parser.tags if tag == "a"]  # the page holds no links
    env.clock.advance(61)
    _, _, html = await get(env, f"/r/{room.token}")
    assert 'data-room-context=""' in html  # an expired room says nothing more


async def test_page_states_for_unknown_and_expired_rooms(env: Env) -> None:
    status, headers, html = await get(env, "/r/NoSuchRoomToken1234567")
    assert status == 404 and 'data-room-state="unknown"' in html
    assert headers["Referrer-Policy"] == "no-referrer"
    status, _, html = await get(env, "/r/bad$token")
    assert status == 404 and 'data-room-state="unknown"' in html
    room = await env.room(ttl=60)
    env.clock.advance(61)
    status, _, html = await get(env, f"/r/{room.token}")
    assert status == 410 and 'data-room-state="expired"' in html
    assert 'data-room-name=""' in html


async def test_static_files_only_the_listed_ones(env: Env) -> None:
    for name, kind in STATIC_FILES.items():
        status, headers, text = await get(env, f"/static/{name}")
        assert status == 200, name
        assert headers["Content-Type"].startswith(kind)
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" in headers
        assert text
    for path in ("/static/index.html", "/static/..%2Fweb_routes.py", "/static/", "/static/x.js"):
        status, _, _ = await get(env, path)
        assert status == 404, path


def test_assets_are_package_data() -> None:
    web = resources.files("hello_tui.server") / "web"
    for name in ("index.html", *STATIC_FILES):
        assert (web / STATIC_PATHS.get(name, name)).is_file(), name
    assert (web / "vendor" / "LICENSE.xterm").is_file()  # MIT: its licence ships with it
    js = (web / "hello.js").read_text("utf-8")
    # Nothing fetched from elsewhere, nothing evaluated, no HTML injected.
    assert not re.search(r"(?:https?|wss?)://\w", js)
    for banned in ("eval(", "new Function", "innerHTML", "outerHTML", "document.write"):
        assert banned not in js, banned
    # The vendored emulator too: nothing the CSP (no eval, Trusted Types 'none') refuses.
    xterm = (web / "vendor" / "xterm.js").read_text("utf-8")
    for banned in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML"):
        assert banned not in xterm, banned


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"GET /r/Zb3kQ9xW2mLpT7vRq0aB1c HTTP/1.1" 200', '"GET /r/Zb3kQ9… HTTP/1.1" 200'),
        ('"GET /static/hello.js HTTP/1.1" 200', '"GET /static/hello.js HTTP/1.1" 200'),
    ],
)
def test_access_log_shortens_room_tokens(line: str, expected: str) -> None:
    record = logging.LogRecord("aiohttp.access", logging.INFO, __file__, 1, line, None, None)
    assert TokenLogFilter().filter(record)
    assert record.getMessage() == expected


async def test_public_url_websocket_is_allowed_by_the_csp(start_env: StartEnv) -> None:
    env = await start_env(public_url="https://hello.example.org")
    room = await env.room()
    _, headers, _ = await get(env, f"/r/{room.token}")
    assert csp_of(headers)["connect-src"].endswith(" wss://hello.example.org")


def test_missing_chromium_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """No silent skip: without Chromium the browser tests fail and say what to run."""
    from tests.browser import conftest

    monkeypatch.setattr(conftest.shutil, "which", lambda _name: None)
    monkeypatch.setattr(conftest, "CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception, match=r"run \./dev\.sh test"):
        conftest.chromium_path()
