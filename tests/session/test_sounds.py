"""Call sounds in the session layer (session/sounds.py): real calls through the
embedded server and the echo peer, the cues played into a real ``file:`` sink."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from hello_tui.call import events as ev
from hello_tui.config.paths import resolve_paths
from hello_tui.config.settings import Settings, SoundsSettings
from hello_tui.contacts.toml_store import TomlContactStore
from hello_tui.session.callers import Callers
from hello_tui.session.connect import Session
from hello_tui.session.sounds import cue_for, sound_output
from tests.media.conftest import read_wav
from tests.media.test_cues import zero_crossing_hz

T = 15.0


def settings_with(wav: Path, **sounds: Any) -> Settings:
    return msgspec.structs.replace(
        Settings(), sounds=SoundsSettings(output=f"file:{wav}", **sounds)
    )


async def echo_call(session: Session) -> list[str]:
    """An echo call: connect, then hang up; what sounded."""
    async with session as phone:
        call = phone.dial("echo")
        await call.wait_for(ev.MediaFlowing, T)
        await call.hangup()
        sounds = session.call_sounds
        assert sounds is not None
        await asyncio.wait_for(sounds.player.idle(), T)
        return list(sounds.player.played)


async def test_an_echo_call_sounds_connecting_connected_and_left(tmp_path: Path) -> None:
    wav = tmp_path / "cues.wav"
    session = Session(resolve_paths(), settings_with(wav), audio_in="sine:440",
                      audio_out="null:", sounds=True)  # fmt: skip
    assert await echo_call(session) == ["connecting", "connected", "left"]
    # The last cue is in the file: "left", a falling fourth (784 Hz, then 587 Hz).
    samples, _, _ = read_wav(wav)
    first, second = samples[1000:3000], samples[5000:9000]
    assert zero_crossing_hz(first) == pytest.approx(784, rel=0.03)
    assert zero_crossing_hz(second) == pytest.approx(587, rel=0.03)


async def test_do_not_disturb_silences_every_cue(tmp_path: Path) -> None:
    wav = tmp_path / "cues.wav"
    store = TomlContactStore(tmp_path / "contacts.toml")
    bells: list[int] = []
    session = Session(resolve_paths(), settings_with(wav), audio_in="sine:440",
                      audio_out="null:", sounds=True,
                      callers=Callers(store=store, dnd=lambda: True))  # fmt: skip
    session.bell = lambda: bells.append(1)
    assert await echo_call(session) == []
    assert not wav.exists() and bells == []


async def test_a_cue_switched_off_is_not_played(tmp_path: Path) -> None:
    wav = tmp_path / "cues.wav"
    session = Session(resolve_paths(), settings_with(wav, connected=False), audio_in="sine:440",
                      audio_out="null:", sounds=True)  # fmt: skip
    assert await echo_call(session) == ["connecting", "left"]
    off = Session(resolve_paths(), settings_with(wav, enabled=False), audio_in="sine:440",
                  audio_out="null:", sounds=True)  # fmt: skip
    wav.unlink()
    assert await echo_call(off) == [] and not wav.exists()


async def test_without_sounds_the_session_adds_no_listener(tmp_path: Path) -> None:
    session = Session(resolve_paths(), settings_with(tmp_path / "x.wav"), audio_out="null:")
    async with session as phone:
        assert session.call_sounds is None and not any(
            type(listener).__name__ == "CallSounds" for listener in phone.listeners
        )


async def test_a_call_that_fails_sounds_failed_or_the_bell(tmp_path: Path) -> None:
    """No such account: ``failed``. With no sound output (a ``null:`` call output,
    no [sounds] output) the bell rings for it, and only for it."""
    bells: list[int] = []
    session = Session(resolve_paths(), Settings(), audio_in="sine:440", audio_out="null:",
                      sounds=True)  # fmt: skip
    session.bell = lambda: bells.append(1)
    async with session as phone:
        call = phone.dial("nobody-here")
        ended = await call.wait_ended()
        assert ended.stage != "connected"
        assert session.call_sounds is not None
        await asyncio.wait_for(session.call_sounds.player.idle(), T)
        assert session.call_sounds.player.played == ["bell:failed"]
    assert bells == [1]


def _call(direction: str = "outgoing", room: bool = False) -> Any:
    return SimpleNamespace(direction=direction, is_room=room)


def _ended(reason: str, stage: str) -> ev.Ended:
    return ev.Ended(reason=reason, stage=stage, duration=0.0)  # type: ignore[arg-type]


def test_which_event_plays_which_cue() -> None:
    out, inc, room = _call(), _call("incoming"), _call(room=True)
    assert cue_for(out, ev.Dialing(to="bob")) == "connecting"
    assert cue_for(out, ev.Connected(setup_ms=1)) == "connected"
    assert cue_for(room, ev.Connected(setup_ms=1)) == "joined"
    assert cue_for(out, ev.ChatMessage(sender="remote", name="", text="hi")) == "message"
    assert cue_for(out, ev.ChatMessage(sender="local", name="", text="hi")) is None
    assert cue_for(room, _ended("hangup", "connected")) == "left"
    assert cue_for(inc, _ended("closed", "connected")) == "left"
    assert cue_for(out, _ended("unreachable", "connected")) == "failed"  # dropped
    for reason in ("busy", "rejected", "timeout", "unavailable", "media-fail"):
        assert cue_for(out, _ended(reason, "ringing")) == "failed", reason
    assert cue_for(out, _ended("cancel", "ringing")) is None  # we hung up ourselves
    assert cue_for(room, _ended("cancel", "waiting")) is None
    assert cue_for(inc, _ended("cancel", "ringing")) is None  # the ring stopping says it
    assert cue_for(out, ev.Ringing()) is None


def test_cues_play_on_the_call_output_only_when_it_is_a_device() -> None:
    assert sound_output("", "device:") == "device:"
    assert sound_output("", "device:USB") == "device:USB"
    assert sound_output("", "file:rec.wav") is None  # never into the call's recording
    assert sound_output("", "null:") is None
    assert sound_output("null:", "device:") == "null:"
    assert sound_output("file:x.wav", "device:") == "file:x.wav"
