"""Sound devices in the TUI while it runs: Settings re-lists them (hot-plug);
the call screen's picker (``a``) moves a call's microphone and speaker.

A private PulseAudio daemon whose null sinks PortAudio lists as sound cards
(``tests/pulse.py``); a device is plugged in by loading another null sink
(and naming it in the ALSA config) while Settings is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from hello_tui.call.audio_devices import device_source
from hello_tui.media import devices
from hello_tui.media.sinks import DeviceSink
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.audio_devices import AudioDevicePicker
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.settings import SettingsScreen
from tests.pulse import PulseDaemon, pulse_devices

from .conftest import T, visible_text, wait_until, write_config

MIC, SPEAKER, PLUGGED, MIC2 = "t_mic", "t_spk", "t_spk2", "t_mic2"


@pytest.fixture
def pulse(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[PulseDaemon]:
    # The ALSA names t_mic/t_spk are PortAudio's (the pulse backend: t_mic.monitor, ...).
    monkeypatch.setenv("HELLO_TUI_AUDIO_BACKEND", "portaudio")
    with pulse_devices(tmp_path_factory.mktemp("pulse"), [MIC], [SPEAKER]) as daemon:
        yield daemon


def _outputs(app: HelloApp) -> list[str]:
    screen = app.screen
    assert isinstance(screen, SettingsScreen)
    return [value for _, value in screen.device_options.get("#audio-out", [])]


async def test_settings_lists_a_device_plugged_in_while_it_is_open(pulse: PulseDaemon) -> None:
    """The input meter holds a stream on ``t_mic`` the whole time: the re-list
    closes it for that moment and reopens it (it would otherwise be skipped)."""
    write_config({"audio": {"input": f"device:{MIC}", "output": f"device:{SPEAKER}"}})
    app = HelloApp(connect=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen))
        await wait_until(pilot, lambda: f"device:{SPEAKER}" in _outputs(app), what="listed")
        assert f"device:{PLUGGED}" not in _outputs(app)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        await wait_until(pilot, lambda: screen.meter_source is not None, what="meter open")
        pulse.add_null_sink(PLUGGED)  # plugged in
        pulse.alsa_devices({MIC: f"{MIC}.monitor", SPEAKER: SPEAKER, PLUGGED: PLUGGED})
        # PortAudio re-lists by terminating and re-initialising (ALSA probes every
        # PCM): more than T once, with three helpers loading the 2 cores.
        try:
            await wait_until(
                pilot, lambda: f"device:{PLUGGED}" in _outputs(app), timeout=2 * T, what="hot-plug"
            )
        except AssertionError:  # say why: seen in full runs only (state left by a test?)
            from hello_tui.media import devices

            free = devices._pa_lock.acquire(timeout=1)
            if free:
                devices._pa_lock.release()
            raise AssertionError(
                f"no hot-plug: PortAudio streams open {devices.portaudio_streams_open()!r}, "
                f"all streams open {devices.streams_open()}, device lock free {free}"
            ) from None
        await wait_until(pilot, lambda: screen.meter_source is not None, what="meter back")
        assert "re-read when no call" not in str(screen.query_one("#devices-note").render())


async def _pick(pilot: object, app: HelloApp, option_id: str) -> None:
    from textual.widgets import OptionList

    await pilot.press("a")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: isinstance(app.screen, AudioDevicePicker), what="picker")
    options = app.screen.query_one(OptionList)
    await wait_until(pilot, lambda: options.option_count > 2, what="devices listed")
    options.highlighted = options.get_option_index(option_id)
    await pilot.press("enter")  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="picker closed")


async def test_call_screen_picker_moves_the_microphone_and_the_speaker(
    pulse: PulseDaemon,
) -> None:
    """An echo call on ``t_mic``/``t_spk``; ``a`` lists the devices, enter on one
    sends ``audio-out`` / ``audio-in``: the call's streams move to the second pair."""
    for name in (PLUGGED, MIC2):
        pulse.add_null_sink(name)
    pulse.alsa_devices(
        {MIC: f"{MIC}.monitor", MIC2: f"{MIC2}.monitor", SPEAKER: SPEAKER, PLUGGED: PLUGGED}
    )
    devices.refresh()  # nothing open yet
    write_config({"audio": {"input": f"device:{MIC}", "output": f"device:{SPEAKER}"}})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen))
        screen = app.screen
        assert isinstance(screen, CallScreen)
        await wait_until(pilot, lambda: screen.state == "connected", what="connected")
        call = app.last_call
        sink = call.media.sink
        assert isinstance(sink, DeviceSink) and sink.device is not None
        assert sink.device.name == SPEAKER
        await _pick(pilot, app, f"out:{PLUGGED}")
        await wait_until(pilot, lambda: sink.device.name == PLUGGED, what="speaker moved")
        await _pick(pilot, app, f"in:{MIC2}")
        source = device_source(call)
        assert source is not None
        await wait_until(pilot, lambda: source.device.name == MIC2, what="microphone moved")
        await wait_until(pilot, lambda: MIC2 in visible_text(app), what="the notice")
        await pilot.press("h")
        await wait_until(pilot, lambda: call.ended is not None, what="ended")
