"""Names are data in the TUI (issue 10, items 2-3): a caller's, a contact's or a
server's text is shown literally, never parsed as Textual markup, and never
reaches the terminal as control characters.

The audit's cases run end to end (a real server, real calling peers); the fuzz
part drives the same screens with hostile names directly, as a malicious server
could send them (the server's own policy would refuse most of them).
"""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hello_tui.history.store import CallRecord
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.incoming import IncomingCall
from hello_tui.tui.screens.main import MainScreen
from hello_tui.util.display import printable

from .conftest import TEST_AUDIO, T, register_tui_account, visible_text, wait_until, write_config

MARKUP_NAMES = ["[/]", "[@click=app.quit]x", "[link=http://x]y", "[b]bold[/b]", "[red"]


def _shown(app: HelloApp) -> str:
    return visible_text(app)


def _notifications(app: HelloApp) -> list[Any]:
    return list(app._notifications)


def _no_controls(text: str) -> bool:
    return not any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") and c != "\n" for c in text)


async def _tui(server: str) -> HelloApp:
    config = await register_tui_account(server, "tui@example.org")
    write_config({**config, **TEST_AUDIO})
    return HelloApp(ring_bell=False)


async def test_markup_named_callers_are_prompted_literally(server: str, peers: Any) -> None:
    """The audit: an account named ``[/]`` calling hid the prompt for it and every later
    caller, and quitting printed MarkupError. Each caller is prompted, named literally."""
    callers = [await peers(name) for name in MARKUP_NAMES]
    app = await _tui(server)
    async with app.run_test(size=(100, 30)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        for name, phone in zip(MARKUP_NAMES, callers, strict=True):
            call = phone.dial("tui@example.org")
            await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what=name)
            await wait_until(pilot, lambda n=name: n in _shown(app), what=f"{name} shown")
            await pilot.press("d")
            assert (await call.wait_ended(T)).reason == "rejected"
            await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
            declined = f"Declined the call from {name}"
            await wait_until(
                pilot, lambda d=declined: any(n.message == d for n in _notifications(app))
            )
        assert all(not n.markup for n in _notifications(app))
        await pilot.pause()
    # Leaving run_test re-raises anything the app raised (a MarkupError included).
    assert app.return_code in (None, 0)


async def test_a_malicious_server_cannot_forge_the_prompt(
    server: str, peers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the server's name policy switched off (a hostile server), a caller named
    with ESC, newlines and bidi overrides is still shown on one line, visibly."""
    from hello_tui.server import accounts

    monkeypatch.setattr(accounts, "check_name", lambda name: name)
    hostile = "Mum\n\x1b[2J\x1b]0;owned\x07Incoming call from Your Bank\u202e[/]"
    mallory = await peers(hostile)
    app = await _tui(server)
    async with app.run_test(size=(120, 30)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        call = mallory.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        await wait_until(pilot, lambda: bool(app.screen.query("#incoming-peer")), what="peer label")
        label = str(app.screen.query_one("#incoming-peer").render())
        assert label == printable(hostile)
        assert "\x1b" not in label and "\n" not in label and "\u202e" not in label
        assert "␛" in label and "␊" in label  # visible, not obeyed
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
        peer = str(app.screen.query_one("#call-peer").render())
        assert peer == printable(hostile)
        await call.hangup()
        await wait_until(pilot, lambda: not isinstance(app.screen, CallScreen))
        [record] = app.backend.history.list()
        assert record.peer == hostile  # stored as received; escaped where shown
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        await pilot.press("t")
        table = app.screen.query_one("#history")
        cells = [str(c) for c in table.get_row_at(0)]
        assert any(c.endswith(f"← {printable(hostile)}") for c in cells)  # after the arrow
        assert all(_no_controls(n.message) for n in _notifications(app))


# ---------------------------------------------------------------- fuzz
class StubCall:
    """What the prompt and call screen read from a call; it never ends by itself."""

    stage = "connecting"
    video = False
    muted = False
    remote_video = local_video = video_track = None
    event_log: tuple[Any, ...] = ()

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self._ended = asyncio.Event()

    async def wait_ended(self, timeout: float | None = None) -> Any:
        await self._ended.wait()


hostile_text = st.one_of(
    st.sampled_from(
        [
            "[/]",
            "[@click=app.quit]x",
            "[link=http://x]y",
            "\x1b[2J\x1b]0;title\x07",
            "a\nb\r\nc",
            "\u202eabc\u2066d\u2069",
            "z\u200bw\u200dj\ufeff",
            "\u0301" * 50,
            "x" * 5000,
        ]
    ),
    st.text(st.sampled_from("[]/@=\\\x1b\n\r\t\x07\u202e\u200b\u2028ab "), max_size=40),
    st.text(max_size=60),
)


async def _faces(names: list[str]) -> None:
    app = HelloApp(connect=False, ring_bell=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen), what="main")
        for index, name in enumerate(names):
            await _one_name(app, pilot, name, f"Missed call {index} from {name}")
    # Leaving run_test re-raises anything the app raised (a MarkupError included).


async def _one_name(app: HelloApp, pilot: Any, name: str, missed_text: str) -> None:
    expected = printable(name)
    prompt = IncomingCall(StubCall(name))
    await app.push_screen(prompt)
    assert str(prompt.query_one("#incoming-peer").render()) == (expected or "anonymous")
    prompt.dismiss("gone")
    await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    screen = CallScreen(StubCall(name), follow=False)
    await app.push_screen(screen)
    assert str(screen.query_one("#call-peer").render()) == (expected or "call")
    app.notify(missed_text, title=name)  # on the call screen: its notice list, no toast
    notice = str(screen.query_one("#call-notice").render())
    assert printable(missed_text, 1000)[:50] in notice and _no_controls(notice)
    app.backend.history.add(CallRecord("incoming", name, "missed"))
    screen.dismiss(None)
    await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
    app.notify(missed_text, title=name)  # on the main screen: a toast
    main = app.screen
    assert isinstance(main, MainScreen)
    main.refresh_history()
    cells = [str(c) for c in main.query_one("#history").get_row_at(0)]
    assert any(c.endswith(f"← {printable(name, 200)}") for c in cells)  # after the arrow

    def shown() -> list[Any]:
        return [n for n in _notifications(app) if n.message == printable(missed_text, 1000)]

    await wait_until(pilot, shown, what="notification")
    assert all(not n.markup and _no_controls(n.message + n.title) for n in shown())
    await pilot.pause()  # the toast is drawn
    assert _no_controls(_shown(app))


@settings(
    max_examples=6,  # x 5 names each, in one app: ~30 names
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(names=st.lists(hostile_text, min_size=1, max_size=5))
@example(names=["x" * 2000])  # found by CI: a long name as the title pushed the message out
def test_fuzz_hostile_names_through_every_face(names: list[str]) -> None:
    write_config(TEST_AUDIO)
    asyncio.run(_faces(names))
