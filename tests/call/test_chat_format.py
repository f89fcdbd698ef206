"""The chat wire format and its bounds (pure: no peer)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hello_tui.call.chat import (
    MAX_CHARS,
    MAX_FRAME_BYTES,
    ChatChannel,
    ChatError,
    ChatLimits,
    TokenBucket,
    clip_text,
    decode_frame,
    encode_chat,
)


def test_a_frame_is_versioned_json() -> None:
    frame = encode_chat("hi <b>")
    assert json.loads(frame) == {"v": 1, "type": "chat", "text": "hi <b>"}
    assert decode_frame(frame) == "hi <b>"


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1]",
        '{"type": "chat", "text": "no version"}',
        '{"v": 2, "type": "chat", "text": "x"}',
        '{"v": 1, "type": "chat"}',
        '{"v": 1, "type": "chat", "text": ""}',
        '{"v": 1, "type": "chat", "text": 5}',
        '{"v": 1, "type": "chat", "text": "\\udc00"}',
        json.dumps({"v": 1, "type": "chat", "text": "x" * (MAX_CHARS + 1)}),
        json.dumps({"v": 1, "type": "chat", "text": "x", "pad": "y" * MAX_FRAME_BYTES}),
        b'{"v": 1, "type": "chat", "text": "bytes"}',
    ],
)
def test_bad_frames_are_refused(frame: object) -> None:
    with pytest.raises(ChatError):
        decode_frame(frame)


def test_another_type_is_ignored() -> None:
    assert decode_frame('{"v": 1, "type": "typing"}') is None


def test_the_size_bounds_hold_in_characters_and_in_bytes() -> None:
    encode_chat("x" * MAX_CHARS)
    with pytest.raises(ChatError, match="too long"):
        encode_chat("x" * (MAX_CHARS + 1))
    with pytest.raises(ChatError, match="bytes"):  # 2,000 characters that escape to 12,000
        encode_chat("\x01" * MAX_CHARS)
    with pytest.raises(ChatError, match="surrogate"):
        encode_chat("\ud800")


@given(st.text(min_size=1, max_size=3 * MAX_CHARS))
def test_clip_text_always_fits(text: str) -> None:
    clipped = clip_text("echo: " + text)
    assert "echo: ".startswith(clipped) or clipped.startswith("echo: ")
    if clipped.strip():
        try:
            encode_chat(clipped)
        except ChatError as exc:
            assert "surrogate" in str(exc)


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(5.0, 20, clock=lambda: now[0])
    assert sum(bucket.take() for _ in range(30)) == 20
    now[0] += 1.0
    assert sum(bucket.take() for _ in range(30)) == 5
    assert TokenBucket(ChatLimits.unlimited().rate, 1).take()


class _FakeChannel:
    """The one fake here: an RTCDataChannel's surface (open or not, send, handlers)."""

    def __init__(self) -> None:
        self.readyState = "connecting"
        self.sent: list[str] = []
        self.handlers: dict[str, object] = {}

    def on(self, name: str, handler: object) -> None:
        self.handlers[name] = handler

    def send(self, frame: str) -> None:
        self.sent.append(frame)


def test_messages_wait_for_the_channel_and_unsent_ones_get_a_notice() -> None:
    sent: list[str] = []
    notices: list[str] = []
    chat = ChatChannel(ChatLimits(), on_message=lambda t: None, on_sent=sent.append,
                       on_notice=notices.append)  # fmt: skip
    channel = _FakeChannel()
    chat.attach(channel)
    chat.send("a")
    chat.send("b")
    assert sent == [] and channel.sent == []
    channel.readyState = "open"
    channel.handlers["open"]()  # type: ignore[operator]
    assert sent == ["a", "b"] and [decode_frame(f) for f in channel.sent] == ["a", "b"]
    chat.detach()
    chat.send("c")
    chat.close()
    assert notices == ["1 chat message not sent: the call ended before chat connected"]
    chat.unavailable("the other side has no data channel")
    with pytest.raises(ChatError, match="no chat in this call"):
        chat.send("d")


def test_a_flood_gets_a_notice_at_most_every_ten_seconds() -> None:
    now = [0.0]
    notices: list[str] = []
    chat = ChatChannel(ChatLimits(rate=1.0, burst=2), on_message=lambda t: None,
                       on_sent=lambda t: None, on_notice=notices.append,
                       clock=lambda: now[0])  # fmt: skip
    channel = _FakeChannel()
    chat.attach(channel)
    receive = channel.handlers["message"]
    for _ in range(100):
        receive(encode_chat("flood"))  # type: ignore[operator]
    assert chat.received == 2 and chat.dropped == 98
    assert notices == ["the other side is sending chat messages too fast: some are dropped"]
    now[0] = 11.0
    for _ in range(100):
        receive(encode_chat("flood"))  # type: ignore[operator]
    # 97 untold drops of the first flood, and this one: told with the count
    assert notices[1:] == [
        "the other side is sending chat messages too fast: some are dropped (98 dropped)"
    ]
