"""Thousands of random, malformed and oversized frames, then a normal call still works."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, Running, StartServer
from tests.server.test_calls import answer, place

TAGS = [
    "hello", "register", "login", "login-proof", "logout", "account-delete", "call", "ringing",
    "accept", "reject", "offer", "answer", "connected", "hangup", "room-create", "room-list",
    "room-rename", "room-delete", "room-join", "room-leave", "welcome", "call-ended", "x",
]  # fmt: skip
SENTINEL = 2**53  # no fuzzed ref reaches it

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=80)
ids = st.one_of(st.text("abcXYZ019_-", min_size=0, max_size=70), text)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), text)
json_values = st.recursive(
    scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(text, c, max_size=4), max_leaves=8
)
field_values = st.one_of(scalars, ids, json_values)
message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(TAGS)},
    optional={
        name: field_values
        for name in (
            "call_id", "token", "name", "to", "offer", "sdp", "version", "signature",
            "public_key", "invite", "ttl", "reason", "video", "client", "nonce", "extra",
        )
    }
    | {"ref": st.integers(0, 10**6)},
)  # fmt: skip
big = st.integers(64 * 1024 + 1, 120 * 1024).map(
    lambda n: '{"type": "room-list", "pad": "' + "a" * n + '"}'
)
frames = st.one_of(
    text,
    json_values.map(json.dumps),
    message_like.map(json.dumps),
    message_like.map(json.dumps),
    message_like.map(json.dumps),
    st.binary(max_size=64),
    big,
)


@dataclass
class Fuzz:
    srv: Running
    target: Client
    alice: Client
    caller: Client
    frames: int = 0


@pytest.fixture
async def fuzz(start_server: StartServer) -> Fuzz:
    srv = await start_server(supervisory_timeout=5.0, ring_timeout=5.0, connection_timeout=5.0)
    return Fuzz(srv, await srv.client(), await srv.client("alice"), await srv.client("carol"))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(frames, min_size=40, max_size=150))
async def test_random_frames_never_break_the_server(fuzz: Fuzz, batch: list[str | bytes]) -> None:
    target = fuzz.target
    for frame in batch:
        if isinstance(frame, bytes):
            await target.ws.send_bytes(frame)
        else:
            await target.send_raw(frame)
    fuzz.frames += len(batch)
    # The same connection still answers, and nothing failed inside the server.
    await target.send(p.RoomList(ref=SENTINEL))
    while True:
        reply = await target.recv()
        assert not (isinstance(reply, p.Error) and reply.code == "internal"), reply
        if isinstance(reply, p.Rooms) and reply.ref == SENTINEL:
            break
    # And a normal call between two other clients goes through end to end.
    call_id, offer = await place(fuzz.caller, "alice", fuzz.alice)
    await answer(fuzz.caller, fuzz.alice, call_id, offer)
    await fuzz.caller.send(p.Hangup(call_id=call_id))
    await fuzz.caller.expect(p.CallEnded, reason="hangup")
    await fuzz.alice.expect(p.CallEnded, reason="hangup")
    await fuzz.srv.assert_forgotten(call_id, offer)
    assert fuzz.srv.hub.metrics.errors["internal"] == 0
