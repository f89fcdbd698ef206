"""Chat never passes through the server: every frame the server receives or
sends during chats (a direct call and a room) is captured, and no message text
is in any of them. The capture wraps the server's own WebSocket (aiohttp's
``web.WebSocketResponse``, which only the server side uses) in this process."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from aiohttp import web

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from tests.call.conftest import Env, T


@pytest.fixture
def server_frames(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    frames: list[bytes] = []
    send_frame = web.WebSocketResponse.send_frame
    receive = web.WebSocketResponse.receive

    async def sending(self: web.WebSocketResponse, message: bytes, *a: Any, **k: Any) -> None:
        frames.append(bytes(message))
        await send_frame(self, message, *a, **k)

    async def receiving(self: web.WebSocketResponse, *a: Any, **k: Any) -> Any:
        msg = await receive(self, *a, **k)
        data = msg.data
        frames.append(data.encode() if isinstance(data, str) else bytes(data or b""))
        return msg

    monkeypatch.setattr(web.WebSocketResponse, "send_frame", sending)
    monkeypatch.setattr(web.WebSocketResponse, "receive", receiving)
    return frames


async def _exchange(a: Call, b: Call, words: list[str]) -> None:
    """Each word sent by ``a`` arrives at ``b``, and back."""
    for word in words:
        a.send_chat(word)
        b.send_chat(word.upper())
    for call, wanted in ((b, words), (a, [w.upper() for w in words])):
        got: list[str] = []
        async with asyncio.timeout(T):
            async for event in call.events():
                if isinstance(event, ev.ChatMessage) and event.sender == "remote":
                    got.append(event.text)
                    if len(got) == len(wanted):
                        break
        assert got == wanted


async def test_no_chat_text_in_any_frame_the_server_relays(
    env: Env, server_frames: list[bytes]
) -> None:
    words = [f"secret{secrets.token_hex(8)}" for _ in range(5)]
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await _exchange(call, incoming, words[:3])
    await call.hangup()
    await incoming.wait_ended(T)

    key = new_room_key()
    created = await alice.client.room_create(encrypt_name(key, "room"))
    url = room_url(created.url, key)
    first = alice.join(url)
    await first.wait_for(ev.Waiting, T)
    second = bob.join(url)
    await _exchange(second, first, words[3:])
    await second.hangup()
    await first.wait_ended(T)

    captured = b"\n".join(server_frames)
    # The capture saw the calls: the callee's name, the offers' data channel line.
    assert b'"bob"' in captured and b"webrtc-datachannel" in captured
    for word in words:
        for form in (word, word.upper()):
            assert form.encode() not in captured
