"""Settings are saved through the config validator; feedback is recorded."""

from __future__ import annotations

import tomllib
from types import SimpleNamespace

from textual.widgets import Input, SelectionList, Switch

from hello_tui.config.paths import resolve_paths
from hello_tui.tui.app import HelloApp
from hello_tui.tui.feedback import read_feedback
from hello_tui.tui.screens.feedback import FeedbackPrompt
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.screens.settings import SettingsScreen

from .conftest import visible_text, wait_until, write_config


async def test_change_a_setting_and_refuse_a_bad_one() -> None:
    path = write_config({"audio": {"input": "sine:440", "output": "null:"}})
    before = path.read_text()
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        url = app.screen.query_one("#server-url", Input)
        url.value = "ftp://example.org"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "Not saved" in visible_text(app))
        assert "expected a ws://, wss://, http:// or https:// URL" in visible_text(app)
        assert path.read_text() == before  # nothing written
        url.value = ""
        app.screen.query_one("#telemetry", Switch).value = True
        app.screen.query_one("#dnd", Switch).value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        saved = tomllib.loads(path.read_text())
        assert saved["telemetry"]["enabled"] is True
        assert saved["audio"] == {"input": "sine:440", "output": "null:", "sample_rate": 48000}
        assert app.backend.settings.telemetry.enabled and app.backend.dnd
        assert "do not disturb" in visible_text(app)


async def test_feedback_sad_with_reasons() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        app.ask_feedback(SimpleNamespace(call_id="c1", duration=12.5))
        await wait_until(pilot, lambda: "How was your conversation?" in visible_text(app))
        assert isinstance(app.screen, FeedbackPrompt)
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen.query_one(SelectionList).has_focus)
        await pilot.press("space", "down", "space", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    [answer] = read_feedback(resolve_paths().data_dir)
    assert answer["happy"] is False and answer["reasons"] == ["audio-quality", "echo"]
    assert answer["call_id"] == "c1"


async def test_command_palette_lists_the_screen_keys() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in ("Call", "Echo", "Add", "Edit", "Del", "Block", "Import", "Settings", "DND"):
            assert title in titles
        await pilot.press("ctrl+p", *"settings", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))


def test_hello_tui_without_a_tty_prints_the_summary(cli_proc) -> None:  # type: ignore[no-untyped-def]
    r = cli_proc()
    assert r.code == 0 and "contacts: 0" in r.out and "\x1b[" not in r.out
