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
        assert "● online" in visible_text(app)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        await wait_until(pilot, lambda: screen.check_status == "verified", what="check code")
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
        assert "online as tui@example.org" in visible_text(app)
        app.backend.contacts.add(Contact(name="Bob Dupont", emails=["bob@example.org"]))
        call = bob.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        # Named from the local contacts.
        await wait_until(pilot, lambda: "Bob Dupont" in visible_text(app), what="caller's name")
        await pilot.press("a")
        check = await call.wait_for(ev.CheckCode, T)
        assert check.status == "verified"
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        await wait_until(pilot, lambda: screen.sas == check.code, what="same check code")
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
        await wait_until(pilot, lambda: "DND on" in visible_text(app))
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


async def test_incoming_call_accept_with_video(server: str, peers: Any) -> None:
    """`v` answers with the `[video] source`: the caller receives its frames."""
    bob = await peers("bob@example.org")
    config = await register_tui_account(server, "tui@example.org")
    write_config({**config, **TEST_AUDIO, "video": {"source": "pattern:", "fps": 10}})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        call = bob.dial("tui@example.org", video_source="pattern:")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        # The prompt's buttons are composed just after the screen is pushed.
        await wait_until(pilot, lambda: "Video (v)" in _button_labels(app), what="video button")
        await pilot.press("v")
        await call.wait_for(ev.Connected, T)
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        assert app.last_call.options.video_source == "pattern:"
        await wait_until(
            pilot,
            lambda: call.remote_video is not None and call.remote_video.frames >= 3,
            what="the caller receives the TUI's video",
        )
        assert app.screen.has_class("-video")
        await call.hangup()
        await wait_until(pilot, lambda: app.last_call.ended is not None, what="ended")


async def test_incoming_call_accept_with_video_without_a_camera(server: str, peers: Any) -> None:
    """The default `camera:0` cannot be opened here: the call still connects and
    the call screen shows the fallback notice."""
    bob = await peers("bob@example.org")
    app = await _tui_signed_in(server)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        call = bob.dial("tui@example.org", video_source="pattern:")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        await pilot.press("v")
        await call.wait_for(ev.Connected, T)
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))

        def camera_notices() -> list[Any]:
            log = app.last_call.event_log
            return [e for e in log if e.kind == "notice" and e.source == "video-in"]

        await wait_until(pilot, camera_notices, what="the camera's fallback notice")
        [notice] = camera_notices()
        await wait_until(pilot, lambda: "Note: " in visible_text(app), what="notice shown")
        assert f"Note: {notice.text}" in visible_text(app)
        await call.hangup()
        await wait_until(pilot, lambda: app.last_call.ended is not None, what="ended")


def _button_labels(app: HelloApp) -> str:
    from textual.widgets import Button

    return " ".join(str(b.label) for b in app.screen.query(Button))


async def test_incoming_call_rings_on_the_output_until_answered(
    server: str, peers: Any, tmp_path: Any
) -> None:
    """With an output (here a `file:` sink) the prompt plays the 440/480 Hz
    cadence while it is open; declining stops it and closes the file."""
    from hello_tui.media.ring import RING_ON

    wav = tmp_path / "ring.wav"
    bob = await peers("bob@example.org")
    config = await register_tui_account(server, "tui@example.org")
    write_config({**config, **TEST_AUDIO})
    app = HelloApp(ring_bell=False, ring_output=f"file:{wav}")
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        call = bob.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        await wait_until(pilot, lambda: app.ringer is not None, what="ringing")
        ringer = app.ringer
        on = int(RING_ON * 48000)
        await wait_until(pilot, lambda: ringer.sink.samples >= on + 24000, what="tone + pause")
        assert not ringer.stopped
        await pilot.press("d")
        assert (await call.wait_ended(T)).reason == "rejected"
        await wait_until(pilot, lambda: ringer.stopped, what="ringing stopped")
        written = ringer.sink.samples
        await wait_until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert ringer.sink.samples == written  # nothing more reached the output
    samples = _read_wav(wav)
    assert len(samples) == written
    # Frame by frame, as the ring source made them: each 20 ms frame is either a
    # full tone frame or silence. Which frames reach the file depends on load (the
    # paced source skips ahead after a stalled loop), so positions are not checked;
    # what each frame holds is.
    frames = samples[: len(samples) // 960 * 960].reshape(-1, 960)
    loud = [_rms(f) for f in frames]
    assert loud[0] > 3000, loud[:3]  # the prompt opens on the tone
    assert all(x == 0 or x > 3000 for x in loud), sorted(set(round(x) for x in loud))[:5]
    first_pause = loud.index(0) if 0 in loud else len(loud)
    assert first_pause < len(loud), "the cadence pauses"
    assert first_pause <= on // 960  # never more than RING_ON of tone in a row
    tone = frames[:first_pause].reshape(-1)
    # The two tones of the ring, within the FFT's resolution over the tone
    # actually written (48000 / its length, in Hz; 1 Hz bins at best).
    low, high = sorted(_peaks(tone, 2))
    tolerance = max(3, 48000 // len(tone))
    assert abs(low - 440) <= tolerance and abs(high - 480) <= tolerance, (low, high)


def _read_wav(path: Any) -> Any:
    import av
    import numpy as np

    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float64)


def _rms(samples: Any) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def _peaks(samples: Any, n: int) -> list[int]:
    """The ``n`` strongest frequencies (Hz, 1 Hz bins over one second)."""
    import numpy as np

    spectrum = np.abs(np.fft.rfft(samples, 48000))  # first second, zero-padded
    found: list[int] = []
    for hz in np.argsort(spectrum)[::-1]:
        if all(abs(int(hz) - f) > 10 for f in found):
            found.append(int(hz))
        if len(found) == n:
            break
    return found
