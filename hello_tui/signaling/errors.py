"""The signaling client's failures, as typed exceptions with one-line messages.

They live in their own stdlib-only module so the CLI's error mapper can name
them without importing aiohttp or cryptography for every command (``hello-tui
contacts ls`` must stay fast). ``client``, ``identity`` and ``roomcrypt``
re-export the ones they raise.
"""

from __future__ import annotations


class SignalingClientError(Exception):
    """Base of every expected failure of the signaling client side."""


class ServerUnreachable(SignalingClientError):
    """No WebSocket could be opened (refused, unknown host, timeout, not a hello-tui server)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"cannot reach the server at {url}: {reason}")
        self.url = url
        self.reason = reason


class ProtocolMismatch(SignalingClientError):
    """The peer at the URL does not speak our protocol version (or not our protocol)."""


class ConnectionLost(SignalingClientError):
    """The connection dropped while a request was waiting for its reply,
    or the client gave up reconnecting."""


class RequestTimeout(SignalingClientError):
    """The server did not answer a request in time."""


class NotConnected(SignalingClientError):
    """A request was made on a client that is not (or no longer) connected."""


class SignalingError(SignalingClientError):
    """The server answered a request with an ``error`` message.

    ``code`` is the protocol's machine-readable :data:`ErrorCode`, so front
    ends branch on it rather than on the human text.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"server refused: {message} ({code})")
        self.code = code
        self.server_message = message


class IdentityError(SignalingClientError):
    """An account key file is missing, unreadable, not Ed25519, or would be overwritten."""


class RoomCryptError(SignalingClientError):
    """A room key or encrypted room name is malformed or does not match."""


__all__ = [
    "ConnectionLost",
    "IdentityError",
    "NotConnected",
    "ProtocolMismatch",
    "RequestTimeout",
    "RoomCryptError",
    "ServerUnreachable",
    "SignalingClientError",
    "SignalingError",
]
