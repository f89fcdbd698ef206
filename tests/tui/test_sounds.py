"""Call sounds and recovery in the TUI: the Settings switches, the sounds of a
real echo call, and an unanswered call's Retry / Share a link."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path

from textual.widgets import Switch

from hello_tui.media.cues import duration
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.screens.settings import SettingsScreen
from tests.media.conftest import read_wav

from .conftest import TEST_AUDIO, T, visible_text, wait_until, write_config


async def test_each_call_sound_has_a_switch_with_a_word_and_is_saved() -> None:
    path = write_config(TEST_AUDIO)
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        for key in ("enabled", "connecting", "connected", "failed", "joined", "left", "message"):
            assert screen.query_one(f"#sound-{key}", Switch).value is True, key
            assert str(screen.query_one(f"#sound-{key}-word").render()) == "[x] on", key
        assert "Call sounds (on the audio output if a device" in visible_text(app)
        screen.query_one("#sound-message", Switch).value = False
        word = screen.query_one("#sound-message-word")
        await wait_until(pilot, lambda: str(word.render()) == "[ ] off", what="the word")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    saved = tomllib.loads(path.read_text())
    assert saved["sounds"] == {"message": False}  # only what changed is written
    assert app.backend.settings.sounds.message is False
    assert app.backend.settings.sounds.connected is True


async def test_an_echo_call_in_the_tui_sounds_its_cues(tmp_path: Path) -> None:
    wav = tmp_path / "cues.wav"
    write_config({**TEST_AUDIO, "sounds": {"output": f"file:{wav}"}})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        await pilot.press("e")
        await wait_until(pilot, lambda: "Connected" in visible_text(app), what="connected")
        await pilot.press("h")
        await wait_until(pilot, lambda: app.last_call.ended is not None, what="ended")
        session = app.backend.session
        assert session is not None and session.call_sounds is not None
        await asyncio.wait_for(session.call_sounds.player.idle(), T)
        assert session.call_sounds.player.played == ["connecting", "connected", "left"]
        samples, _, _ = read_wav(wav)  # the last cue, "left", whole (never cut short)
        assert len(samples) >= duration("left") * 48_000 - 1
