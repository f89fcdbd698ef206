"""SVG snapshots of the main screens at 80×24 (Textual is pinned exactly)."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from hello_tui.call import events as ev
from hello_tui.contacts.model import Contact
from hello_tui.history.store import CallRecord
from hello_tui.quality.sample import QualitySample
from hello_tui.tui.app import HelloApp
from hello_tui.tui.messages import CallEventMessage, QualityUpdate
from hello_tui.tui.screens import call as call_screen
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.main import MainScreen

from .conftest import wait_until
from .snapshot import assert_snapshot

T0 = 1_790_000_000.0  # a fixed instant (2026-09-21 UTC)


def png(width: int = 24, height: int = 24) -> bytes:
    """A small PNG (a face-ish disc on a gradient), written by hand: no image library."""
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            inside = (x - width / 2) ** 2 + (y - height / 2.2) ** 2 < (width / 3) ** 2
            row += bytes((230, 180, 140) if inside else (40 + 6 * y, 80, 160 - 4 * x))
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


def seed(app: HelloApp) -> None:
    store = app.backend.contacts
    store.add(
        Contact(
            name="Alice Martin",
            emails=["alice@example.org"],
            phones=["+33 6 12 34 56 78"],
            notes="Met at FOSDEM",
            favourite=True,
            photo=png(),
        )
    )
    store.add(Contact(name="Bob Dupont", emails=["bob@example.org"]))
    store.add(Contact(name="Élodie Zed", emails=["elodie@example.org"]))
    store.add(Contact(name="Mallory", emails=["mallory@example.org"], blocked=True))
    for i, (direction, peer, outcome, dur) in enumerate(
        [
            ("outgoing", "echo", "answered", 12.0),
            ("incoming", "Bob Dupont", "missed", 0.0),
            ("outgoing", "Alice Martin", "answered", 754.0),
        ]
    ):
        app.backend.history.add(CallRecord(direction, peer, outcome, T0 + 3600 * i, dur))


async def test_main_screen(tmp_path: Path) -> None:
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        seed(app)
        app.screen.refresh_contacts()  # type: ignore[attr-defined]
        await pilot.pause()
        assert_snapshot(app, "main_80x24", tmp_path)
        await pilot.press("t")
        await pilot.pause()
        assert_snapshot(app, "history_80x24", tmp_path)


async def test_call_screen_with_fixed_samples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(call_screen, "time", SimpleNamespace(time=lambda: T0 + 83))
    app = HelloApp(connect=False)
    fake = SimpleNamespace(peer="Alice Martin", stage="connecting", connected_at=T0, muted=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = CallScreen(fake, photo=png(), follow=False)
        await app.push_screen(screen)
        screen.post_message(CallEventMessage(fake, ev.Connected(setup_ms=31.0)))
        check = ev.CheckCode(status="verified", code="482 913")
        screen.post_message(CallEventMessage(fake, check))
        for i in range(40):
            sample = QualitySample(
                t=i + 1.0,
                interval_s=1.0,
                rtt_ms=20 + (i % 7) * 3,
                jitter_ms=2 + (i % 5),
                fraction_lost=(0.02 if i % 9 == 0 else 0.0),
                bitrate_in_kbps=38 + (i % 4),
                bitrate_out_kbps=40 + (i % 3),
                audio_level_in=0.05,
                audio_level_out=0.2,
                mos=4.3 - (i % 9 == 0) * 0.3,
                bars=5 if i % 9 else 4,
            )
            screen.post_message(QualityUpdate(fake, sample))
        await wait_until(pilot, lambda: screen.query_one("QualityPanel").samples == 40)
        await pilot.pause()
        assert_snapshot(app, "call_80x24", tmp_path)


async def test_contact_form_and_help_screens(tmp_path: Path) -> None:
    from hello_tui.tui.screens.forms import ContactForm
    from hello_tui.tui.screens.keys import KeysHelp

    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, ContactForm))
        await pilot.pause()
        assert_snapshot(app, "contact_form_80x24", tmp_path)
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, KeysHelp))
        await pilot.pause()
        assert_snapshot(app, "help_main_80x24", tmp_path)


async def test_call_screen_with_the_chat_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """80×24 with the chat open: the check code stays on screen, the messages
    are text (a markup tag, an ESC and a newline shown, not obeyed)."""
    from textual.widgets import Digits

    from hello_tui.tui.widgets.chat import ChatBadge, ChatPane

    monkeypatch.setattr(call_screen, "time", SimpleNamespace(time=lambda: T0 + 83))
    app = HelloApp(connect=False)
    fake = SimpleNamespace(peer="Alice Martin", stage="connecting", connected_at=T0, muted=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        screen = CallScreen(fake, photo=png(), follow=False)
        await app.push_screen(screen)
        screen.post_message(CallEventMessage(fake, ev.Connected(setup_ms=31.0)))
        screen.post_message(CallEventMessage(fake, ev.CheckCode(status="verified", code="482 913")))
        pane = screen.query_one(ChatPane)
        said = [
            ev.ChatMessage(t=T0 + 60, sender="local", name="me", text="hello?"),
            ev.ChatMessage(t=T0 + 61, sender="remote", name="Alice [b]M[/b]",
                           text="hi! [@click=app.quit]x[/] \x1b[2J\nforged line"),
        ]  # fmt: skip
        for event in said:
            pane.post_message(CallEventMessage(fake, event))
        await wait_until(pilot, lambda: len(pane.lines) == 2)
        badge = screen.query_one(ChatBadge)
        assert badge.display and "1 new" in str(badge.render())
        await pilot.press("c")
        await wait_until(pilot, lambda: pane.is_open and not badge.display)
        await pilot.pause()
        assert "\x1b" not in "".join(pane.lines) and "\n" not in "".join(pane.lines)
        assert "[@click=app.quit]x[/]" in pane.lines[1] and "␛[2J␊forged line" in pane.lines[1]
        sas = screen.query_one("#sas", Digits)
        assert sas.display and sas.region.bottom <= 24 - pane.outer_size.height
        assert_snapshot(app, "call_chat_80x24", tmp_path)
        await pilot.press("escape")
        assert not pane.is_open and not screen.has_class("-chat")
