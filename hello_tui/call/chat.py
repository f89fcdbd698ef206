"""Text chat over the call's data channel: the wire format, its bounds, the channel.

Every call and room carries one **pre-negotiated** data channel (label
``hello``, stream id 0, ordered, reliable), added before the first offer:
calls negotiate once, and a negotiated channel opens on both sides as soon
as the SCTP association is up, with no in-band announcement (the browser
page creates the same one). It runs inside the DTLS connection the check
code verifies: chat never passes through the server.

One message per data-channel text frame, JSON, versioned::

    {"v": 1, "type": "chat", "text": "hello"}

Bounds (both directions; the other side is untrusted):

- size: ``text`` at most :data:`MAX_CHARS` characters, the whole frame at
  most :data:`MAX_FRAME_BYTES` bytes (UTF-8); empty text is refused;
- rate: a token bucket per direction (:class:`ChatLimits`, 5 a second,
  bursts of 20). Sending faster is refused (:class:`ChatError`, the message
  is not sent); frames received faster are dropped, with a notice (at most
  one every 10 s, with the count). The receiving bucket is the one that
  matters: it bounds a flood from a hostile peer; the sending one keeps an
  honest client from tripping the other side's.

Received frames stay data: a frame that is not a v1 JSON object, not valid
UTF-8 text, or out of bounds is dropped (with a notice); a v1 frame of
another ``type`` is ignored, so later message kinds do not break this
version. The text is handed on as is: the faces escape it where they show it.

Control frames ride the same channel, additive (an older peer ignores them as
a frame of another type): ``{"v": 1, "type": "bye"}`` says "I hung up", so a
call ends on both sides even when the server is gone (docs/calls.md,
*Calls that recover*). :meth:`ChatChannel.send_control` sends one;
``on_control(type)`` hears one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hello_tui.util.data_channel import ChannelUser
from hello_tui.util.token_bucket import TokenBucket

__all__ = [
    "CHANNEL_ID",
    "CHANNEL_LABEL",
    "MAX_CHARS",
    "MAX_FRAME_BYTES",
    "VERSION",
    "ChatChannel",
    "ChatError",
    "ChatLimits",
    "TokenBucket",
    "clip_text",
    "control_type",
    "decode_frame",
    "encode_chat",
]

log = logging.getLogger(__name__)

CHANNEL_LABEL = "hello"
CHANNEL_ID = 0  # pre-negotiated (negotiated=true, id 0) on both sides, page included
VERSION = 1
MAX_CHARS = 2000
MAX_FRAME_BYTES = 8 * 1024
NOTICE_INTERVAL = 10.0  # seconds: at most one drop notice this often during a flood


class ChatError(ValueError):
    """A chat message that cannot be sent (too long, too fast, no chat); the
    message says why in one line."""


@dataclass(frozen=True, slots=True)
class ChatLimits:
    """Messages a second and the burst allowed, per direction (``rate`` may be
    ``math.inf``: no limit, as the burst benchmark uses)."""

    rate: float = 5.0
    burst: int = 20

    @classmethod
    def unlimited(cls) -> ChatLimits:
        return cls(rate=math.inf, burst=1)


def _frame(text: str) -> str:
    return json.dumps({"v": VERSION, "type": "chat", "text": text}, ensure_ascii=False)


def encode_chat(text: str) -> str:
    """The frame for ``text``; :class:`ChatError` if it is empty or out of bounds."""
    if not isinstance(text, str) or not text.strip():
        raise ChatError("an empty chat message is not sent")
    if len(text) > MAX_CHARS:
        raise ChatError(f"chat message too long ({len(text)} characters, at most {MAX_CHARS})")
    try:
        frame = _frame(text)
        size = len(frame.encode("utf-8"))
    except UnicodeEncodeError:
        raise ChatError("chat message is not valid text (a lone surrogate)") from None
    if size > MAX_FRAME_BYTES:
        raise ChatError(f"chat message too long ({size} bytes encoded, at most {MAX_FRAME_BYTES})")
    return frame


def clip_text(text: str) -> str:
    """``text`` cut (at the end) until it fits the bounds (the echo's prefix may not)."""
    text = text[:MAX_CHARS]
    while text and len(_frame(text).encode("utf-8", "replace")) > MAX_FRAME_BYTES:
        text = text[: len(text) - max(1, len(text) // 16)]
    return text


CONTROL_TYPES = frozenset({"bye"})


def control_type(data: Any) -> str | None:
    """The ``type`` of a v1 control frame (:data:`CONTROL_TYPES`), else None."""
    try:
        obj = json.loads(data) if isinstance(data, str) and len(data) <= MAX_FRAME_BYTES else None
    except ValueError:
        return None
    if isinstance(obj, dict) and obj.get("v") == VERSION and obj.get("type") in CONTROL_TYPES:
        return str(obj["type"])
    return None


def decode_frame(data: Any) -> str | None:
    """The text of a received chat frame; None for a v1 frame of another type
    (ignored); :class:`ChatError` for a frame that is not acceptable."""
    if not isinstance(data, str):
        raise ChatError("not a text frame")
    if len(data) > MAX_FRAME_BYTES or len(data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        raise ChatError("frame too large")
    try:
        obj = json.loads(data)
    except ValueError:
        raise ChatError("not JSON") from None
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        raise ChatError("not a version-1 message")
    if obj.get("type") != "chat":
        return None
    text = obj.get("text")
    if not isinstance(text, str) or not text or len(text) > MAX_CHARS:
        raise ChatError("bad text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ChatError("text is not valid Unicode") from None
    return text


class ChatChannel(ChannelUser):
    """One call's chat over its data channel (an aiortc ``RTCDataChannel``).

    ``on_message(text)``: a message received and accepted. ``on_sent(text)``:
    a message went out (at once, or when the channel opened). ``on_notice(text)``:
    one line for the user (drops, unsent messages). :meth:`send` raises
    :class:`ChatError` when the message is refused; before the channel is open
    accepted messages wait (at most a burst) and go out when it opens.
    """

    def __init__(
        self,
        limits: ChatLimits,
        *,
        on_message: Callable[[str], None],
        on_sent: Callable[[str], None],
        on_notice: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._out = TokenBucket(limits.rate, limits.burst, clock)
        self._in = TokenBucket(limits.rate, limits.burst, clock)
        self._queue_max = max(1, limits.burst)
        self._on_message, self._on_sent, self._on_notice = on_message, on_sent, on_notice
        self._pending: list[str] = []
        # Drops are told at most once every NOTICE_INTERVAL seconds (a flood must
        # not turn into a flood of notices), with the count since the last notice.
        self._clock = clock
        self._noticed = -math.inf
        self._unreported = 0
        self.received = 0
        self.dropped = 0
        self.sent = 0
        # A control frame received (its type, one of CONTROL_TYPES); None: ignored.
        self.on_control: Callable[[str], None] | None = None

    # ------------------------------------------------------------ the channel
    def _on_open(self) -> None:
        self._flush()

    def unavailable(self, why: str) -> None:
        """The other side negotiated no data channel: chat is impossible in this call."""
        super().unavailable(why)
        self._give_up(why)

    # ------------------------------------------------------------ sending
    def send(self, text: str) -> None:
        if self._unavailable:
            raise ChatError(f"no chat in this call: {self._unavailable}")
        frame = encode_chat(text)
        if not self._out.take():
            raise ChatError("too many chat messages too fast: this one was not sent")
        if not self.open and len(self._pending) >= self._queue_max:
            raise ChatError("chat is not connected yet: too many messages waiting")
        if self.open:
            self._send(text, frame)
        else:
            self._pending.append(text)

    def _send(self, text: str, frame: str) -> None:
        self._channel.send(frame)
        self.sent += 1
        self._on_sent(text)

    def send_control(self, kind: str) -> bool:
        """Send the control frame ``kind`` now if the channel is open (True if it went)."""
        if kind not in CONTROL_TYPES or not self.open:
            return False
        self._channel.send(json.dumps({"v": VERSION, "type": kind}))
        return True

    @property
    def buffered(self) -> int:
        """Bytes handed to the channel and not sent yet (0 without a channel)."""
        return int(getattr(self._channel, "bufferedAmount", 0) or 0) if self._channel else 0

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        for text in pending:
            self._send(text, encode_chat(text))

    def _give_up(self, why: str) -> None:
        if self._pending:
            n, self._pending = len(self._pending), []
            self._on_notice(f"{n} chat message{'s' if n > 1 else ''} not sent: {why}")

    def close(self) -> None:
        """The call ended: what still waits is dropped, with a notice."""
        self._give_up("the call ended before chat connected")
        self._channel = None

    # ------------------------------------------------------------ receiving
    def _receive(self, data: Any) -> None:
        if not self._in.take():
            self._drop("the other side is sending chat messages too fast: some are dropped")
            return
        try:
            text = decode_frame(data)
        except ChatError as exc:
            self._drop(f"a chat message from the other side was dropped ({exc})")
            return
        if text is None:
            kind = control_type(data)
            if kind is not None and self.on_control is not None:
                self.on_control(kind)
            else:
                log.debug("chat: ignoring a frame of another type")
            return
        self.received += 1
        self._on_message(text)

    def _drop(self, notice: str) -> None:
        self.dropped += 1
        self._unreported += 1
        now = self._clock()
        if now - self._noticed >= NOTICE_INTERVAL:
            n, self._unreported = self._unreported, 0
            self._noticed = now
            self._on_notice(notice if n == 1 else f"{notice} ({n} dropped)")
