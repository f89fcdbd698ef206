""" "Someone is waiting in your room" in the TUI, against a real server: a visitor
joins a room the signed-in account owns, the prompt shows the room's name
(decrypted here) and the visitor's name (as text, never markup), and "join
now" joins the room: both sides connected. Also: which desktop notification a
terminal gets, and none on do-not-disturb."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hello_tui.call import events as ev
from hello_tui.config.paths import resolve_paths
from hello_tui.signaling import rooms_local
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.room_waiting import RoomWaitingPrompt, notification_method

from .conftest import TEST_AUDIO, T, register_tui_account, visible_text, wait_until, write_config


async def _own_room(app: HelloApp, server: str, name: str) -> str:
    await asyncio.wait_for(app.ready.wait(), T)
    assert app.backend.client is not None
    path = rooms_local.rooms_file(resolve_paths().data_dir)
    room = await rooms_local.create_room(app.backend.client, path, server, name)
    assert room.url is not None
    return room.url


async def test_prompt_appears_and_join_now_joins(server: str, peers: Any) -> None:
    write_config({**(await register_tui_account(server, "olive@example.org")), **TEST_AUDIO})
    visitor = await peers("vic@example.org")
    visitor.client.display_name = "Vic [b]bold[/b]"
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        url = await _own_room(app, server, "Standup")
        theirs = visitor.join(url)
        await wait_until(pilot, lambda: isinstance(app.screen, RoomWaitingPrompt), what="prompt")
        text = visible_text(app)
        assert "Someone is waiting in your room" in text
        assert "Vic [b]bold[/b]" in text and "in Standup" in text  # shown, not obeyed
        await pilot.press("j")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
        call_screen = app.screen
        check = await theirs.wait_for(ev.CheckCode, T)
        assert check.status == "verified"
        await wait_until(pilot, lambda: call_screen.state == "connected", what="connected")
        assert app.last_call.is_room and app.last_call.peer_name == "Vic [b]bold[/b]"
        peer = await theirs.wait_for(ev.PeerName, T)
        assert peer.name == "olive@example.org"  # the TUI sends the account's name
        await theirs.hangup()


async def test_do_not_disturb_shows_a_quiet_notice_only(server: str, peers: Any) -> None:
    write_config({**(await register_tui_account(server, "olga@example.org")), **TEST_AUDIO})
    visitor = await peers("val@example.org")
    visitor.client.display_name = "Val"
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        url = await _own_room(app, server, "Quiet room")
        app.backend.set_dnd(True)
        theirs = visitor.join(url)
        await theirs.wait_for(ev.Waiting, T)
        said = "Val is waiting in Quiet room"
        await wait_until(pilot, lambda: any(n.message == said for n in app._notifications))
        assert not isinstance(app.screen, RoomWaitingPrompt)
        await theirs.hangup()


@pytest.mark.parametrize(
    ("env", "has_notify_send", "method"),
    [
        ({"TERM_PROGRAM": "iTerm.app", "TERM": "xterm-256color"}, False, "osc9"),
        ({"TERM": "xterm-kitty"}, True, "osc9"),
        ({"TERM": "foot"}, False, "osc777"),
        ({"TERM": "xterm-256color"}, False, None),  # unknown terminal: no escape at all
        ({"TERM": "xterm-256color", "DISPLAY": ":0"}, True, "notify-send"),
        ({"TERM": "xterm-256color"}, True, None),  # notify-send without a display
        ({"TERM": "foot", "TMUX": "/tmp/x"}, False, None),  # tmux would swallow the escape
        ({"TERM": "screen", "WAYLAND_DISPLAY": "w"}, True, "notify-send"),
    ],
)
def test_notification_method(env: dict[str, str], has_notify_send: bool, method: str) -> None:
    found = notification_method(env, lambda _: "/usr/bin/notify-send" if has_notify_send else None)
    assert found == method
