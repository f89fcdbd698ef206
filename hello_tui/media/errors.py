"""Media failures as typed exceptions with one-line messages.

Stdlib-only, so the CLI's error mapper can name them without importing av,
numpy or sounddevice.
"""

from __future__ import annotations


class MediaError(Exception):
    """An audio endpoint cannot be opened or used; the message says which and why."""


class DeviceError(MediaError):
    """A ``device:NAME`` matches no device (or several); the message lists the candidates."""


class AudioUnavailable(MediaError):
    """Audio devices cannot be used at all (no PortAudio, no devices, open failed).

    ``reason`` is the short human cause used in the fallback notice.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
