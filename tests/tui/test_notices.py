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
    monkeypatch.setenv(devices.BACKEND_ENV, "portaudio")  # not a sound server's devices either
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


@pytest.mark.parametrize("size", [(80, 24), (60, 20)])
async def test_toasts_never_cover_the_last_calls_notices(size: tuple[int, int]) -> None:
    """The "Call … ended" toast (and any other) lands above the main screen's
    "Last call" strip, not over its right half."""
    from textual.widgets._toast import Toast  # no public name: the type is what is drawn

    app = HelloApp(connect=False)
    async with app.run_test(size=size, notifications=True) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        long = "no audio input device (PortAudio found no devices); using silence " * 2
        screen.show_call_notes([long, "no audio output device; the call is not heard", "x"])
        # (a long timeout: a loaded machine must not see them expire mid-test)
        app.notify("Call with echo ended: hangup after 0:42", timeout=600)
        app.notify("a second toast, stacked above the first", timeout=600)
        await wait_until(pilot, lambda: len(screen.query(Toast)) == 2, what="two toasts")
        await pilot.pause()
        strip = screen.query_one("#call-notes").region
        assert strip.height >= 2
        for toast in screen.query(Toast):
            assert toast.region.height > 0
            assert not toast.region.overlaps(strip), (toast.region, strip)
        # Without notices the toasts sit in their usual place, just above the footer.
        screen.show_call_notes([])
        await pilot.pause()
        assert max(t.region.bottom for t in screen.query(Toast)) == size[1] - 1


async def test_toasts_from_before_a_call_do_not_cover_the_call_screen() -> None:
    from textual.widgets._toast import Toast

    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        app.notify("Added Bob", timeout=600)
        await wait_until(pilot, lambda: len(app.screen.query(Toast)) == 1, what="a toast")
        screen = CallScreen(None, follow=False)
        await app.push_screen(screen)
        screen.add_notice("no audio input device; using silence")
        app.notify("during the call")  # joins the list
        await pilot.pause()
        assert not screen.query(Toast)
        assert screen.notices == ["no audio input device; using silence", "during the call"]
