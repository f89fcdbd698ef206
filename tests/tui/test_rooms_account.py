"""Rooms and the account from the TUI, against a real server.

Rooms: create (the URL with its #k= key is shown and copied, rooms.toml
holds the key), list (names decrypted here), rename, delete, join while a
scripted Phone peer joins the same URL (same check code both sides), and on
the embedded default the screen says a real server is needed. Account
(Settings): register, sign out, sign in again with the kept key, delete.
"""

from __future__ import annotations

import asyncio
import stat
import tomllib
from typing import Any

from textual.widgets import Input

from hello_tui.call import events as ev
from hello_tui.config.paths import resolve_paths
from hello_tui.signaling.roomcrypt import decrypt_name, parse_room_url
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.feedback import FeedbackPrompt
from hello_tui.tui.screens.forms import Confirm, TextPrompt
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.screens.rooms import NO_SERVER, RoomsScreen
from hello_tui.tui.screens.settings import SettingsScreen

from .conftest import (
    TEST_AUDIO,
    RunningServer,
    T,
    register_tui_account,
    visible_text,
    wait_until,
    write_config,
)


def rooms_toml() -> dict[str, Any]:
    path = resolve_paths().data_dir / "rooms.toml"
    return tomllib.loads(path.read_text())["rooms"] if path.exists() else {}


def config() -> dict[str, Any]:
    return tomllib.loads(resolve_paths().config_file.read_text())


async def _type(pilot: Any, text: str) -> None:
    """Type into the focused input (all at once: what a paste does)."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.focused, Input), what="an input")
    app.focused.value = text
    await pilot.press("enter")


async def _open_rooms(pilot: Any) -> RoomsScreen:
    app = pilot.app
    await asyncio.wait_for(app.ready.wait(), T)
    await pilot.press("R")
    await wait_until(pilot, lambda: isinstance(app.screen, RoomsScreen))
    screen = app.screen
    await wait_until(pilot, lambda: screen.loaded, what="rooms listed")
    return screen


async def _create_room(pilot: Any, screen: RoomsScreen, name: str) -> str:
    app = pilot.app
    await pilot.press("n")
    await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
    await _type(pilot, name)
    await wait_until(pilot, lambda: app.screen is screen and screen.selected() is not None
                     and screen.selected().name == name, what="the new room")  # fmt: skip
    url = screen.selected().url
    assert url is not None
    return url


async def test_rooms_need_a_real_server() -> None:
    write_config(TEST_AUDIO)
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RoomsScreen))
        assert NO_SERVER in visible_text(app)
        await pilot.press("n")  # refused with the same words, nothing written
        await pilot.pause()
        assert not isinstance(app.screen, TextPrompt)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    assert not (resolve_paths().data_dir / "rooms.toml").exists()


async def test_create_list_rename_delete_a_room(server: str) -> None:
    write_config({**(await register_tui_account(server, "tui@example.org")), **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_rooms(pilot)
        assert "n: new room" in visible_text(app)
        url = await _create_room(pilot, screen, "Family call")
        token, key = parse_room_url(url)
        assert key is not None and url.startswith(server.removesuffix("ws").replace("ws:", "http:"))
        # Shown in full (with #k=) and offered to the clipboard (OSC 52).
        assert url in visible_text(app) and app.clipboard == url
        stored = rooms_toml()[token]
        assert url.endswith("#k=" + stored["key"])
        # The server holds only ciphertext; the list shows the name decrypted here.
        infos = await app.backend.client.room_list()
        [info] = [i for i in infos if i.token == token]
        assert "Family" not in info.name and decrypt_name(key, info.name) == "Family call"
        await pilot.press("r")
        await wait_until(pilot, lambda: "Family call" in visible_text(app))

        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        await _type(pilot, "Team sync")
        await wait_until(pilot, lambda: "Team sync" in visible_text(app), what="renamed")
        [info] = [i for i in await app.backend.client.room_list() if i.token == token]
        assert decrypt_name(key, info.name) == "Team sync"

        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_until(pilot, lambda: token not in rooms_toml(), what="key forgotten")
        await wait_until(pilot, lambda: "Team sync" not in visible_text(app))
        assert token not in [i.token for i in await app.backend.client.room_list()]


async def test_join_a_room_with_a_scripted_peer(server_app: RunningServer, peers: Any) -> None:
    """Create a room, join it from the TUI (waiting), a scripted Phone joins the
    same URL: both connected with the same check code; after the call the
    feedback goes to the server."""
    bob = await peers("bob@example.org")
    write_config({"server": {"url": server_app.url}, **TEST_AUDIO})  # anonymous
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_rooms(pilot)
        url = await _create_room(pilot, screen, "Drop-in")
        await pilot.press("j")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        call_screen = app.screen
        await wait_until(pilot, lambda: call_screen.state == "waiting", what="waiting in room")
        assert "waiting for someone" in visible_text(app)
        theirs = bob.join(url)
        check = await theirs.wait_for(ev.CheckCode, T)
        assert check.status == "verified"
        await wait_until(pilot, lambda: call_screen.state == "connected", what="connected")
        await wait_until(pilot, lambda: call_screen.sas == check.code, what="same code")
        assert app.last_call.is_room and app.last_call.sas == check.code
        await theirs.hangup()
        await wait_until(pilot, lambda: isinstance(app.screen, FeedbackPrompt), what="feedback")
        await pilot.press("y")
        # Back on the rooms screen; the answer reached the server.
        await wait_until(pilot, lambda: app.screen is screen)
        ratings = server_app.telemetry.feedback["rating"]
        await wait_until(pilot, lambda: ratings["happy"] == 1, what="feedback on the server")


async def test_account_register_sign_out_sign_in_delete(server: str) -> None:
    write_config({"server": {"url": server}, **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    key_file = resolve_paths().data_dir / "account.key"
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        assert "anonymous" in visible_text(app)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen

        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        assert "Register an account" in visible_text(app)
        await _type(pilot, "carol@example.org")
        await wait_until(pilot, lambda: app.backend.account == "carol@example.org")
        assert config()["account"]["name"] == "carol@example.org"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        await wait_until(pilot, lambda: "online as carol@example.org" in visible_text(app))

        await pilot.press("ctrl+o")  # sign out: the name goes, the key stays
        await wait_until(pilot, lambda: app.backend.account is None)
        assert config()["account"]["name"] == "" and key_file.exists()
        await wait_until(pilot, lambda: "signed out" in visible_text(app))

        await pilot.press("ctrl+r")  # with the kept key: sign in again
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        assert "Sign in" in visible_text(app)
        await _type(pilot, "carol@example.org")
        await wait_until(pilot, lambda: app.backend.account == "carol@example.org")
        assert config()["account"]["name"] == "carol@example.org"

        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("n")  # no: nothing happens
        await wait_until(pilot, lambda: app.screen is settings)
        assert key_file.exists() and app.backend.account == "carol@example.org"
        await pilot.press("ctrl+g")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_until(pilot, lambda: not key_file.exists(), what="key removed")
        await wait_until(pilot, lambda: app.backend.account is None)
        assert config()["account"]["name"] == ""
        # The server forgot the name: it can be registered again.
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        await _type(pilot, "carol@example.org")
        await wait_until(pilot, lambda: app.backend.account == "carol@example.org")


async def test_register_a_taken_name_leaves_no_key(server: str, peers: Any) -> None:
    await peers("dave@example.org")
    write_config({"server": {"url": server}, **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
        await _type(pilot, "dave@example.org")
        await wait_until(pilot, lambda: "name is taken" in visible_text(app), what="refused")
        assert not (resolve_paths().data_dir / "account.key").exists()
        assert app.backend.account is None and not config().get("account", {}).get("name")
