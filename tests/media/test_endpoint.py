"""Endpoint strings (``driver:device``): every shape accepted, every edge refused,
and the exact one-line messages the config and the CLI show."""

from __future__ import annotations

import pytest

from hello_tui.media.endpoint import Endpoint, EndpointError, Role, expected_shapes, parse_endpoint

ACCEPTED: list[tuple[str, Role, Endpoint]] = [
    ("device:", "audio-source", Endpoint("device", "")),
    ("device:USB Mic", "audio-source", Endpoint("device", "USB Mic")),
    ("file:a.wav", "audio-source", Endpoint("file", "a.wav")),
    ("file:/tmp/x:y.wav", "audio-source", Endpoint("file", "/tmp/x:y.wav")),  # first ':' only
    ("sine:1", "audio-source", Endpoint("sine", "1")),  # the lowest frequency
    ("sine:440", "audio-source", Endpoint("sine", "440")),
    ("sine:20000", "audio-source", Endpoint("sine", "20000")),  # the highest
    ("sine:1.5", "audio-source", Endpoint("sine", "1.5")),
    ("null:", "audio-source", Endpoint("null", "")),
    ("device:", "audio-sink", Endpoint("device", "")),
    ("file:out.wav", "audio-sink", Endpoint("file", "out.wav")),
    ("null:", "audio-sink", Endpoint("null", "")),
    ("camera:", "video-source", Endpoint("camera", "")),
    ("camera:0", "video-source", Endpoint("camera", "0")),
    ("camera:12", "video-source", Endpoint("camera", "12")),
    ("pattern:", "video-source", Endpoint("pattern", "")),
    ("null:", "video-source", Endpoint("null", "")),
]


@pytest.mark.parametrize(("text", "role", "endpoint"), ACCEPTED)
def test_accepted(text: str, role: Role, endpoint: Endpoint) -> None:
    assert parse_endpoint(text, role) == endpoint
    assert str(endpoint) == text  # the string form round-trips


SOURCE = "device:[NAME], file:PATH, sine:HZ, null:"
SINK = "device:[NAME], file:PATH, null:"
VIDEO = "camera:INDEX, pattern:, null:"

REFUSED: list[tuple[str, Role, str]] = [
    # unknown kind or no colon: the whole list of shapes for that role
    ("device", "audio-source", f"'device' is not an audio source (expected {SOURCE})"),
    ("mic:x", "audio-source", f"'mic:x' is not an audio source (expected {SOURCE})"),
    ("", "audio-sink", f"'' is not an audio sink (expected {SINK})"),
    ("sine:440", "audio-sink", f"'sine:440' is not an audio sink (expected {SINK})"),
    ("camera:0", "audio-source", f"'camera:0' is not an audio source (expected {SOURCE})"),
    ("device:", "video-source", f"'device:' is not a video source (expected {VIDEO})"),
    ("file:a.wav", "video-source", f"'file:a.wav' is not a video source (expected {VIDEO})"),
    # each kind's own rule
    ("file:", "audio-source", "'file:': file: needs a path (file:PATH)"),
    ("file:", "audio-sink", "'file:': file: needs a path (file:PATH)"),
    ("null:x", "audio-source", "'null:x': null: takes no argument"),
    ("null:x", "video-source", "'null:x': null: takes no argument"),
    ("pattern:x", "video-source", "'pattern:x': pattern: takes no argument"),
    ("camera:abc", "video-source", "'camera:abc': camera: takes a device index (camera:0)"),
    ("camera:-1", "video-source", "'camera:-1': camera: takes a device index (camera:0)"),
    ("sine:", "audio-source", "'sine:': sine: needs a frequency in Hz (sine:440)"),
    ("sine:la", "audio-source", "'sine:la': sine: needs a frequency in Hz (sine:440)"),
    ("sine:0", "audio-source", "'sine:0': frequency must be between 1 and 20000 Hz"),
    ("sine:0.999", "audio-source", "'sine:0.999': frequency must be between 1 and 20000 Hz"),
    ("sine:20000.5", "audio-source", "'sine:20000.5': frequency must be between 1 and 20000 Hz"),
    ("sine:20001", "audio-source", "'sine:20001': frequency must be between 1 and 20000 Hz"),
    ("sine:-440", "audio-source", "'sine:-440': frequency must be between 1 and 20000 Hz"),
]


@pytest.mark.parametrize(("text", "role", "message"), REFUSED)
def test_refused_with_one_clear_line(text: str, role: Role, message: str) -> None:
    with pytest.raises(EndpointError) as caught:
        parse_endpoint(text, role)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)  # config validation catches ValueError


def test_expected_shapes_per_role() -> None:
    assert expected_shapes("audio-source") == SOURCE
    assert expected_shapes("audio-sink") == SINK
    assert expected_shapes("video-source") == VIDEO


def test_endpoint_defaults_to_no_argument() -> None:
    assert Endpoint("null") == Endpoint("null", "") and str(Endpoint("null")) == "null:"


def test_an_endpoint_is_a_value() -> None:
    import dataclasses

    endpoint = parse_endpoint("sine:440", "audio-source")
    with pytest.raises(dataclasses.FrozenInstanceError):
        endpoint.arg = "880"  # type: ignore[misc]
    assert len({endpoint, Endpoint("sine", "440")}) == 1  # hashable, equal by value
