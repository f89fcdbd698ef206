"""The call screen's chat with the echo peer: a round trip, the unread badge,
and keys typed in the chat go to the message, not to the call."""

from __future__ import annotations

import asyncio

from textual.widgets import Input

from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.widgets.chat import ChatBadge, ChatPane

from .conftest import TEST_AUDIO, T, visible_text, wait_until, write_config


async def test_echo_chat_round_trip_and_unread_badge() -> None:
    write_config(TEST_AUDIO)
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        pane, badge = screen.query_one(ChatPane), screen.query_one(ChatBadge)
        assert not pane.is_open and not badge.display

        # Closed: what comes in is counted (here the echo of a message sent elsewhere).
        app.last_call.send_chat("from a script")
        await wait_until(pilot, lambda: pane.unread == 1, what="unread")
        await wait_until(pilot, lambda: "chat: 1 new (c)" in visible_text(app))

        await pilot.press("c")
        await wait_until(pilot, lambda: pane.is_open and not badge.display)
        field = pane.query_one("#chat-input", Input)
        assert field.has_focus
        await pilot.press(*"hm [b]x")  # h and m are the call's keys: here, text
        await pilot.press("enter")
        await wait_until(pilot, lambda: any("echo: hm [b]x" in x for x in pane.lines), what="echo")
        assert app.last_call.ended is None and not app.last_call.muted
        assert field.value == ""
        assert [m.text for m in app.last_call.chat_log] == [
            "from a script", "echo: from a script", "hm [b]x", "echo: hm [b]x",
        ]  # fmt: skip
        assert pane.unread == 0 and "check code" in visible_text(app).lower()

        await pilot.press("escape")
        assert not pane.is_open
        await pilot.press("h")
        await wait_until(pilot, lambda: app.last_call.ended is not None, what="hung up")
