"""Keys that are safe and discoverable: escape never ends a call or quits,
ctrl+q during a call asks, leaving Settings with changes asks, ``?`` lists the
screen's keys, forms fit small terminals."""

from __future__ import annotations

import asyncio

import pytest
from textual.command import CommandPalette
from textual.widget import Widget
from textual.widgets import Input

from hello_tui.config.paths import resolve_paths
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.forms import Confirm, ContactForm, UnsavedChanges
from hello_tui.tui.screens.keys import HIDDEN_ACTIONS, KeysHelp, TooSmall
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.screens.settings import SettingsScreen

from .conftest import TEST_AUDIO, T, visible_text, wait_until, write_config


async def test_escape_during_a_call_closes_only_what_is_on_top() -> None:
    write_config(TEST_AUDIO)
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        call = app.last_call
        # The command palette, then the key help, each closed with escape: the call stays.
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, KeysHelp))
        assert "Hang up" in _help_text(app) and "Mute" in _help_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        await pilot.press("escape")  # and escape on the call screen itself: nothing
        await pilot.pause(0.3)
        assert call.ended is None and app.screen is screen
        # ctrl+q mid-call asks; "n" keeps the call.
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        assert "End the call and quit?" in visible_text(app)
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen is screen)
        assert call.ended is None and app.is_running
        await pilot.press("h")  # the one hang-up key
        await wait_until(pilot, lambda: call.ended is not None, what="hung up")
        assert call.ended is not None and call.ended.reason == "hangup"


def _help_text(app: HelloApp) -> str:
    from textual.widgets import DataTable

    table = app.screen.query_one(DataTable)
    return " ".join(str(c) for row in range(table.row_count) for c in table.get_row_at(row))


async def test_help_lists_the_screen_bindings() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        main = app.screen
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, KeysHelp))
        shown = _help_text(app)
        for _node, binding, _on, _tip in main.active_bindings.values():
            if binding.description and binding.action not in HIDDEN_ACTIONS:
                assert binding.description in shown, binding.description
        assert "Reconnect" in shown  # hidden from the footer, listed here
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is main)


async def test_settings_with_a_change_asks_before_leaving() -> None:
    app = HelloApp(connect=False)
    config = resolve_paths().config_file
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen
        await pilot.press("escape")  # nothing changed: back at once
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        settings = app.screen
        settings.query_one("#server-url", Input).value = "ws://127.0.0.1:9/ws"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, UnsavedChanges))
        await pilot.press("escape")  # cancel: still in Settings, the change kept
        await wait_until(pilot, lambda: app.screen is settings)
        assert settings.query_one("#server-url", Input).value == "ws://127.0.0.1:9/ws"
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, UnsavedChanges))
        await pilot.press("d")  # discard
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert not config.exists() or "127.0.0.1:9" not in config.read_text()
        assert app.backend.settings.server.url == ""


def _drawn(app: HelloApp, widget: Widget) -> bool:
    """The widget is on screen, not covered and not clipped away."""
    region = widget.region
    if not region.area or not app.screen.region.contains_region(region):
        return False
    found, _ = app.screen.get_widget_at(region.x + region.width // 2, region.y)
    return found is widget or widget in found.ancestors


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_contact_form_fits_and_shows_why_it_refuses(size: tuple[int, int]) -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ContactForm))
        form = app.screen
        assert app.focused is form.query_one("#name", Input)
        assert "E-mails (comma-separated)" in visible_text(app)  # a label, not a placeholder
        await pilot.press(*"Bob", "enter")
        assert app.focused is form.query_one("#emails", Input)  # enter: the next field
        await pilot.press(*"not-an-address", "enter", "ctrl+s")
        await wait_until(pilot, lambda: "invalid e-mail address" in visible_text(app))
        await pilot.pause()
        assert _drawn(app, form.query_one("#form-error"))
        assert _drawn(app, form.query_one("#save"))
        assert app.backend.contacts.count() == 0


async def test_too_small_terminal_says_so() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(40, 12)) as pilot:
        await wait_until(pilot, lambda: bool(app.screen.query(TooSmall)))
        notice = app.screen.query_one(TooSmall)
        assert "at least 60×20" in str(notice.render())
        assert _drawn(app, notice)
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: not app.screen.query(TooSmall))
        await pilot.press("a")  # a screen pushed while small gets the notice too
        await wait_until(pilot, lambda: isinstance(app.screen, ContactForm))
        await pilot.resize_terminal(50, 24)
        await wait_until(pilot, lambda: bool(app.screen.query(TooSmall)))


async def test_the_palette_shows_its_help_texts_literally() -> None:
    """The palette renders a command's help as markup: "[video]" must not vanish
    ("Call the echo service with  source" before)."""
    from textual.content import Content

    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        shown = {
            c.title: Content.from_markup(c.help).plain for c in app.get_system_commands(app.screen)
        }
        assert (
            shown["Echo test with video"]
            == "Call the echo service with [video] source: see yourself"
        )
        assert all(text.startswith("key: ") for t, text in shown.items() if t == "Call")
