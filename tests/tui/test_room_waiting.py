""" "Someone is waiting in your room" in the TUI, against a real server: a visitor
joins a room the signed-in account owns, the prompt shows the room's name
(decrypted here) and the visitor's name (as text, never markup), and "join
now" joins the room: both sides connected. Also: which desktop notification a
terminal gets, and none on do-not-disturb."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hello_tui.call import events as ev
from hello_tui.config.paths import resolve_paths
from hello_tui.signaling import rooms_local
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens import room_waiting
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.room_waiting import RoomWaitingPrompt, notification_method
from tests.call.conftest import read_wav

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
        # The screen is current before it is drawn: wait for its words (under load
        # the first frame can come a few ticks later).
        await wait_until(
            pilot, lambda: "Someone is waiting in your room" in visible_text(app), what="drawn"
        )
        text = visible_text(app)
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


async def test_in_5_minutes_joins_muted_tells_them_and_reminds(
    server: str, peers: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The visitor reads the message in the chat, hears only silence (the owner's
    sine never went out), stays in the room; the owner is reminded later."""
    monkeypatch.setattr(room_waiting, "LATER_SECONDS", 1.0)
    write_config({**(await register_tui_account(server, "otto@example.org")), **TEST_AUDIO})
    visitor = await peers("vera@example.org")
    wav = tmp_path / "heard.wav"
    visitor.options = replace(visitor.options, audio_out=f"file:{wav}")
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        url = await _own_room(app, server, "Office hours")
        theirs = visitor.join(url)
        await wait_until(pilot, lambda: isinstance(app.screen, RoomWaitingPrompt), what="prompt")
        await wait_until(pilot, lambda: "5: join muted" in visible_text(app), what="drawn")
        await pilot.press("5")
        said = await theirs.wait_for(ev.ChatMessage, T)
        assert (said.sender, said.text) == ("remote", room_waiting.LATER_TEXT)
        await theirs.wait_for(ev.MediaFlowing, T)
        assert app.last_call.is_room and app.last_call.muted
        reminded = "5 minutes are up: they are waiting in the room. m unmutes"
        await wait_until(pilot, lambda: reminded in app.screen.notices, what="the reminder")
        assert theirs.ended is None  # still in the room, not sent away
        await wait_until(pilot, lambda: theirs.sink.frames >= 50, what="a second heard")
        await theirs.hangup()
    heard = read_wav(wav)
    assert len(heard) >= 48_000  # a second and more of the owner's side...
    assert np.max(np.abs(heard)) < 300  # ...and all of it silence: no 440 Hz ever went out


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
