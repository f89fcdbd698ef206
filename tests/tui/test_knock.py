"""Knock to enter in the TUI, against a real server: the owner sits in a knock
room; a real visitor knocks; the prompt shows the visitor's name as text; *Let
in* connects them (the header then shows the visitor's name), *Decline* sends
them away with the reason."""

from __future__ import annotations

import asyncio
from typing import Any

from hello_tui.call import events as ev
from hello_tui.config.paths import resolve_paths
from hello_tui.signaling import rooms_local
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.knock import KnockPrompt

from .conftest import TEST_AUDIO, T, register_tui_account, visible_text, wait_until, write_config


async def _inside_knock_room(app: HelloApp, pilot: Any, server: str) -> tuple[str, CallScreen]:
    await asyncio.wait_for(app.ready.wait(), T)
    assert app.backend.client is not None
    path = rooms_local.rooms_file(resolve_paths().data_dir)
    room = await rooms_local.create_room(app.backend.client, path, server, "Desk", knock=True)
    assert room.url is not None and room.knock
    app.join_room(room.url, "Desk")
    await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
    screen = app.screen
    assert isinstance(screen, CallScreen)
    await wait_until(pilot, lambda: screen.state == "waiting", what="in the room")
    return room.url, screen


async def test_let_in_connects_and_the_header_names_the_visitor(server: str, peers: Any) -> None:
    write_config({**(await register_tui_account(server, "olive@example.org")), **TEST_AUDIO})
    visitor = await peers("vic@example.org")
    visitor.client.display_name = "Vic [b]bold[/b]"
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        url, screen = await _inside_knock_room(app, pilot, server)
        theirs = visitor.join(url)
        knocking = await theirs.wait_for(ev.Knocking, T)
        assert knocking.owner_present
        await wait_until(pilot, lambda: isinstance(app.screen, KnockPrompt), what="prompt")
        text = visible_text(app)
        assert "Someone is knocking at your room" in text and "Vic [b]bold[/b]" in text
        await pilot.press("a")
        await theirs.wait_for(ev.Admitted, T)
        assert (await theirs.wait_for(ev.CheckCode, T)).status == "verified"
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        assert "Vic [b]bold[/b] · Desk" in visible_text(app)
        await theirs.hangup()


async def test_decline_sends_the_visitor_away(server: str, peers: Any) -> None:
    write_config({**(await register_tui_account(server, "olga@example.org")), **TEST_AUDIO})
    visitor = await peers("val@example.org")
    visitor.client.display_name = "Val"
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        url, screen = await _inside_knock_room(app, pilot, server)
        theirs = visitor.join(url)
        await wait_until(pilot, lambda: isinstance(app.screen, KnockPrompt), what="prompt")
        await pilot.press("x")
        declined = await theirs.wait_for(ev.Declined, T)
        assert declined.reason == "declined"
        ended = await theirs.wait_ended(T)
        assert ended.reason == "rejected" and "did not let you in" in ended.message
        await wait_until(pilot, lambda: app.screen is screen, what="prompt closed")
        assert screen.state == "waiting"  # the owner stays in the room


async def test_rooms_screen_shows_context_as_text_and_knocking(server: str) -> None:
    from hello_tui.signaling.roomcrypt import RoomContext
    from hello_tui.tui.screens.rooms import RoomsScreen

    write_config({**(await register_tui_account(server, "ona@example.org")), **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        assert app.backend.client is not None
        path = rooms_local.rooms_file(resolve_paths().data_dir)
        context = RoomContext("Plan [b]v2[/b]", "https://example.org/agenda")
        await rooms_local.create_room(
            app.backend.client, path, server, "Board", context=context, knock=True
        )
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RoomsScreen), what="rooms")
        screen = app.screen
        await wait_until(pilot, lambda: screen.selected() is not None, what="the room listed")
        await wait_until(pilot, lambda: "Plan [b]v2[/b]" in visible_text(app), what="context")
        text = visible_text(app)
        assert "Link (not opened): https://example.org/agenda" in text
        assert "Knock to enter" in text
