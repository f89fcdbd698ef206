"""Dial anything: the prompt (o) joins a pasted room URL, a room URL pasted on
the main screen offers to join, History calls back the selected entry, and
missed calls are marked until the History tab is seen. Real server, real
scripted peers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from textual.events import Paste
from textual.widgets import DataTable, Input

from hello_tui.call import events as ev
from hello_tui.contacts.model import Contact
from hello_tui.contacts.store import open_store
from hello_tui.history.store import CallRecord
from hello_tui.tui.app import HelloApp
from hello_tui.tui.dial import resolve, room_url
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.call_ended import RetryOrShare
from hello_tui.tui.screens.dial import DialPrompt
from hello_tui.tui.screens.forms import Confirm
from hello_tui.tui.screens.main import MainScreen
from tests.tui.conftest import (
    TEST_AUDIO,
    T,
    register_tui_account,
    visible_text,
    wait_until,
    write_config,
)


async def _room_by(peer: Any, server: str, tmp_path: Path) -> str:
    from hello_tui.signaling.rooms_local import create_room

    room = await create_room(peer.client, tmp_path / "rooms.toml", server, "Drop-in")
    assert room.url and "#k=" in room.url
    return room.url


def history_row(app: Any, index: int = 0) -> str:
    table = app.screen.query_one("#history", DataTable)
    return " ".join(str(cell) for cell in table.get_row_at(index))


async def _connected(pilot: Any, app: HelloApp) -> None:
    await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    await wait_until(pilot, lambda: app.backend.online, what="online")


async def test_dial_prompt_joins_a_pasted_room_url(server: str, peers: Any, tmp_path: Path) -> None:
    bob = await peers("bob@example.org")
    url = await _room_by(bob, server, tmp_path)
    write_config({"server": {"url": server}, **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _connected(pilot, app)
        await pilot.press("o")
        await wait_until(pilot, lambda: isinstance(app.screen, DialPrompt))
        app.screen.query_one("#dial-input", Input).insert_text_at_cursor(url)  # as a paste
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
        call_screen = app.screen
        await wait_until(pilot, lambda: call_screen.state == "waiting", what="in the room")
        theirs = bob.join(url)
        check = await theirs.wait_for(ev.CheckCode, T)
        await wait_until(pilot, lambda: call_screen.sas == check.code, what="same code")
        assert app.last_call.is_room
        await theirs.hangup()
        await app.last_call.hangup()
        await wait_until(pilot, lambda: not app.in_call, what="left the room")
        if not isinstance(app.screen, MainScreen):
            await pilot.press("escape")  # the feedback question
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        # History keeps the room's URL (on this device): c on the entry rejoins it.
        assert app.backend.history.list()[0].room_url == url
        await pilot.press("t")
        assert "room" in history_row(app)
        await pilot.press("c")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="rejoined")
        assert app.last_call.is_room and app.last_call.room_url == url
        await app.last_call.hangup()


async def test_a_room_url_pasted_on_the_main_screen_offers_to_join(
    server: str, peers: Any, tmp_path: Path
) -> None:
    bob = await peers("bob@example.org")
    url = await _room_by(bob, server, tmp_path)
    write_config({"server": {"url": server}, **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _connected(pilot, app)
        app.screen.post_message(Paste(url))  # what a terminal paste delivers
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm), what="join offer")
        assert "Join this room?" in visible_text(app)
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="joined")
        assert app.last_call.is_room
        await app.last_call.hangup()


async def test_call_back_from_history_dials_that_peer(server: str, peers: Any) -> None:
    bob = await peers("bob@example.org")
    write_config({**await register_tui_account(server, "me@example.org"), **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _connected(pilot, app)
        app.backend.history.add(
            CallRecord("incoming", "bob@example.org", "missed", start=time.time())
        )
        app.screen.refresh_history()  # type: ignore[attr-defined]  # the MainScreen
        assert "History (1 missed)" in visible_text(app)
        await pilot.press("t")
        assert "● new" in history_row(app)
        await pilot.press("c")
        incoming = await bob.next_incoming(T)  # the TUI dialled bob's account
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="calling")
        await incoming.reject("rejected")
        # A declined call offers Retry or Share a link, as Hello did: dismiss it.
        await wait_until(pilot, lambda: isinstance(app.screen, RetryOrShare), what="retry prompt")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="ended")
        app.screen.refresh_history()  # type: ignore[attr-defined]
        assert "missed" in history_row(app, 1) and "● new" not in history_row(app, 1)  # seen


def test_what_a_dialled_line_means(tmp_path: Path) -> None:
    store = open_store("toml", tmp_path / "contacts.toml")
    bob = Contact(name="Bob Stone", emails=["bob@example.org"])
    store.add(bob)
    assert resolve(" Echo ", store).kind == "echo"
    assert resolve("bob stone", store).contact is not None
    assert resolve("BOB@example.org", store).kind == "contact"
    assert resolve("carol@example.org", store).kind == "account"
    from hello_tui.signaling.roomcrypt import encode_key, new_room_key

    url = "https://h.example/r/abcdefghijklmnop#k=" + encode_key(new_room_key())
    assert room_url(url) == url and resolve(url, store).value == url
    assert room_url("see https://h.example/r/abcdefghijklmnop") is None  # not only a URL
    for bad in ("", "https://h.example/", "x" * 600):
        try:
            resolve(bad, store)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} resolved")
