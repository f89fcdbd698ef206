"""The one exception handlers raise to refuse a request politely."""

from __future__ import annotations

from hello_tui.signaling.protocol import ErrorCode


class Refusal(Exception):
    """Becomes an ``error`` reply to the request; the connection stays open."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
