"""Echo cancellation off for a headset: what the sound server says the output is.

A private PulseAudio daemon (``tests/pulse.py``) whose null sinks carry the
properties a real one gives its cards: ``device.form_factor=headset`` (a USB
or Bluetooth headset), ``headphone``, ``speaker``, or none at all (unknown).
PortAudio lists them as ALSA devices named after their sinks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hello_tui.media.audio_processing import ProcessingConfig, attach_processing
from hello_tui.media.output_kind import _sink_kind, output_kind
from hello_tui.media.sinks import open_audio_sink
from hello_tui.media.sources import DeviceSource, open_audio_source
from tests.pulse import PulseDaemon, pulse_devices

pytest.importorskip("pywebrtc_audio")

MIC = "k_mic"
KINDS = {"k_headset": "headset", "k_phones": "headphone", "k_speaker": "speaker"}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    props = {name: {"device.form_factor": form} for name, form in KINDS.items()}
    speakers = [*KINDS, "k_plain"]
    with pulse_devices(tmp_path_factory.mktemp("pulse"), [MIC], speakers, props) as daemon:
        yield daemon


def test_the_sound_server_tells_a_headset_from_a_speaker(kinds: PulseDaemon) -> None:
    assert output_kind("k_headset").headset is True
    assert "form_factor=headset" in output_kind("k_headset").why
    assert output_kind("k_phones").headset is True
    assert output_kind("k_speaker").headset is False
    assert output_kind("k_plain").headset is None  # says nothing: not known
    assert output_kind("no such sink").headset is None
    # PortAudio's "default"/"pulse" devices are the server's default sink.
    assert kinds.pactl("set-default-sink", "k_headset").returncode == 0
    assert output_kind("default").headset is True
    assert output_kind("pulse").headset is True
    assert kinds.pactl("set-default-sink", "k_speaker").returncode == 0
    assert output_kind("default").headset is False
    kinds.pactl("set-default-sink", "hello_test")


def test_without_a_sound_server_the_name_is_all_there_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no pactl
    assert output_kind("Jabra Headset: USB Audio (hw:2,0)").headset is True
    assert output_kind("HDA Intel PCH: ALC257 Analog (hw:0,0)").headset is None


def test_no_server_socket_no_pactl(
    kinds: PulseDaemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """pactl is run only when a server's socket is there (it could autospawn one)."""
    monkeypatch.delenv("PULSE_SERVER")
    monkeypatch.delenv("PULSE_RUNTIME_PATH", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert output_kind("k_speaker").headset is None
    (tmp_path / "pulse").mkdir()
    (tmp_path / "pulse" / "native").symlink_to(kinds.socket)
    assert output_kind("k_speaker").headset is False  # the same daemon, by its socket


def test_a_laptop_card_with_headphones_plugged_in_is_a_headset() -> None:
    """The active port of an internal card (what pactl -f json prints)."""
    card = {
        "name": "alsa_output.pci-0000_00_1f.3.analog-stereo",
        "properties": {"alsa.card": "0", "alsa.device": "0"},
        "ports": [
            {"name": "analog-output-speaker", "type": "Speaker"},
            {"name": "analog-output-headphones", "type": "Headphones"},
        ],
        "active_port": "analog-output-headphones",
    }
    assert _sink_kind(card).headset is True
    assert _sink_kind({**card, "active_port": "analog-output-speaker"}).headset is False


@pytest.mark.parametrize(
    ("output", "config", "cancels", "noticed"),
    [
        ("k_speaker", ProcessingConfig(), True, False),
        ("k_plain", ProcessingConfig(), True, False),  # unknown: the safe side
        ("k_headset", ProcessingConfig(), False, True),
        ("k_headset", ProcessingConfig.from_switches("on", True, True), True, False),
        ("k_headset", ProcessingConfig.from_switches("off", True, True), False, False),
    ],
)
async def test_echo_cancellation_follows_the_output_and_the_switch(
    kinds: PulseDaemon, output: str, config: ProcessingConfig, cancels: bool, noticed: bool
) -> None:
    source = open_audio_source(f"device:{MIC}", fallback=False)
    sink = open_audio_sink(f"device:{output}", fallback=False)
    try:
        assert isinstance(source, DeviceSource)
        notice = attach_processing(source, sink, config)
        processor = source.processor
        assert processor is not None  # noise suppression and the high-pass filter stay
        assert processor.echo_cancellation is cancels
        assert (getattr(sink, "far_end", None) is not None) is cancels
        assert (notice is not None and "headset" in notice) is noticed
    finally:
        source.stop()
        await sink.stop()
