"""The call screen keeps the call's notices, not only the last: an echo call
with no sound card here (``device:`` in and out) gets both fallbacks, and a
notification during the call joins the list instead of a toast over the check
code."""

from __future__ import annotations

import pytest

from hello_tui.media import devices
from hello_tui.media.errors import AudioUnavailable
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import NOTICES_KEPT, CallScreen
from hello_tui.tui.screens.feedback import FeedbackPrompt
from hello_tui.tui.screens.main import MainScreen
from tests.tui.conftest import wait_until, write_config


def notes(app: HelloApp) -> list[str]:
    assert isinstance(app.screen, CallScreen)
    return app.screen.notices


async def test_every_notice_of_the_call_stays_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine with no sound card (the one fake the suite allows): a PulseAudio
    # started by another test would otherwise give PortAudio real devices.
    def no_sound_card() -> None:
        raise AudioUnavailable("PortAudio found no devices")

    monkeypatch.setattr(devices, "portaudio", no_sound_card)
    write_config({"audio": {"input": "device:", "output": "device:"}})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: app.backend.online, what="online")
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
        await wait_until(pilot, lambda: len(notes(app)) >= 2, what="two fallback notices")
        shown = str(app.screen.query_one("#call-notice").render())
        # One line per notice, newlines not escaped into the text (plain() shows
        # a control character as a visible symbol).
        assert shown.splitlines()[: len(notes(app))] == [f"Note: {t}" for t in notes(app)]
        toasts = len(app._notifications)
        app.notify("something to say")  # as a screen would: no toast over the check code
        assert notes(app)[-1] == "something to say" and len(app._notifications) == toasts
        for i in range(NOTICES_KEPT + 2):
            app.notify(f"n{i}")
        assert len(notes(app)) == NOTICES_KEPT and notes(app)[-1] == f"n{NOTICES_KEPT + 1}"
        kept = list(notes(app))
        await pilot.press("h")
        await wait_until(pilot, lambda: not isinstance(app.screen, CallScreen), what="hung up")
        # The main screen keeps the call's notices in view until seen.
        if isinstance(app.screen, FeedbackPrompt):
            await pilot.press("escape")  # skip the question
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="main screen")
        strip = app.screen.query_one("#call-notes")
        assert strip.display and app.screen.call_notes == kept
        assert all(n in str(strip.render()) for n in kept)
        await pilot.press("escape")  # seen
        await wait_until(pilot, lambda: not strip.display, what="dismissed")
        assert app.screen.call_notes == []
