"""The call screen's ``s`` prompt with ``tmux:PANE``: a real tmux server on a
private socket, a real share session (no call: nothing is sent), Pilot keys."""

from __future__ import annotations

from types import SimpleNamespace

from textual.widgets import Input

from hello_tui.share.session import ShareSession
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.forms import TextPrompt
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.widgets.shared_terminal import SharedTerminal, SharePane
from tests.call.test_share_tmux import Tmux, pytestmark, tmux

from .conftest import wait_until

__all__ = ["pytestmark", "tmux"]  # the fixture and the skip without tmux, shared


async def test_s_shares_a_tmux_pane_and_says_when_there_is_none(tmux: Tmux) -> None:
    tmux("send-keys", "-t", "work:0", "in the pane", "Enter")
    share = ShareSession(on_change=lambda change: None, on_notice=lambda text: None)
    call = SimpleNamespace(peer="Bob", stage="connected", connected_at=0, muted=False, share=share)
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = CallScreen(call, follow=False)
        await app.push_screen(screen)
        for value in ("tmux:nosuch", "tmux:work:0"):
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt), what="prompt")
            app.screen.query_one(Input).value = value
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.screen is screen, what="the prompt closed")
            if value == "tmux:nosuch":
                await wait_until(  # a notice on the call screen (app.notify)
                    pilot,
                    lambda: any(n.startswith("no tmux pane 'nosuch'") for n in screen.notices),
                    what="the one-line error",
                )
        view = screen.query_one(SharedTerminal)
        await wait_until(pilot, lambda: screen.query_one(SharePane).side == "local", what="ours")
        await wait_until(pilot, lambda: "in the pane" in view.text(), what="the pane shown")
        assert share.sharing and not share.granted
        await pilot.press("s")  # stops: our tmux session goes with the client
        await wait_until(pilot, lambda: not share.sharing, what="stopped")
        await wait_until(
            pilot, lambda: tmux("list-sessions", "-F", "#{session_name}") == "work", what="gone"
        )
    await share.close()
