"""The share channel's frames: what is accepted, and the bounds on what is not."""

from __future__ import annotations

import json
import zlib

import pytest

from hello_tui.share.wire import (
    MAX_FRAME_BYTES,
    MAX_INPUT_CHARS,
    MAX_SCREEN_BYTES,
    SCREEN_BYTES,
    SCREEN_SNAPSHOT,
    Control,
    ShareError,
    decode_control,
    decode_screen,
    encode_control,
    encode_screen,
)


@pytest.mark.parametrize(
    "control",
    [Control("share-start", 80, 24, "htop"), Control("share-stop"), Control("share-grant"),
     Control("share-revoke"), Control("share-input", data="ls\r"), Control("share-sync")],
)  # fmt: skip
def test_controls_round_trip(control: Control) -> None:
    assert decode_control(encode_control(control)) == control


def test_an_unknown_type_is_ignored() -> None:
    assert decode_control('{"v": 1, "type": "share-later"}') is None


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        ("nope", "not JSON"),
        ('{"v": 2, "type": "share-stop"}', "version-1"),
        ('{"v": 1, "type": "share-start", "cols": 0, "rows": 24}', "bad cols"),
        ('{"v": 1, "type": "share-start", "cols": 80, "rows": 100000}', "bad rows"),
        ('{"v": 1, "type": "share-start", "cols": true, "rows": 24}', "bad cols"),
        ('{"v": 1, "type": "share-input", "data": ""}', "bad input"),
        (json.dumps({"v": 1, "type": "share-input", "data": "x" * (MAX_INPUT_CHARS + 1)}),
         "bad input"),
    ],
)  # fmt: skip
def test_bad_controls_are_refused(frame: str, why: str) -> None:
    with pytest.raises(ShareError, match=why):
        decode_control(frame)


def test_screens_round_trip() -> None:
    for kind in (SCREEN_BYTES, SCREEN_SNAPSHOT):
        assert decode_screen(encode_screen(kind, b"\x1b[31mhi")) == (kind, b"\x1b[31mhi")


def test_a_zip_bomb_stops_at_the_bound() -> None:
    bomb = bytes([SCREEN_BYTES]) + zlib.compress(b"\0" * (MAX_SCREEN_BYTES + 1), 9)
    assert len(bomb) < MAX_FRAME_BYTES
    with pytest.raises(ShareError, match="too large"):
        decode_screen(bomb)


@pytest.mark.parametrize(
    "frame",
    [b"", b"\x01", b"\x03" + zlib.compress(b"x"), b"\x01not zlib",
     b"\x01" + zlib.compress(b"x" * 1000)[:-4], b"\x01" + b"\0" * MAX_FRAME_BYTES],
)  # fmt: skip
def test_bad_screens_are_refused(frame: bytes) -> None:
    with pytest.raises(ShareError):
        decode_screen(frame)
