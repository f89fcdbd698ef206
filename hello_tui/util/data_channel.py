"""Following one data channel of a call: what chat (call/chat.py) and terminal
sharing (share/session.py) both do with theirs.

A call may replace its peer connection (a room's lone offer dropped), so
events of a channel that is no longer the current one are ignored; a
channel is duck-typed (``on``, ``readyState``, ``send``), aiortc's or a test's.
"""

from __future__ import annotations

from typing import Any


class ChannelUser:
    """Holds the current channel; subclasses say what opening and a message do."""

    def __init__(self) -> None:
        self._channel: Any = None
        self._unavailable = ""  # why this call has no such channel ("": it may have one)

    def attach(self, channel: Any) -> None:
        """Use ``channel`` (a fresh peer connection's); a previous one is forgotten."""
        self._channel = channel
        self._unavailable = ""

        def _open() -> None:
            if channel is self._channel:
                self._on_open()

        def _message(data: Any) -> None:
            if channel is self._channel:
                self._receive(data)

        channel.on("open", _open)
        channel.on("message", _message)
        if channel.readyState == "open":
            self._on_open()

    def detach(self) -> None:
        """The peer connection is being dropped (a room's lone offer)."""
        self._channel = None

    def unavailable(self, why: str) -> None:
        """The other side negotiated no such channel in this call."""
        self._channel = None
        self._unavailable = why

    @property
    def open(self) -> bool:
        return self._channel is not None and self._channel.readyState == "open"

    def _on_open(self) -> None:
        raise NotImplementedError

    def _receive(self, data: Any) -> None:
        raise NotImplementedError
