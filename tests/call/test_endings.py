"""Every way a call ends, seen from the client: the Ended reason and the history."""

from __future__ import annotations

import asyncio

from hello_tui.call import events as ev
from hello_tui.call.engine import Phone
from tests.call.conftest import Env, StartEnv, T


def _history(env: Env, i: int) -> tuple[str, str, str]:
    (record,) = env.histories[i].list()
    return record.direction, record.peer, record.outcome


async def _ringing_pair(env: Env) -> tuple[Phone, Phone]:
    return await env.phone("alice"), await env.phone("bob")


async def test_rejected(env: Env) -> None:
    alice, bob = await _ringing_pair(env)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await call.wait_for(ev.Ringing, T)
    assert (await incoming.reject()).reason == "rejected"
    ended = await call.wait_ended(T)
    assert (ended.reason, ended.stage) == ("rejected", "ringing")
    assert _history(env, 0) == ("outgoing", "bob", "rejected")
    assert _history(env, 1) == ("incoming", "alice", "rejected")


async def test_busy(env: Env) -> None:
    alice, bob = await _ringing_pair(env)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.reject("busy")
    assert (await call.wait_ended(T)).reason == "busy"
    assert _history(env, 0) == ("outgoing", "bob", "busy")


async def test_a_caller_turned_away_busy_is_shown_as_missed(env: Env) -> None:
    """Bob is in a call with alice; carol calls bob: she hears busy (the server
    answers for the busy device) and bob is told who called, once."""
    alice, bob = await _ringing_pair(env)
    carol = await env.phone("carol")
    bob.name_of = lambda caller: {"carol": "Carol Durand"}.get(caller, caller)
    missed: list[str] = []
    bob.on_missed = missed.append
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Connected, T)
    turned_away = carol.dial("bob")
    assert (await turned_away.wait_ended(T)).reason == "busy"
    async with asyncio.timeout(T):
        while not missed:  # the notice follows the busy answer on bob's connection
            await asyncio.sleep(0.01)
    assert missed == ["Carol Durand"]
    assert [(r.direction, r.peer, r.outcome) for r in env.histories[1].list()] == [
        ("incoming", "Carol Durand", "missed")
    ]
    await call.hangup()


async def test_blocked_caller_is_refused_busy_before_ringing(env: Env) -> None:
    alice, bob = await _ringing_pair(env)
    bob.screen = lambda caller: "busy" if caller == "alice" else None
    call = alice.dial("bob")
    assert (await call.wait_ended(T)).reason == "busy"
    assert _history(env, 1) == ("incoming", "alice", "busy")


async def test_no_answer_times_out(start_env: StartEnv) -> None:
    env = await start_env(ring_timeout=0.3)
    alice, bob = await _ringing_pair(env)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    assert (await call.wait_ended(T)).reason == "timeout"
    assert (await incoming.wait_ended(T)).reason == "timeout"
    assert _history(env, 0) == ("outgoing", "bob", "timeout")
    assert _history(env, 1) == ("incoming", "alice", "missed")


async def test_caller_cancels_while_ringing(env: Env) -> None:
    alice, bob = await _ringing_pair(env)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await call.wait_for(ev.Ringing, T)
    ended = await call.hangup()
    assert (ended.reason, ended.stage) == ("cancel", "ringing")
    assert (await incoming.wait_ended(T)).reason == "cancel"
    assert _history(env, 0) == ("outgoing", "bob", "cancel")
    assert _history(env, 1) == ("incoming", "alice", "missed")


async def test_unavailable_and_unknown(env: Env) -> None:
    alice = await env.phone("alice")
    bob_client = await env.client("bob")
    await bob_client.close()  # bob exists but has no device online
    call = alice.dial("bob")
    assert (await call.wait_ended(T)).reason == "unavailable"
    call = alice.dial("nobody-by-that-name")
    ended = await call.wait_ended(T)
    # No existence oracle: nobody by that name looks like nobody online.
    assert (ended.reason, ended.stage) == ("unavailable", "dialing")
    outcomes = [r.outcome for r in env.histories[0].list()]
    assert outcomes == ["unavailable", "unavailable"]


async def test_callee_hangs_up(env: Env) -> None:
    alice, bob = await _ringing_pair(env)
    call = alice.dial("bob", audio_in="sine:300")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.MediaFlowing, T)
    await incoming.wait_for(ev.MediaFlowing, T)
    assert (await incoming.hangup()).reason == "hangup"
    ended = await call.wait_ended(T)
    assert (ended.reason, ended.stage) == ("hangup", "connected")
    assert _history(env, 0) == ("outgoing", "bob", "answered")


async def test_peer_vanishing_ends_with_closed(env: Env) -> None:
    alice, bob = await _ringing_pair(env)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Connected, T)
    await bob.client.close()  # bob's connection vanishes without a hangup
    ended = await call.wait_ended(T)
    assert (ended.reason, ended.stage) == ("closed", "connected")
    assert (await incoming.wait_ended(T)).reason == "unreachable"


async def test_media_failure_is_reported_to_the_server(env: Env) -> None:
    alice = await env.phone("alice")
    # Bob gathers on an address this machine does not have: no candidate, no path.
    bob = await env.phone("bob", host_addresses=("192.0.2.254",), media_timeout=2.0)
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    assert (await incoming.wait_ended(T)).reason == "media-fail"
    ended = await call.wait_ended(T)
    assert ended.reason == "media-fail"
    assert _history(env, 1) == ("incoming", "alice", "media-fail")
