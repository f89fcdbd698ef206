"""What must stay in view at the smallest supported sizes (60×20) and at 80×24:
the call screen's check code and newest notice (the quality panel gives way),
the History table's four columns, every note of the last call. Asserted on the
screen as drawn (``screen_text``), not on widget state."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from hello_tui.call import events as ev
from hello_tui.history.store import CallRecord
from hello_tui.quality.sample import QualitySample
from hello_tui.tui.app import HelloApp
from hello_tui.tui.messages import CallEventMessage, QualityUpdate
from hello_tui.tui.screens.call import SAS_LABEL, CallScreen
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.widgets.quality import QualityPanel

from .conftest import screen_text, wait_until

SIZES = [(60, 20), (80, 24)]
FALLBACKS = [
    "no audio input device (PortAudio found no devices); using silence",
    "no audio output device; the call is not heard",
]


def sample(i: int, local: str = "host", remote: str = "relay") -> QualitySample:
    return QualitySample(
        t=i + 1.0, interval_s=1.0, rtt_ms=20, jitter_ms=3, bitrate_in_kbps=40,
        bitrate_out_kbps=40, audio_level_in=0.05, audio_level_out=0.2, mos=4.3, bars=5,
        candidate_type=local, remote_candidate_type=remote,  # type: ignore[arg-type]
    )  # fmt: skip


def words(text: str) -> list[str]:
    return text.split()


async def open_call(app: HelloApp, pilot: object) -> CallScreen:
    fake = SimpleNamespace(peer="Alice Martin", stage="connecting", connected_at=0, muted=False)
    await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    screen = CallScreen(fake, follow=False)
    await app.push_screen(screen)
    screen.post_message(CallEventMessage(fake, ev.Connected(setup_ms=31.0)))
    screen.post_message(CallEventMessage(fake, ev.CheckCode(status="verified", code="482 913")))
    return screen


@pytest.mark.parametrize("size", SIZES)
async def test_the_check_code_and_the_newest_notice_stay_in_view(size: tuple[int, int]) -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=size) as pilot:
        screen = await open_call(app, pilot)
        for i in range(3):
            screen.post_message(QualityUpdate(screen.call, sample(i)))
        for notice in [*FALLBACKS, "camera unavailable", "the newest notice"]:
            screen.add_notice(notice)
        panel = screen.query_one(QualityPanel)
        await wait_until(pilot, lambda: panel.samples == 3)

        def shown() -> bool:
            text = screen_text(app)
            # the label whole (wrapped at 60 columns, never cut), the last notice's line
            return (
                words(SAS_LABEL)
                == [w for w in words(text) if w in words(SAS_LABEL)][: len(words(SAS_LABEL))]
                and "Note: the newest notice" in text
            )

        await wait_until(pilot, shown, what=f"check code and notices at {size}:\n"
                         + screen_text(app))  # fmt: skip
        # The digits and the notices are laid out inside the screen, above the footer.
        bottom = app.size.height - 1  # the footer's line
        for widget in (screen.query_one("#sas"), screen.query_one("#call-notice")):
            region = widget.region
            assert region.height > 0 and region.y >= 0 and region.bottom <= bottom, widget
        assert screen.scroll_y == 0  # nothing pushed the screen into scrolling


async def test_the_quality_panel_is_full_when_there_is_room() -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_call(app, pilot)
        panel = screen.query_one(QualityPanel)
        screen.post_message(QualityUpdate(screen.call, sample(0)))
        await wait_until(pilot, lambda: panel.samples == 1)
        await wait_until(pilot, lambda: "Speak." in screen_text(app), what=screen_text(app))
        assert not panel.has_class("-compact")
        text = screen_text(app)
        assert "Jitter 3 ms" in " ".join(text.split())  # a row of its own, not the line


@pytest.mark.parametrize(
    ("local", "remote", "word"), [("host", "relay", "relay"), ("srflx", "host", "direct")]
)
async def test_the_quality_panel_says_how_media_travels(local: str, remote: str, word: str) -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_call(app, pilot)
        panel = screen.query_one(QualityPanel)
        await wait_until(pilot, lambda: "waiting for the first sample" in screen_text(app))
        screen.post_message(QualityUpdate(screen.call, sample(0, local, remote)))
        await wait_until(pilot, lambda: f"path: {word}" in screen_text(app), what=screen_text(app))
        assert panel.border_subtitle == f"path: {word}"


@pytest.mark.parametrize("size", SIZES)
async def test_history_shows_its_four_columns(size: tuple[int, int]) -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        now = time.time()
        calls = [
            CallRecord("outgoing", "someone-with-a-long-name@example.org", "answered-elsewhere",
                       now, 3754.0),
            CallRecord("incoming", "Bob Dupont", "missed", now - 86400),
            CallRecord("outgoing", "Alice Martin", "unreachable", now - 2 * 86400),
            CallRecord("outgoing", "echo", "answered", now - 3 * 86400, 754.0),
        ]  # fmt: skip
        for record in calls:
            app.backend.history.add(record)
        await pilot.press("t")

        def columns() -> bool:
            text = screen_text(app)
            return all(h in text for h in ("When", "Who", "Outcome", "Length")) and all(
                v in text for v in ("12:34", "1:02:34", "● new", "→ echo")
            )

        await wait_until(pilot, columns, what=f"four columns at {size}:\n{screen_text(app)}")
        # a long name is cut with an ellipsis, not the columns after it
        assert "→ someone" in screen_text(app) and "…" in screen_text(app)


@pytest.mark.parametrize("size", SIZES)
async def test_every_note_of_the_last_call_is_shown_and_readable_in_full(
    size: tuple[int, int],
) -> None:
    from hello_tui.tui.screens.notes import CallNotes

    app = HelloApp(connect=False)
    async with app.run_test(size=size) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = app.screen
        assert isinstance(screen, MainScreen)
        long = "the far side's network changed; the call moved to a relay " * 2 + "END"
        notes = [*FALLBACKS, long, "the last note"]
        screen.show_call_notes(notes)

        def every_note() -> bool:
            lines = screen_text(app).splitlines()
            return all(any(f"• {n[:30]}" in line for line in lines) for n in notes)

        await wait_until(pilot, every_note, what=f"every note at {size}:\n{screen_text(app)}")
        # one line each: the long one is cut with an ellipsis, not wrapped over the next
        line = next(x for x in screen_text(app).splitlines() if "moved to a relay" in x)
        assert "END" not in line and "…" in line
        await pilot.press("n")  # the notes in full
        await wait_until(pilot, lambda: isinstance(app.screen, CallNotes))
        await wait_until(pilot, lambda: "END" in screen_text(app), what=screen_text(app))
        assert "the last note" in screen_text(app)
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.screen is screen)
        assert screen.call_notes == notes  # closing the detail is not dismissing the notes
