"""Settings are saved through the config validator; feedback is recorded."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from textual.command import CommandPalette
from textual.widgets import Input, Select, SelectionList, Switch, TextArea

from hello_tui.config.paths import resolve_paths
from hello_tui.telemetry.store import TelemetryStore
from hello_tui.tui.app import HelloApp
from hello_tui.tui.feedback import read_feedback
from hello_tui.tui.screens.feedback import FeedbackPrompt
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.screens.rooms import RoomsScreen
from hello_tui.tui.screens.settings import SentScreen, SettingsScreen
from hello_tui.tui.widgets.status import StatusLine

from .conftest import TEST_AUDIO, RunningServer, T, visible_text, wait_until, write_config


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
        app.screen.query_one("#camera", Select).value = "pattern:"
        app.screen.query_one("#video-default", Switch).value = True
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        saved = tomllib.loads(path.read_text())
        assert saved["telemetry"]["enabled"] is True
        assert saved["video"]["source"] == "pattern:" and saved["video"]["enabled"] is True
        # Only the changed keys are written: the rest stays as the user left it.
        assert saved["audio"] == {"input": "sine:440", "output": "null:"}
        assert app.backend.settings.telemetry.enabled and app.backend.dnd
        assert "DND on" in visible_text(app)


async def test_feedback_sad_with_reasons_reaches_the_server(server_app: RunningServer) -> None:
    """The answer goes through the telemetry package to the real server's
    /feedback (its aggregator counts it), shows in Settings › What was sent,
    and is kept in the local journal."""
    write_config({"server": {"url": server_app.url}, **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        assert app.backend.telemetry_server == server_app.url
        app.ask_feedback(SimpleNamespace(call_id="c1", duration=12.5), server=server_app.url)
        await wait_until(pilot, lambda: "How was your conversation?" in visible_text(app))
        assert isinstance(app.screen, FeedbackPrompt)
        assert "Sent to 127.0.0.1:" in visible_text(app)  # says where it goes
        await pilot.press("n")
        await wait_until(pilot, lambda: app.screen.query_one(SelectionList).has_focus)
        assert "[ ] " in visible_text(app) and "[x] " not in visible_text(app)
        await pilot.press("space", "down", "space")
        await wait_until(pilot, lambda: visible_text(app).count("[x] ") == 2, what="[x] marks")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        feedback = server_app.telemetry.feedback
        await wait_until(pilot, lambda: feedback["rating"]["sad"] == 1, what="server got it")
        assert dict(feedback["reason"]) == {"audio-quality": 1, "video-quality": 1}
        store = TelemetryStore(app.backend.paths.data_dir)
        [sent] = store.sent()
        assert sent.kind == "feedback" and sent.url.endswith("/feedback") and not store.queued()
        body = json.loads(sent.body)
        assert body["rating"] == "sad" and "c1" not in sent.body  # nothing links it to the call
        # Settings › What was sent (ctrl+t): the same text as `hello-tui privacy`.
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await pilot.press("ctrl+t")
        await wait_until(pilot, lambda: isinstance(app.screen, SentScreen))
        shown = app.screen.query_one(TextArea).text
        assert sent.body in shown and "Call reports: off" in shown
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
    [answer] = read_feedback(resolve_paths().data_dir)
    assert answer["happy"] is False and answer["reasons"] == ["audio-quality", "video-quality"]
    assert answer["call_id"] == "c1" and answer["sent_to"] == sent.url


async def test_feedback_with_the_embedded_server_stays_on_the_device() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        app.ask_feedback(SimpleNamespace(call_id="c2", duration=3.0))
        await wait_until(pilot, lambda: "Kept on this device" in visible_text(app))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    [answer] = read_feedback(resolve_paths().data_dir)
    assert answer["happy"] is True and answer["sent_to"] is None
    store = TelemetryStore(resolve_paths().data_dir)
    assert store.queued() == [] and store.sent() == []


async def test_q_on_the_feedback_prompt_skips_and_quits() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        app.ask_feedback(SimpleNamespace(call_id="c3", duration=2.0))
        await wait_until(pilot, lambda: "How was your conversation?" in visible_text(app))
        await pilot.press("q")
        await wait_until(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0
    assert read_feedback(resolve_paths().data_dir) == []  # skipped: nothing recorded


async def test_command_palette_lists_the_screen_keys() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        titles = {c.title for c in app.get_system_commands(app.screen)}
        for title in ("Call", "Echo", "Rooms", "Add", "Edit", "Delete", "Block", "Import",
                      "Settings", "DND"):  # fmt: skip
            assert title in titles
        await pilot.press("ctrl+p")  # the palette itself (not "s" typed on the main screen)
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"rooms", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, RoomsScreen))
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("f1")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"settings", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))


async def test_the_palette_lists_only_the_keys_the_screen_allows() -> None:
    """Screen.active_bindings (public): on the embedded server the rooms screen hides
    its server actions, and the palette does not offer them either."""
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("R")
        await wait_until(pilot, lambda: isinstance(app.screen, RoomsScreen))
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Back", "Settings"} <= titles
        assert not titles & {"New room", "Join", "Copy URL", "Rename", "Del", "Refresh"}


async def test_the_status_line_is_pushed_not_polled() -> None:
    """The backend says when its status changes and every status line redraws at
    once (the reactive's watcher), before any timer could run."""
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        main_line = app.screen.query_one(StatusLine)
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        lines = [main_line, app.screen.query_one(StatusLine)]
        assert all("DND off" in str(line.render()) for line in lines)
        app.backend.set_dnd(True)  # not through the app: the backend tells it
        assert all("DND on" in str(line.render()) for line in lines)
        assert app.status.dnd


def test_hello_tui_without_a_tty_prints_the_summary(cli_proc) -> None:  # type: ignore[no-untyped-def]
    r = cli_proc()
    assert r.code == 0 and "contacts: 0" in r.out and "\x1b[" not in r.out


async def test_settings_input_meter_and_test_tone(tmp_path: Path) -> None:
    """The selected input's level is shown live (sine:440: about -15 dBFS) and
    closed on leaving; the test tone plays 1 s of 440 Hz on the selected output."""
    wav = tmp_path / "tone.wav"
    write_config({"audio": {"input": "sine:440", "output": f"file:{wav}"}})
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        await wait_until(pilot, lambda: "dBFS" in visible_text(app), what="a level")
        level = next(line for line in visible_text(app).splitlines() if "dBFS" in line)
        dbfs = int(level.split()[-2].replace("−", "-"))
        assert -20 <= dbfs <= -10 and "█" in level
        source = screen.meter_source
        assert source is not None and source.readyState == "live"
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: screen.tones_played == 1, what="test tone played")
        assert "played 1 s of 440 Hz" in visible_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert source.readyState == "ended"  # the input is closed on leaving
    samples = _read_wav(wav)
    assert abs(len(samples) - 48000) <= 960
    spectrum = np.abs(np.fft.rfft(samples, 48000))
    assert abs(int(np.argmax(spectrum)) - 440) <= 3  # a bin or two of leakage, not a pitch


def _read_wav(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float64)


async def test_settings_at_60x20_focused_pinned_and_readable_without_colour() -> None:
    write_config({"audio": {"input": "sine:440", "output": "null:"}})
    app = HelloApp(connect=False)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        await wait_until(pilot, lambda: app.focused is screen.query_one("#audio-in"))
        # Save and the error line stay in view over the scrolling body.
        for wid in ("#save", "#back"):
            button = screen.query_one(wid)
            region = button.region
            assert region.height and screen.region.contains_region(region), wid
            widget, _ = screen.get_widget_at(region.x + 1, region.y + region.height // 2)
            assert widget is button or button in widget.ancestors, wid
        # Each switch says its state in a word as well as its colour.
        word = screen.query_one("#dnd-word")
        assert str(word.render()) == "[ ] off"
        screen.query_one("#dnd", Switch).value = True
        await wait_until(pilot, lambda: str(word.render()) == "[x] on", what="the word")
        # Register is not offered (footer, palette) while the profile has an account.
        bindings = {b.action for _, b, _, _ in screen.active_bindings.values()}
        assert "register" in bindings and "sign_out" not in bindings


async def test_register_is_not_offered_while_signed_in_as_a_name() -> None:
    write_config({"account": {"name": "me@example.org"}, **TEST_AUDIO})
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        bindings = {b.action for _, b, _, _ in app.screen.active_bindings.values()}
        assert "register" not in bindings and "sign_out" in bindings


def test_the_camera_list_offers_only_cameras_that_exist(tmp_path: Path) -> None:
    from hello_tui.media.cameras import list_cameras
    from hello_tui.tui.screens.settings import camera_options

    for name, index, label in (("video0", "0", "Integrated"), ("video1", "1", "meta"),
                               ("video2", "0", "USB [cam]")):  # fmt: skip
        node = tmp_path / name
        node.mkdir()
        (node / "index").write_text(index)
        (node / "name").write_text(label)
    values = [v for _, v in camera_options("camera:0", list_cameras(tmp_path))]
    assert values == ["camera:0", "camera:2", "pattern:", "null:"]  # not the metadata node
    none_here = camera_options("camera:0", [])
    assert [v for _, v in none_here] == ["camera:0", "pattern:", "null:"]
    assert "not found" in none_here[0][0]


async def test_audio_processing_switches_saved_keeping_the_comments() -> None:
    """[audio] aec / noise_suppression / auto_gain: switches with their word, saved
    through the comment-preserving writer (only the changed key written)."""
    path = write_config({"audio": {"input": "sine:440", "output": "null:"}})
    path.write_text("# my phone\n" + path.read_text().replace("[audio]", "[audio] # mine"))
    app = HelloApp(connect=False)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        screen = app.screen
        for key in ("aec", "noise_suppression", "auto_gain", "echo_tuning"):  # defaults: on
            assert str(screen.query_one(f"#audio-{key}-word").render()) == "[x] on", key
        screen.query_one("#audio-aec", Switch).value = False
        screen.query_one("#audio-echo_tuning", Switch).value = False
        word = screen.query_one("#audio-aec-word")
        await wait_until(pilot, lambda: str(word.render()) == "[ ] off", what="the word")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        text = path.read_text()
        assert text.startswith("# my phone\n") and "[audio] # mine" in text
        saved = tomllib.loads(text)
        assert saved["audio"] == {
            "input": "sine:440", "output": "null:", "aec": False, "echo_tuning": "default"
        }  # fmt: skip
        audio = app.backend.settings.audio
        assert (audio.aec, audio.noise_suppression, audio.auto_gain) == (False, True, True)
        assert audio.echo_tuning == "default"
