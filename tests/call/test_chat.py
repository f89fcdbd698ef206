"""Chat over the call's data channel: real aiortc peers through the real server."""

from __future__ import annotations

import asyncio
import time

import pytest

from hello_tui.call import events as ev
from hello_tui.call.chat import MAX_CHARS, ChatError, ChatLimits
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from tests.call.conftest import Env, T


async def _remote_chats(call, n: int) -> list[ev.ChatMessage]:  # type: ignore[no-untyped-def]
    got: list[ev.ChatMessage] = []
    async with asyncio.timeout(T):
        async for event in call.events():
            if isinstance(event, ev.ChatMessage) and event.sender == "remote":
                got.append(event)
                if len(got) == n:
                    return got
    raise AssertionError(f"the call ended after {len(got)} of {n} chat messages")


async def test_chat_both_ways_in_a_direct_call(env: Env) -> None:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    call = alice.dial("bob")
    call.send_chat("sent before anyone answered")  # waits for the channel to open
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    (first,) = await _remote_chats(incoming, 1)
    assert (first.text, first.name) == ("sent before anyone answered", "alice")
    incoming.send_chat("héllo \x1b[31m<b>x</b>")  # untrusted text stays data
    (reply,) = await _remote_chats(call, 1)
    assert reply.text == "héllo \x1b[31m<b>x</b>" and reply.name == "bob"
    assert reply.to_json()["from"] == "remote" and reply.to_json()["kind"] == "chat"
    assert "\x1b" not in reply.line()
    local = [e for e in call.event_log if isinstance(e, ev.ChatMessage) and e.sender == "local"]
    assert [e.text for e in local] == ["sent before anyone answered"]
    assert [m.text for m in call.chat_log] == ["sent before anyone answered", reply.text]
    with pytest.raises(ChatError, match="too long"):
        call.send_chat("x" * (MAX_CHARS + 1))
    with pytest.raises(ChatError, match="empty"):
        call.send_chat("  ")
    await call.hangup()
    with pytest.raises(ChatError, match="over"):
        call.send_chat("after the end")


async def test_chat_in_a_room(env: Env) -> None:
    owner = await env.phone()
    guest = await env.phone()
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, "chat room"))
    url = room_url(created.url, key)
    first = owner.join(url)
    await first.wait_for(ev.Waiting, T)
    second = guest.join(url)
    await second.wait_for(ev.Connected, T)
    second.send_chat("from the later arrival")
    (got,) = await _remote_chats(first, 1)
    assert got.text == "from the later arrival"
    first.send_chat("and back")
    (back,) = await _remote_chats(second, 1)
    assert back.text == "and back"
    await second.hangup()


async def test_sending_faster_than_the_limit_is_refused(env: Env) -> None:
    alice = await env.phone("alice", chat_limits=ChatLimits(rate=0.001, burst=3))
    bob = await env.phone("bob")
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Connected, T)
    for i in range(3):
        call.send_chat(f"m{i}")
    with pytest.raises(ChatError, match="too fast"):
        call.send_chat("one too many")
    got = await _remote_chats(incoming, 3)
    assert [m.text for m in got] == ["m0", "m1", "m2"]
    await call.hangup()


async def test_a_flood_and_bad_frames_from_the_peer_are_dropped_with_one_notice(env: Env) -> None:
    alice = await env.phone("alice")  # default limits: 5 a second, bursts of 20
    bob = await env.phone("bob", chat_limits=ChatLimits.unlimited())  # the hostile side
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    incoming.send_chat("first")  # queued until the channel opens
    await _remote_chats(call, 1)
    raw = incoming.chat._channel  # a peer that ignores our format: raw frames
    for frame in ("not json", '{"v": 2, "type": "chat", "text": "x"}', b"\x00binary",
                  '{"v": 1, "type": "chat", "text": "\\ud800"}'):  # fmt: skip
        raw.send(frame)
    raw.send('{"v": 1, "type": "typing"}')  # another type: ignored, no notice
    flood_start = time.monotonic()
    for i in range(200):
        incoming.send_chat(f"flood {i}")
    incoming.send_chat("marker")  # a sent sequence ends here
    notices: list[ev.Notice] = []
    texts: list[str] = []
    async with asyncio.timeout(T):  # everything arrives in order: wait for what got through
        async for event in call.events():
            if isinstance(event, ev.Notice) and event.source == "chat":
                notices.append(event)
            if isinstance(event, ev.ChatMessage) and event.sender == "remote":
                texts.append(event.text)
            if call.chat.received + call.chat.dropped >= 1 + 4 + 201:
                break
    elapsed = time.monotonic() - flood_start
    assert texts[0] == "first"
    # The receiver's bucket (5/s, bursts of 20) lets through the start of the flood
    # in order, then no more than its refill over the time the flood took.
    assert texts[1:11] == [f"flood {i}" for i in range(10)]
    assert len(texts) - 1 <= 20 + 5 * elapsed + 1
    assert call.chat.dropped >= 200 - 25
    assert [t for t in texts[1:] if not t.startswith("flood") and t != "marker"] == []
    # One notice (the first drop: the bad frame); the flood within 10 s tells no more.
    assert [n.text for n in notices] == [
        "a chat message from the other side was dropped (not JSON)"
    ]
    await call.hangup()
