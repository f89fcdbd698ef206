"""The one string shape for every audio/video endpoint (baresip's "driver:device").

Sources: ``device:[name]``, ``file:PATH``, ``sine:HZ``, ``null:``
(video: ``camera:INDEX``, ``pattern:``). Sinks: ``device:[name]``,
``file:PATH.wav``, ``null:``. Parsing is pure and cheap so the config and
the CLI can validate a string without importing any media library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["audio-source", "audio-sink", "video-source"]

_KINDS: dict[Role, tuple[str, ...]] = {
    "audio-source": ("device", "file", "sine", "null"),
    "audio-sink": ("device", "file", "null"),
    "video-source": ("camera", "pattern", "null"),
}


class EndpointError(ValueError):
    """An endpoint string is malformed; the message says what shape was expected."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed endpoint: ``kind`` ("device", "file", ...) and its argument."""

    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}"


def expected_shapes(role: Role) -> str:
    """Human text listing the accepted shapes for ``role``."""
    shapes = {
        "device": "device:[NAME]",
        "file": "file:PATH",
        "sine": "sine:HZ",
        "null": "null:",
        "camera": "camera:INDEX",
        "pattern": "pattern:",
    }
    return ", ".join(shapes[k] for k in _KINDS[role])


def parse_endpoint(text: str, role: Role) -> Endpoint:
    """Parse ``text`` for ``role``; raise :class:`EndpointError` if malformed."""
    kind, sep, arg = text.partition(":")
    if not sep or kind not in _KINDS[role]:
        label = {"audio-source": "an audio source", "audio-sink": "an audio sink"}.get(
            role, "a video source"
        )
        raise EndpointError(f"{text!r} is not {label} (expected {expected_shapes(role)})")
    if kind == "file" and not arg:
        raise EndpointError(f"{text!r}: file: needs a path (file:PATH)")
    if kind == "null" and arg:
        raise EndpointError(f"{text!r}: null: takes no argument")
    if kind == "pattern" and arg:
        raise EndpointError(f"{text!r}: pattern: takes no argument")
    if kind == "sine":
        try:
            hz = float(arg)
        except ValueError:
            raise EndpointError(f"{text!r}: sine: needs a frequency in Hz (sine:440)") from None
        if not 1 <= hz <= 20000:
            raise EndpointError(f"{text!r}: frequency must be between 1 and 20000 Hz")
    if kind == "camera" and arg and not arg.isdigit():
        raise EndpointError(f"{text!r}: camera: takes a device index (camera:0)")
    return Endpoint(kind, arg)
