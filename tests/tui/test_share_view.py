"""The call screen's shared terminal with a scripted peer through the real server:
the TUI shares (the prompt, typing in its own, the grant banner and its key),
then views the peer's (read-only until granted, typing once granted, pause,
copy), at 80x24 with the check code in view. Real ptys running ``cat``."""

from __future__ import annotations

import asyncio
from typing import Any

from textual import events
from textual.widgets import Digits, Input

from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.forms import TextPrompt
from hello_tui.tui.screens.incoming import IncomingCall
from hello_tui.tui.widgets.shared_terminal import BANNER, SharedTerminal, SharePane

from .conftest import T, visible_text, wait_until
from .test_calls import _tui_signed_in


def _screen(call: Any, side: str) -> str:
    return str(call.share.snapshot(side)[1].text())


async def test_share_both_ways_from_the_call_screen(server: str, peers: Any) -> None:
    bob = await peers("bob@example.org")
    app = await _tui_signed_in(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        call = bob.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.sas != "", what="check code")
        await wait_until(pilot, lambda: call.share.open, what="bob's share channel")
        mine = app.last_call
        pane, view = screen.query_one(SharePane), screen.query_one(SharedTerminal)
        assert not pane.display

        # s asks what to share; "cat" it is (read-only for bob: no banner).
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt), what="share prompt")
        app.screen.query_one(Input).value = "cat"
        await pilot.press("enter")
        await wait_until(pilot, lambda: call.share.remote is not None, what="bob sees it")
        await wait_until(pilot, lambda: pane.side == "local" and pane.display, what="our view")
        assert "You share: cat (80x24)" in visible_text(app)
        assert BANNER not in visible_text(app)
        # At 80x24 the check code stays in view; the 80x24 screen scrolls in the pane.
        sas = screen.query_one("#sas", Digits)
        assert sas.display and 0 < sas.region.bottom <= 24 and sas.region.height > 0
        assert view.region.height > 0 and view.max_scroll_y > 0

        # i: keys go to our pty (cat echoes them; h and m are not the call's here).
        await pilot.press("i")
        assert view.has_focus
        await pilot.press(*"hm [b]x", "enter")
        await wait_until(pilot, lambda: "hm [b]x" in view.text(), what="our echo")
        assert mine.ended is None and not mine.muted
        await wait_until(pilot, lambda: "hm [b]x" in _screen(call, "remote"), what="bob's")
        assert "hm [b]x" in view.lines[0].text  # shown literally, never as markup
        await pilot.press("escape")
        assert not view.has_focus
        # i with keys right behind it, all read at once (a script, a paste, a fast
        # typist; the TUI-to-TUI test's keys under load): none is lost to the call
        # screen, to which the app handed them before the i's binding ran.
        for key, char in [("i", "i"), ("x", "x"), ("w", "w"), ("enter", "\r")]:
            event = events.Key(key, char)
            event.set_sender(app)
            app._driver.send_message(event)  # as Pilot.press does, without its waits
        await wait_until(pilot, lambda: "xw" in view.text(), what="keys queued behind i")
        await pilot.press("escape")

        # g grants: the banner says so, always visible; bob's keys reach our pty.
        await pilot.press("g")
        await wait_until(pilot, lambda: BANNER in visible_text(app), what="the banner")
        assert 0 < sas.region.bottom <= 24 and view.region.height > 0  # all in view
        await wait_until(pilot, lambda: call.share.control, what="bob's control")
        call.share.send_input("from bob\r")
        await wait_until(pilot, lambda: "from bob" in view.text(), what="bob's keys")
        await pilot.press("g")  # one key takes it back
        await wait_until(pilot, lambda: BANNER not in visible_text(app), what="banner gone")
        await wait_until(pilot, lambda: not call.share.control, what="bob's control gone")

        # y copies the screen as shown.
        await pilot.press("y")
        assert "hm [b]x" in app.clipboard and "from bob" in app.clipboard

        # s again stops it: the pane goes, bob saw it stop.
        await pilot.press("s")
        await wait_until(pilot, lambda: not pane.display, what="pane hidden")
        await wait_until(pilot, lambda: call.share.remote is None, what="bob's end")

        # Bob shares: we view it, read-only until he grants.
        await call.share.start(["cat"], cols=100, rows=10, title="bob's [b]cat")
        await wait_until(pilot, lambda: pane.side == "remote", what="their view")
        await wait_until(pilot, lambda: "They share: bob's [b]cat" in visible_text(app))
        await pilot.press("i")
        assert not view.has_focus  # read-only: a notice, the keys stay the call's
        await wait_until(pilot, lambda: "read-only" in visible_text(app), what="notice")
        call.share.send_input("bob typed\r")
        await wait_until(pilot, lambda: "bob typed" in view.text(), what="bob's screen")
        assert view.max_scroll_x > 0  # 100 columns in 78

        call.share.grant()
        await wait_until(pilot, lambda: mine.share.control, what="our control")
        assert BANNER not in visible_text(app)  # the banner is the sharer's
        await pilot.press("i", *"we typed", "enter")
        await wait_until(pilot, lambda: "we typed" in _screen(call, "local"), what="ours there")
        await pilot.press("escape")

        # p pauses the view: the screen underneath goes on, the view does not.
        await pilot.press("p")
        assert "PAUSED" in visible_text(app)
        call.share.send_input("while paused\r")
        await wait_until(pilot, lambda: "while paused" in _screen(mine, "remote"), what="it")
        pane.poll()
        assert "while paused" not in view.text()
        await pilot.press("p")
        await wait_until(pilot, lambda: "while paused" in view.text(), what="unpaused")

        # ctrl+c typed in their terminal is theirs (cat ends), not the app's.
        await pilot.press("i", "ctrl+c")
        await wait_until(pilot, lambda: call.share.local is None, what="their cat ended")
        await wait_until(pilot, lambda: not pane.display, what="pane hidden again")
        assert mine.ended is None and not view.has_focus

        await call.hangup()
        await wait_until(pilot, lambda: not isinstance(app.screen, CallScreen), what="ended")


def test_rows_keep_colours_and_attributes_and_show_controls_as_text() -> None:
    from hello_tui.share.terminal import Terminal
    from hello_tui.tui.widgets.shared_terminal import row_strip

    term = Terminal(20, 2)
    term.feed(b"\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3;44mtc\x1b[0m [b]\xe7\x95\x8c")
    # pyte keeps controls out of cells; were one there, it would show as "?".
    term.screen.buffer[0][13] = term.screen.default_char._replace(data="\x1b")
    strip = row_strip(term.screen.buffer[0], 20, {})
    assert strip.cell_length == 20 and strip.text.rstrip() == "red tc [b]界 ?"
    styles = {seg.text: seg.style for seg in strip if seg.text.strip()}
    red, tc = styles["red"], styles["tc"]
    assert red is not None and red.bold and red.color is not None and red.color.name == "red"
    assert tc is not None and tc.color is not None and tc.color.triplet == (1, 2, 3)
    assert tc.bgcolor is not None and tc.bgcolor.name == "blue"
