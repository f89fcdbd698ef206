"""Call sounds and recovery in the TUI: the Settings switches, the sounds of a
real echo call, and an unanswered call's Retry / Share a link (a real server
whose ringing times out after 1 s, a real callee whose phone rings unanswered)."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from textual.widgets import Static, Switch

from hello_tui.media.cues import duration
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.call_ended import RetryOrShare, ShareLink
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.screens.settings import SettingsScreen
from hello_tui.util.qr import matrix_of_lines, qr_lines, qr_matrix
from tests.media.conftest import read_wav

from .conftest import TEST_AUDIO, T, register_tui_account, visible_text, wait_until, write_config


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


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """A real server whose calls stop ringing after 1 s (no answer)."""
    from hello_tui.server.app import create_app
    from hello_tui.server.settings import ServerSettings

    settings = ServerSettings(rate=0.0, max_connections_per_ip=0, ring_timeout=1.0)
    srv = TestServer(create_app(settings), host="127.0.0.1", port=0)
    await srv.start_server()
    yield str(srv.make_url("/ws"))
    await srv.close()


async def _unanswered(pilot: Any, app: HelloApp) -> None:
    """Call bob (whose phone rings, unanswered) until the offer shows."""
    await asyncio.wait_for(app.ready.wait(), T)
    app.place_call("bob@example.org", "Bob")
    await wait_until(pilot, lambda: isinstance(app.screen, RetryOrShare), what="the offer")
    # Current before drawn: wait for its words (the first frame can come late).
    await wait_until(pilot, lambda: "No answer" in visible_text(app), what="the offer drawn")
    assert "Bob" in visible_text(app)


async def test_an_unanswered_call_offers_a_link_with_its_qr_code(server: str, peers: Any) -> None:
    await peers("bob@example.org")  # online; never answers
    write_config({**await register_tui_account(server, "tui@example.org"), **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(100, 50)) as pilot:
        await _unanswered(pilot, app)
        await pilot.press("l")
        await wait_until(pilot, lambda: isinstance(app.screen, ShareLink), what="the link")
        rooms = await app.backend.list_rooms()
        assert [r.name for r in rooms] == ["Call with Bob"]
        url = rooms[0].url
        assert url and "#k=" in url
        shown = visible_text(app)
        assert url in shown and "Copied to the clipboard" in shown
        assert app.clipboard == url
        drawn = str(app.screen.query_one("#share-qr", Static).render()).splitlines()
        assert drawn == qr_lines(url)
        assert matrix_of_lines(drawn)[: len(qr_matrix(url))] == qr_matrix(url)
        await pilot.press("j")  # wait in the room for them
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="the room")
        await wait_until(pilot, lambda: app.screen.state == "waiting", what="waiting")
        assert app.last_call.is_room and app.last_call.room_token == rooms[0].token


async def test_retry_calls_again(server: str, peers: Any) -> None:
    bob = await peers("bob@example.org")
    write_config({**await register_tui_account(server, "tui@example.org"), **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await _unanswered(pilot, app)
        first = app.last_call
        await pilot.press("r")
        # Bob's phone rang twice: the first call, then the retry.
        rang = [await asyncio.wait_for(bob.next_incoming(), T) for _ in range(2)]
        assert rang[0].call_id != rang[1].call_id
        assert app.last_call is not first
        second = app.last_call
        await wait_until(pilot, lambda: second.ended is not None and isinstance(app.screen,
                         RetryOrShare), what="the offer again")  # fmt: skip
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        outcomes = [r.outcome for r in app.backend.history.list()]
        assert len(outcomes) == 2 and len(set(outcomes)) == 1


async def test_the_echo_test_failing_offers_retry_only() -> None:
    from hello_tui.call import events as ev
    from hello_tui.session.recovery import recovery_for

    ended = ev.Ended(reason="media-fail", stage="connecting", duration=0.0)
    offer = recovery_for(ended, outgoing=True, room=False, target="echo")
    assert offer is not None and not offer.share
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        app.push_screen(RetryOrShare(ended.line(), share=False))
        await wait_until(pilot, lambda: isinstance(app.screen, RetryOrShare))
        assert not app.screen.query("#share") and "Share" not in visible_text(app)
        await pilot.press("l")  # nothing: not offered
        assert isinstance(app.screen, RetryOrShare)
