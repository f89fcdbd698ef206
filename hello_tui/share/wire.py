"""The share channel's frames: what goes over the wire, and its bounds.

A call's terminal sharing has its own **pre-negotiated** data channel
(label ``share``, stream id 1, ordered, reliable), beside chat's (``hello``,
id 0), so a screenful in flight never sits in chat's way on the receiving
side and chat's rate limits never count screen updates. Like chat it runs
inside the DTLS connection the check code verifies: nothing of the shared
terminal passes through the server.

Control frames are JSON text, versioned like chat's::

    {"v": 1, "type": "share-start", "cols": 80, "rows": 24, "title": "htop"}
    {"v": 1, "type": "share-stop"}
    {"v": 1, "type": "share-grant"}       sharer → viewer: you may type
    {"v": 1, "type": "share-revoke"}      sharer → viewer: you may not
    {"v": 1, "type": "share-input", "data": "ls\\r"}   viewer → sharer (granted only)
    {"v": 1, "type": "share-sync"}        viewer → sharer: send me a snapshot

Screen frames are binary: one kind byte, then zlib-compressed terminal bytes
(:data:`SCREEN_BYTES`: the pty's output, to feed on; :data:`SCREEN_SNAPSHOT`:
a whole screen, fed to a reset terminal). Bounds: a frame is at most
:data:`MAX_FRAME_BYTES` on the wire and :data:`MAX_SCREEN_BYTES` once
inflated (a zip bomb stops there); input at most :data:`MAX_INPUT_CHARS`.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

from hello_tui.share.limits import MAX_COLS, MAX_ROWS

__all__ = [
    "CHANNEL_ID",
    "CHANNEL_LABEL",
    "MAX_FRAME_BYTES",
    "MAX_INPUT_CHARS",
    "MAX_SCREEN_BYTES",
    "SCREEN_BYTES",
    "SCREEN_SNAPSHOT",
    "Control",
    "ShareError",
    "decode_control",
    "decode_screen",
    "encode_control",
    "encode_screen",
]

CHANNEL_LABEL = "share"
CHANNEL_ID = 1  # pre-negotiated (negotiated=true, id 1) on both sides, after chat's id 0
VERSION = 1
SCREEN_BYTES, SCREEN_SNAPSHOT = 1, 2
MAX_SCREEN_BYTES = 256 * 1024  # inflated: a frame's terminal bytes
MAX_FRAME_BYTES = 128 * 1024  # on the wire
MAX_INPUT_CHARS = 4096
MAX_TITLE_CHARS = 120
TYPES = frozenset(
    {"share-start", "share-stop", "share-grant", "share-revoke", "share-input", "share-sync"}
)


class ShareError(ValueError):
    """A share frame that is not acceptable, or a share action refused: one line."""


@dataclass(frozen=True, slots=True)
class Control:
    type: str
    cols: int = 0
    rows: int = 0
    title: str = ""
    data: str = ""


def encode_control(control: Control) -> str:
    obj: dict[str, Any] = {"v": VERSION, "type": control.type}
    if control.type == "share-start":
        obj.update(cols=control.cols, rows=control.rows, title=control.title[:MAX_TITLE_CHARS])
    elif control.type == "share-input":
        obj["data"] = control.data
    return json.dumps(obj, ensure_ascii=False)


def _int(obj: dict[str, Any], name: str, top: int) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= top:
        raise ShareError(f"bad {name}")
    return value


def decode_control(text: str) -> Control | None:
    """A control frame; None for a v1 frame of a type this version does not know."""
    if len(text) > MAX_INPUT_CHARS * 8:
        raise ShareError("control frame too large")
    try:
        obj = json.loads(text)
    except ValueError:
        raise ShareError("not JSON") from None
    if not isinstance(obj, dict) or obj.get("v") != VERSION:
        raise ShareError("not a version-1 frame")
    kind = obj.get("type")
    if kind not in TYPES:
        return None
    if kind == "share-start":
        title = obj.get("title", "")
        if not isinstance(title, str):
            raise ShareError("bad title")
        cols, rows = _int(obj, "cols", MAX_COLS), _int(obj, "rows", MAX_ROWS)
        return Control(kind, cols=cols, rows=rows, title=title[:MAX_TITLE_CHARS])
    if kind == "share-input":
        data = obj.get("data")
        if not isinstance(data, str) or not data or len(data) > MAX_INPUT_CHARS:
            raise ShareError("bad input")
        return Control(kind, data=data)
    return Control(kind)


def encode_screen(kind: int, data: bytes) -> bytes:
    return bytes([kind]) + zlib.compress(data, 6)


def decode_screen(frame: bytes) -> tuple[int, bytes]:
    """``(kind, terminal bytes)`` of a binary frame; :class:`ShareError` if it is bad."""
    if len(frame) > MAX_FRAME_BYTES or len(frame) < 2:
        raise ShareError("screen frame size out of bounds")
    kind = frame[0]
    if kind not in (SCREEN_BYTES, SCREEN_SNAPSHOT):
        raise ShareError("unknown screen frame")
    inflate = zlib.decompressobj()
    try:
        data = inflate.decompress(frame[1:], MAX_SCREEN_BYTES)
    except zlib.error:
        raise ShareError("screen frame does not inflate") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise ShareError("screen frame too large once inflated, or truncated")
    return kind, data
