"""The status line tells the connection as the client pushes it: a real server
stopped and started again under the app (same port), the app started before
its server, a call placed while offline, and the short forms at 80 columns.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer

from hello_tui.signaling.client import ReconnectPolicy
from hello_tui.tui.app import HelloApp
from hello_tui.tui.backend import Status
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.widgets.status import StatusLine, status_text
from tests.tui.conftest import TEST_AUDIO, register_tui_account, wait_until, write_config

FAST = ReconnectPolicy(base=0.1, cap=0.5)  # the real backoff, with a short cap for tests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_settings(state: Path | None = None) -> Any:
    """One server's settings: its secret (and ``state``, its accounts kept on disk)
    make a restart with the same object the same server to a client's key."""
    from hello_tui.server.settings import ServerSettings

    return ServerSettings(rate=0.0, max_connections_per_ip=0, state_file=state)


async def start_server(port: int, settings: Any = None) -> TestServer:
    from hello_tui.server.app import create_app

    settings = settings or server_settings()
    store = None
    if settings.state_file is not None:
        from hello_tui.server.store.persistent import PersistentMemoryStore

        store = PersistentMemoryStore(settings.state_file)
    srv = TestServer(create_app(settings, store), host="127.0.0.1", port=port)
    await srv.start_server()
    return srv


def line(app: Any) -> str:
    return str(app.screen.query_one(StatusLine).render())


def fast_app() -> HelloApp:
    app = HelloApp(ring_bell=False)
    app.backend.retry_policy = FAST
    return app


async def test_server_killed_then_back_without_a_key_press(tmp_path: Path) -> None:
    port = free_port()
    kept = server_settings(tmp_path / "server-state")  # the account survives the restart
    srv = await start_server(port, kept)
    url = f"ws://127.0.0.1:{port}/ws"
    write_config({**await register_tui_account(url, "st@example.org"), **TEST_AUDIO})
    app = fast_app()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: "online as st@example.org" in line(app), what="online")
            await srv.close()  # the server goes away under the app
            await wait_until(pilot, lambda: "reconnecting" in line(app), what="reconnecting")
            assert app.status.link == "reconnecting" and app.status.error
            # A call now fails at once, with the reason: no "Calling…" on a dead line.
            app.place_call("someone@example.org", "someone")
            assert not app.in_call
            await wait_until(
                pilot,
                lambda: any("offline" in str(n.message) for n in app._notifications),
                what="the offline notice",
            )
            srv = await start_server(port, kept)  # back on the same port
            await wait_until(pilot, lambda: "online as st@example.org" in line(app), what="back")
            assert app.status.link == "online" and app.status.retry_at is None
    finally:
        await srv.close()


async def test_a_refused_sign_in_after_a_reconnect_says_offline_and_why() -> None:
    """The server comes back without the account (another server on the same
    port): the client's automatic re-login fails. Not "online as NAME": offline,
    the server's reason, and no more attempts until the user asks (r)."""
    port = free_port()
    srv = await start_server(port)
    url = f"ws://127.0.0.1:{port}/ws"
    write_config({**await register_tui_account(url, "gone@example.org"), **TEST_AUDIO})
    app = fast_app()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: "online as gone@example.org" in line(app))
            await srv.close()
            await wait_until(pilot, lambda: "reconnecting" in line(app), what="reconnecting")
            srv = await start_server(port)  # a fresh server: it knows no such account
            await wait_until(pilot, lambda: "✕ offline" in line(app), what="offline")
            shown = line(app)
            assert "gone@example.org" in shown and "sign-in refused" in shown
            assert app.status.link == "offline" and app.status.retry_at is None
            assert app.backend.account is None  # calls are no longer signed as it
            await pilot.pause(1.0)  # a refusal is not retried by itself
            assert app.status.link == "offline"
    finally:
        await srv.close()


async def test_started_before_its_server_comes_online_by_itself() -> None:
    port = free_port()
    url = f"ws://127.0.0.1:{port}/ws"
    write_config({"server": {"url": url}, **TEST_AUDIO})
    app = fast_app()
    srv: TestServer | None = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
            await wait_until(pilot, lambda: "reconnecting" in line(app), what="reconnecting")
            assert "refused" in app.status.error  # why, from the client
            srv = await start_server(port)
            await wait_until(pilot, lambda: "● online" in line(app), what="online by itself")
            assert app.backend.phone is not None and app.backend.online
    finally:
        if srv is not None:
            await srv.close()


def test_every_state_is_a_word_and_short_at_80_columns() -> None:
    now = time.monotonic()
    base = Status("alice@example.org", "ws://h:1/ws", "online", "", False)
    short = status_text(base, width=80, muted=False).plain
    assert short.startswith("● online as alice@example.org")
    assert "DND off" in short and "mic on" in short and len(short) <= 80
    wide = status_text(Status("a", "ws://h:1/ws", "online", "", True), width=200).plain
    assert "hello-tui" in wide and "ws://h:1/ws" in wide and "DND on" in wide
    later = Status("alice", "ws://h:1/ws", "reconnecting", "connection refused", False, now + 2.2)
    text = status_text(later, width=80, now=now, muted=True).plain
    assert "reconnecting in 3s" in text and "muted" in text and "connection refused" in text
    assert text.index("DND off") < text.index("connection refused")  # a cut eats the reason
    gone = status_text(Status(None, "x", "offline", "unknown host", False), width=80).plain
    assert gone.startswith("✕ offline") and "anonymous" in gone and "unknown host" in gone


def test_sparklines_have_an_absolute_floor_so_steady_values_draw_flat() -> None:
    from hello_tui.tui.widgets.quality import sparkline

    assert sparkline([1.0, 2.0, 1.0, 2.0], "rtt") == "▁▁▁▁"  # 1 → 2 ms is not a cliff
    assert sparkline([4.40, 4.41], "mos") == "██"
    assert sparkline([0.0, 0.1], "loss") == "▁▁"
    rising = sparkline([20.0, 300.0], "rtt")  # a real jump still shows
    assert rising[0] == "▁" and rising[1] == "█"
    assert len(sparkline([5.0] * 60, "jitter")) == 60


async def test_rooms_opened_while_the_server_is_down_say_why_then_list_by_themselves() -> None:
    from hello_tui.tui.screens.rooms import RoomsScreen

    port = free_port()
    write_config({"server": {"url": f"ws://127.0.0.1:{port}/ws"}, **TEST_AUDIO})
    app = fast_app()
    srv: TestServer | None = None
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: app.status.link == "reconnecting", what="down")
            await pilot.press("R")
            await wait_until(pilot, lambda: isinstance(app.screen, RoomsScreen))
            screen = app.screen
            note = screen.query_one("#rooms-note")
            await wait_until(pilot, lambda: "refused" in str(note.render()), what="the reason")
            assert "comes back by itself" in str(note.render())
            srv = await start_server(port)  # no key press from here on
            await wait_until(pilot, lambda: screen.loaded, what="listed once online")
            assert "n: new room" in str(note.render())
    finally:
        if srv is not None:
            await srv.close()
