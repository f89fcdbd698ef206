"""Scroll-back and copying in the call screen's view of a shared terminal: the
viewer's terminal (hello_tui/share/scrollback.py) fed real bytes, the call
screen driven with keys (no call: what is shown comes from the terminal)."""

from __future__ import annotations

from types import SimpleNamespace

from textual.widgets import Input

from hello_tui.share.scrollback import HISTORY_LINES, ViewTerminal
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.forms import TextPrompt
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.widgets.shared_terminal import SharedTerminal, SharePane

from .conftest import visible_text, wait_until


def _lines(first: int, last: int) -> bytes:
    return b"".join(b"\r\nline %02d" % i for i in range(first, last + 1))


def test_the_history_is_bounded_and_survives_a_resync() -> None:
    term = ViewTerminal(80, 5)
    term.feed(b"first" + _lines(1, 2 * HISTORY_LINES))
    assert len(term.history) == HISTORY_LINES  # the oldest went
    assert term.all_text()[-1] == f"line {2 * HISTORY_LINES}"
    term.reset()  # a snapshot: the screen starts again, the history stays
    assert len(term.history) == HISTORY_LINES
    wide = ViewTerminal(400, 5)
    assert wide.history.maxlen == 250  # a line of 400 cells counts for five of 80
    margins = ViewTerminal(20, 5)
    margins.feed(b"\x1b[2;5r\x1b[5;1H" + _lines(1, 20))  # scrolling inside margins
    assert not margins.history


async def test_scroll_back_stays_put_copies_what_is_shown_and_ranges() -> None:
    term = ViewTerminal(30, 6)
    term.feed(b"[red]not markup[/red]" + _lines(1, 40))
    share = SimpleNamespace(remote=term, local=None, control=False, granted=False, sharing=False)
    call = SimpleNamespace(peer="Bob", stage="connected", connected_at=0, muted=False, share=share)
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = CallScreen(call, follow=False)
        await app.push_screen(screen)
        pane, view = screen.query_one(SharePane), screen.query_one(SharedTerminal)
        await wait_until(pilot, lambda: pane.side == "remote" and "line 40" in view.text())
        assert view.text().split("\n") == [f"line {i}" for i in range(35, 41)]

        await pilot.press("pageup")  # a page (rows - 1) back
        assert view.back == 5
        assert view.text().split("\n") == [f"line {i}" for i in range(30, 36)]
        assert "scrolled back 5 lines (End: live)" in visible_text(app)
        term.feed(_lines(41, 43))  # new lines: the view stays on the same ones
        await wait_until(pilot, lambda: view.back == 8, what="the view keeping its place")
        assert view.text().split("\n") == [f"line {i}" for i in range(30, 36)]
        await pilot.press("shift+down")
        assert view.back == 7 and view.text().startswith("line 31\n")
        await pilot.press("y")  # copies what is shown
        assert app.clipboard == "\n".join(f"line {i}" for i in range(31, 37))
        view.scroll_back(len(term.history) - view.back - 2)
        await pilot.press("pageup", "pageup")  # the top of the history, no further
        assert view.back == len(term.history)
        assert view.text().startswith("[red]not markup[/red]\nline 01")
        assert "[red]not markup[/red]" in view.lines[0].text  # literal, never markup

        await pilot.press("end")  # live again
        assert view.back == 0
        assert view.text().split("\n") == [f"line {i}" for i in range(38, 44)]
        assert "scrolled back" not in visible_text(app)
        term.feed(_lines(44, 44))
        await wait_until(pilot, lambda: view.text().endswith("line 44"), what="live lines")

        # Y: a range of the history and screen (1 = the oldest line kept), or the last N.
        for spec, want in (("2-4", ["line 01", "line 02", "line 03"]),
                           ("3", ["line 42", "line 43", "line 44"])):  # fmt: skip
            await pilot.press("Y")
            await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt), what="prompt")
            app.screen.query_one(Input).value = spec
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.screen is screen, what="the prompt closed")
            assert app.clipboard == "\n".join(want)
