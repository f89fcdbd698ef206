"""What the engine's owner plugs in and reads: listeners (the history among
them), the facts a call learns, frozen options, one notion of outcome."""

from __future__ import annotations

import asyncio
from dataclasses import FrozenInstanceError, replace

import pytest
from aiortc import RTCIceServer

from hello_tui.call import events as ev
from hello_tui.call.engine import Call, CallListener, CallOptions
from hello_tui.history.store import CallRecord
from tests.call.conftest import Env, T


class Recording(CallListener):
    def __init__(self) -> None:
        self.seen: list[tuple[Call, ev.CallEvent]] = []

    def call_event(self, call: Call, event: ev.CallEvent) -> None:
        self.seen.append((call, event))


class Broken(CallListener):
    def call_event(self, call: Call, event: ev.CallEvent) -> None:
        raise RuntimeError("a listener's bug")


async def test_the_history_is_written_before_any_consumer_sees_ended(env: Env) -> None:
    """The TUI reloads the history when it sees Ended: the record must be there."""
    alice, bob = await env.phone("alice"), await env.phone("bob")
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    seen_at_ended: dict[str, list[CallRecord]] = {}

    async def consume(name: str, c: Call, store_index: int) -> None:
        async for event in c.events():
            if isinstance(event, ev.Ended):
                seen_at_ended[name] = env.histories[store_index].list()

    consumers = [
        asyncio.create_task(consume("alice", call, 0)),
        asyncio.create_task(consume("bob", incoming, 1)),
    ]
    await asyncio.sleep(0)  # both consumers are waiting on the stream
    await incoming.reject()
    await asyncio.wait_for(asyncio.gather(*consumers), T)
    assert [r.outcome for r in seen_at_ended["alice"]] == ["rejected"]
    assert [r.outcome for r in seen_at_ended["bob"]] == ["rejected"]


async def test_listeners_see_every_event_in_order_and_a_broken_one_breaks_nothing(
    env: Env,
) -> None:
    alice, bob = await env.phone("alice"), await env.phone("bob")
    first, after = Recording(), Recording()
    alice.listeners[:0] = [first, Broken()]  # before the history recorder, even
    alice.listeners.append(after)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Connected, T)
    ended = await call.hangup()
    assert ended.reason == "hangup"
    for listener in (first, after):
        assert [c for c, _ in listener.seen] == [call] * len(listener.seen)
        assert [e for _, e in listener.seen] == call.event_log
    assert [r.outcome for r in env.histories[0].list()] == ["answered"]


async def test_the_facts_a_call_learns_are_fields(env: Env) -> None:
    alice, bob = await env.phone("alice"), await env.phone("bob")
    call = alice.dial("bob", audio_in="sine:440")
    incoming = await bob.next_incoming(T)
    assert (incoming.caller, call.caller) == ("alice", "")
    assert call.connected_ms is None and call.flowing_ms is None
    await incoming.accept()
    connected = await call.wait_for(ev.Connected, T)
    flowing = await incoming.wait_for(ev.MediaFlowing, T)
    check = await call.wait_for(ev.CheckCode, T)
    assert call.connected_ms == connected.setup_ms
    assert incoming.flowing_ms == flowing.setup_ms
    assert call.sas == check.code and call.check_status == check.status == "verified"
    await call.hangup()
    assert call.ended is not None and call.ended is call.event_log[-1]


async def test_options_are_values(env: Env) -> None:
    servers = [RTCIceServer("stun:127.0.0.1:3478")]
    options = CallOptions(ice_servers=servers, host_addresses=["127.0.0.1"])
    servers.append(RTCIceServer("stun:127.0.0.2:3478"))
    assert len(options.ice_servers) == 1  # the caller's list is not shared
    with pytest.raises(FrozenInstanceError):
        options.audio_in = "sine:440"  # type: ignore[misc]
    alice, bob = await env.phone("alice", quality_interval=None), await env.phone("bob")
    call = alice.dial("bob", audio_in="sine:440")
    # The phone's options reach the call (quality_interval was once dropped) and
    # the override stays the call's own.
    assert (call.options.quality_interval, call.options.audio_in) == (None, "sine:440")
    assert alice.options.audio_in == "null:"
    incoming = await bob.next_incoming(T)
    answer_with = replace(incoming.options, audio_in="sine:660")
    await incoming.accept(answer_with)
    assert incoming.options is answer_with and bob.options.audio_in == "null:"
    await call.wait_for(ev.Connected, T)
    await call.hangup()


@pytest.mark.parametrize(
    ("reason", "stage", "direction", "telemetry", "history"),
    [
        ("hangup", "connected", "outgoing", "completed", "answered"),
        ("closed", "connected", "incoming", "completed", "answered"),
        ("cancel", "connected", "outgoing", "completed", "answered"),
        ("media-fail", "connected", "outgoing", "dropped", "media-fail"),
        ("unreachable", "connected", "incoming", "dropped", "unreachable"),
        ("rejected", "ringing", "outgoing", "not-answered", "rejected"),
        ("busy", "ringing", "incoming", "not-answered", "busy"),
        ("timeout", "ringing", "outgoing", "not-answered", "timeout"),
        ("timeout", "ringing", "incoming", "not-answered", "missed"),
        ("cancel", "ringing", "incoming", "not-answered", "missed"),
        ("cancel", "dialing", "outgoing", "not-answered", "cancel"),
        ("setup-timeout", "connecting", "incoming", "failed", "missed"),
        ("media-fail", "connecting", "incoming", "failed", "media-fail"),
        ("error", "dialing", "outgoing", "failed", "error"),
    ],
)
def test_one_place_gives_both_words_for_how_a_call_went(
    reason: str, stage: str, direction: str, telemetry: str, history: str
) -> None:
    ended = ev.Ended(reason=reason, duration=0.0, stage=stage, direction=direction)
    assert (ended.outcome, ended.history_outcome) == (telemetry, history)
    assert ev.call_outcome(reason, stage) == telemetry
    assert ev.history_outcome(reason, stage, direction) == history
