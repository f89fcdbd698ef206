"""Real calls from the TUI: the echo test through the embedded server, and
incoming calls from a scripted peer through a real server."""

from __future__ import annotations

import asyncio
from typing import Any

from hello_tui.call import events as ev
from hello_tui.contacts.model import Contact
from hello_tui.tui.app import HelloApp
from hello_tui.tui.feedback import read_feedback
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.feedback import FeedbackPrompt
from hello_tui.tui.screens.incoming import IncomingCall
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.widgets.quality import QualityPanel

from .conftest import TEST_AUDIO, T, register_tui_account, visible_text, wait_until, write_config


async def test_echo_call_connects_shows_quality_and_hangs_up() -> None:
    write_config(TEST_AUDIO)
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        assert app.backend.status().reachable and app.backend.embedded
        assert "embedded server: reachable" in visible_text(app)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        assert len(screen.sas) == 7 and screen.sas == app.last_call.sas  # "ddd ddd"
        assert "Connected · encrypted" in visible_text(app)
        panel = screen.query_one(QualityPanel)
        # The panel is fed by the call's Quality events only (one a second).
        await wait_until(pilot, lambda: panel.samples >= 2, what="two quality samples")
        shown = [e.sample for e in app.last_call.event_log if e.kind == "quality"]
        assert panel.last in shown
        await pilot.press("m")
        await wait_until(pilot, lambda: app.last_call.muted)
        await wait_until(pilot, lambda: "muted" in visible_text(app))
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, FeedbackPrompt), what="feedback")
        ended = app.last_call.ended
        assert ended.reason == "hangup" and ended.stage == "connected"
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        [answer] = read_feedback(app.backend.paths.data_dir)
        assert answer["happy"] is True and answer["call_id"] == ended.call_id
        [record] = app.backend.history.list()
        assert (record.peer, record.direction, record.outcome) == ("echo", "outgoing", "answered")
        await pilot.press("t")  # the history tab shows it
        await wait_until(pilot, lambda: "answered" in _history_cells(app))


def _history_cells(app: HelloApp) -> str:
    from textual.widgets import DataTable

    table = app.screen.query_one("#history", DataTable)
    return " ".join(str(c) for row in range(table.row_count) for c in table.get_row_at(row))


async def _tui_signed_in(server: str) -> HelloApp:
    config = await register_tui_account(server, "tui@example.org")
    write_config({**config, **TEST_AUDIO})
    return HelloApp(ring_bell=False)


async def test_incoming_call_accept(server: str, peers: Any) -> None:
    bob = await peers("bob@example.org")
    app = await _tui_signed_in(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        assert "signed in as tui@example.org" in visible_text(app)
        app.backend.contacts.add(Contact(name="Bob Dupont", emails=["bob@example.org"]))
        call = bob.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        # Named from the local contacts.
        await wait_until(pilot, lambda: "Bob Dupont" in visible_text(app), what="caller's name")
        await pilot.press("a")
        connected = await call.wait_for(ev.Connected, T)
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        await wait_until(pilot, lambda: screen.sas == connected.sas, what="same check code")
        await call.hangup()  # the far side hangs up: the TUI's call screen closes
        await wait_until(pilot, lambda: isinstance(app.screen, FeedbackPrompt))
        await pilot.press("escape")  # skipped in one key: nothing recorded
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert read_feedback(app.backend.paths.data_dir) == []
        [record] = app.backend.history.list()
        assert (record.direction, record.peer, record.outcome) == (
            "incoming",
            "Bob Dupont",
            "answered",
        )


async def test_incoming_call_decline(server: str, peers: Any) -> None:
    bob = await peers("bob@example.org")
    app = await _tui_signed_in(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        call = bob.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall))
        await pilot.press("d")
        ended = await call.wait_ended(T)
        assert ended.reason == "rejected"
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.backend.contacts.count() == 0  # declining blocks nobody


async def test_incoming_call_decline_and_block(server: str, peers: Any) -> None:
    bob = await peers("bob@example.org")
    app = await _tui_signed_in(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        call = bob.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall))
        await pilot.press("b")
        assert (await call.wait_ended(T)).reason == "rejected"
        await wait_until(pilot, lambda: app.backend.contacts.find_by_email("bob@example.org"))
        blocked = app.backend.contacts.find_by_email("bob@example.org")
        assert blocked.blocked
        await wait_until(pilot, lambda: "⊘ bob@example.org" in visible_text(app))
        # Bob calls again: refused as busy before ringing, no prompt.
        again = bob.dial("tui@example.org")
        assert (await again.wait_ended(T)).reason == "busy"
        assert isinstance(app.screen, MainScreen)


async def test_do_not_disturb_answers_busy_without_a_prompt(server: str, peers: Any) -> None:
    bob = await peers("bob@example.org")
    app = await _tui_signed_in(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        await pilot.press("d")
        await wait_until(pilot, lambda: "do not disturb" in visible_text(app))
        call = bob.dial("tui@example.org")
        assert (await call.wait_ended(T)).reason == "busy"
        assert isinstance(app.screen, MainScreen)
    assert "do_not_disturb = true" in app.backend.state_path.read_text()


async def test_start_echo_opens_straight_into_the_echo_call() -> None:
    """`hello-tui --echo` (what `./dev.sh run` runs): the newcomer's first screen
    is an echo call with the quality panel, no key needed."""
    write_config(TEST_AUDIO)
    app = HelloApp(ring_bell=False, start_echo=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        assert app.last_call.peer == "echo"
        await wait_until(pilot, lambda: screen.query_one(QualityPanel).samples >= 1)
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, FeedbackPrompt), what="feedback")
