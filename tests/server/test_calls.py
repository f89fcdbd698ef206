"""Direct calls: every way a call can end, and each time the store forgets it (P4)."""

from __future__ import annotations

import asyncio

import pytest

from hello_tui.signaling import protocol as p
from tests.server.conftest import Client, Running, StartServer, sdp


async def devices_of(srv: Running, name: str, count: int = 1) -> list[Client]:
    """``count`` logged-in devices of one account (same key)."""
    first = await srv.client(name)
    devices = [first]
    for _ in range(count - 1):
        device = await srv.client()
        device.key = first.key
        assert isinstance(await device.login(name), p.LoggedIn)
        devices.append(device)
    return devices


async def place(caller: Client, to: str, *devices: Client, video: bool = False) -> tuple[str, str]:
    """Caller dials; every device gets ``incoming``. Returns (call_id, offer sdp)."""
    offer = sdp("offer")
    ref = caller.next_ref()
    await caller.send(p.Call(to=to, offer=offer, video=video, ref=ref))
    call_id = (await caller.expect(p.CallCreated, ref=ref)).call_id
    for device in devices:
        await device.expect(p.Incoming, call_id=call_id, caller=caller.name, video=video)
    return call_id, offer


async def answer(caller: Client, callee: Client, call_id: str, offer: str) -> str:
    """Ring, accept, answer, connected. Returns the answer sdp."""
    await callee.send(p.Ringing(call_id=call_id))
    await caller.expect(p.Ringing, call_id=call_id)
    await callee.send(p.Accept(call_id=call_id, ref=7))
    await callee.expect(p.Offer, call_id=call_id, sdp=offer, ref=7)
    await caller.expect(p.Accepted, call_id=call_id)
    reply = sdp("answer")
    await callee.send(p.Answer(call_id=call_id, sdp=reply))
    await caller.expect(p.Answer, call_id=call_id, sdp=reply)
    await callee.send(p.Connected(call_id=call_id, ref=8))
    await callee.expect(p.Ok, ref=8)
    return reply


async def test_full_call_then_hangup(srv: Running) -> None:
    (alice,) = await devices_of(srv, "Alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice, video=True)
    assert len(call_id) >= 22  # 128 random bits
    reply = await answer(caller, alice, call_id, offer)
    await caller.send(p.Hangup(call_id=call_id, ref=3))
    await caller.expect(p.CallEnded, call_id=call_id, reason="hangup", ref=3)
    await alice.expect(p.CallEnded, call_id=call_id, reason="hangup")
    await srv.assert_forgotten(call_id, offer, reply)
    assert srv.hub.metrics.calls_ended["hangup"] == 1
    assert srv.hub.metrics.calls_active == 0


async def test_logged_in_caller_name_shown_and_callee_hangs_up(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    bob = await srv.client("Bob")
    call_id, offer = await place(bob, "ALICE ", alice)  # normalised lookup
    reply = await answer(bob, alice, call_id, offer)
    await alice.send(p.Hangup(call_id=call_id, reason="media-fail"))
    await alice.expect(p.CallEnded, reason="media-fail")
    await bob.expect(p.CallEnded, reason="media-fail")
    await srv.assert_forgotten(call_id, offer, reply)


async def test_reject_ends_the_call_on_every_device(srv: Running) -> None:
    phone, laptop = await devices_of(srv, "alice", 2)
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", phone, laptop)
    await phone.send(p.Reject(call_id=call_id, ref=4))
    await caller.expect(p.CallEnded, call_id=call_id, reason="rejected")
    await phone.expect(p.Ok, ref=4)  # the rejecting device only gets its ok
    await laptop.expect(p.CallEnded, reason="rejected")
    await srv.assert_forgotten(call_id, offer)


async def test_busy_is_per_device(srv: Running) -> None:
    phone, laptop = await devices_of(srv, "alice", 2)
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", phone, laptop)
    await phone.send(p.Reject(call_id=call_id, reason="busy", ref=1))
    await phone.expect(p.Ok, ref=1)
    # Still ringing on the laptop: it can accept.
    await laptop.send(p.Reject(call_id=call_id, reason="busy"))
    await caller.expect(p.CallEnded, call_id=call_id, reason="busy")
    await srv.assert_forgotten(call_id, offer)


async def test_callee_in_a_call_is_busy(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    first = await srv.client("dave")
    call_id, offer = await place(first, "alice", alice)
    await answer(first, alice, call_id, offer)
    second = await srv.client("erin")
    ref = second.next_ref()
    offer2 = sdp()
    await second.send(p.Call(to="alice", offer=offer2, ref=ref))
    busy_id = (await second.expect(p.CallCreated, ref=ref)).call_id
    await second.expect(p.CallEnded, call_id=busy_id, reason="busy")
    # The busy callee is told who called (not turned away unseen).
    missed = await alice.expect(p.Missed, call_id=busy_id)
    assert missed.caller == "erin"
    await srv.assert_forgotten(busy_id, offer2)
    # The first call is untouched.
    await first.send(p.Hangup(call_id=call_id))
    await alice.expect(p.CallEnded, call_id=call_id, reason="hangup")


async def test_ringing_timer_ends_with_timeout(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    await alice.send(p.Ringing(call_id=call_id))
    await caller.expect(p.Ringing)
    await caller.expect(p.CallEnded, call_id=call_id, reason="timeout")
    await alice.expect(p.CallEnded, call_id=call_id, reason="timeout")
    await srv.assert_forgotten(call_id, offer)


async def test_supervisory_timer_ends_with_setup_timeout(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)  # alice never says "ringing"
    await caller.expect(p.CallEnded, call_id=call_id, reason="setup-timeout")
    await alice.expect(p.CallEnded, call_id=call_id, reason="setup-timeout")
    await srv.assert_forgotten(call_id, offer)


async def test_caller_hangup_before_answer_cancels(srv: Running) -> None:
    phone, laptop = await devices_of(srv, "alice", 2)
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", phone, laptop)
    await phone.send(p.Ringing(call_id=call_id))
    await caller.expect(p.Ringing)
    await caller.send(p.Hangup(call_id=call_id))
    await caller.expect(p.CallEnded, reason="cancel")
    await phone.expect(p.CallEnded, call_id=call_id, reason="cancel")
    await laptop.expect(p.CallEnded, call_id=call_id, reason="cancel")
    await srv.assert_forgotten(call_id, offer)


async def test_first_accept_wins_others_answered_elsewhere(srv: Running) -> None:
    phone, laptop = await devices_of(srv, "alice", 2)
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", phone, laptop)
    await laptop.send(p.Accept(call_id=call_id))
    await laptop.expect(p.Offer, sdp=offer)
    await caller.expect(p.Accepted)
    await phone.expect(p.CallEnded, call_id=call_id, reason="answered-elsewhere")
    # The losing device can no longer accept, and never saw the offer.
    await phone.send(p.Accept(call_id=call_id, ref=5))
    await phone.error("not-allowed", ref=5)
    text = await srv.dump_text()
    assert offer not in text  # handed over, no longer held
    await laptop.send(p.Hangup(call_id=call_id))
    await laptop.expect(p.CallEnded, reason="hangup")
    await caller.expect(p.CallEnded, reason="hangup")
    await srv.assert_forgotten(call_id, offer)


async def test_unknown_and_offline_look_the_same(srv: Running) -> None:
    """No existence oracle: a name nobody has and an account with no device
    online get the same answer, from the same steps."""
    alice = await srv.client("alice")
    await alice.send(p.Logout(ref=1))
    await alice.expect(p.Ok, ref=1)
    caller = await srv.client("carol")
    unknown_id, offer = await place(caller, "nobody")
    unknown = await caller.expect(p.CallEnded, call_id=unknown_id)
    offline_id, offer2 = await place(caller, "alice")
    offline = await caller.expect(p.CallEnded, call_id=offline_id)
    assert unknown.reason == offline.reason == "unavailable"
    await srv.assert_forgotten(unknown_id, offer, offline_id, offer2)


async def test_anonymous_callers_reach_only_the_echo_test(start_server: StartServer) -> None:
    srv = await start_server(reserved_names=("echo",))
    await devices_of(srv, "alice")
    anonymous = await srv.client()
    await anonymous.send(p.Call(to="alice", offer=sdp(), ref=1))
    refused = await anonymous.error("auth-required", ref=1)
    assert "echo test and rooms" in refused.message
    await anonymous.send(p.Call(to="nobody", offer=sdp(), ref=2))
    await anonymous.error("auth-required", ref=2)  # the same for a name nobody has
    await anonymous.send(p.Call(to="Echo", offer=sdp(), ref=3))  # a service: allowed
    created = await anonymous.expect(p.CallCreated, ref=3)
    await anonymous.expect(p.CallEnded, call_id=created.call_id, reason="unavailable")


async def test_account_without_device_is_unavailable(srv: Running) -> None:
    alice = await srv.client("alice")
    await alice.send(p.Logout(ref=1))
    await alice.expect(p.Ok, ref=1)
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice")
    await caller.expect(p.CallEnded, call_id=call_id, reason="unavailable")
    # Calling yourself from your only device: nobody else to ring.
    await alice.account("alice2")
    call_id2, offer2 = await place(alice, "alice2")
    await alice.expect(p.CallEnded, call_id=call_id2, reason="unavailable")
    await srv.assert_forgotten(call_id, offer, call_id2, offer2)


@pytest.mark.parametrize("who", ["caller", "callee"])
async def test_vanished_party_is_closed(srv: Running, who: str) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    reply = await answer(caller, alice, call_id, offer)
    gone, other = (caller, alice) if who == "caller" else (alice, caller)
    await gone.close()
    await other.expect(p.CallEnded, call_id=call_id, reason="closed")
    await srv.assert_forgotten(call_id, offer, reply)


async def test_caller_vanishing_while_ringing_is_closed(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    await caller.close()
    await alice.expect(p.CallEnded, call_id=call_id, reason="closed")
    await srv.assert_forgotten(call_id, offer)


async def test_connection_timer_ends_with_media_fail(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    await alice.send(p.Accept(call_id=call_id))
    await alice.expect(p.Offer)
    await caller.expect(p.Accepted)
    await caller.expect(p.CallEnded, call_id=call_id, reason="media-fail")
    await alice.expect(p.CallEnded, call_id=call_id, reason="media-fail")
    await srv.assert_forgotten(call_id, offer)


async def test_connected_stops_the_connection_timer(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    await answer(caller, alice, call_id, offer)
    with pytest.raises(asyncio.TimeoutError):  # no media-fail after 3 timer lengths
        await caller.recv(timeout=0.9)
    assert await srv.store.get_call(call_id) is not None  # the record lives until hang-up
    await caller.send(p.Hangup(call_id=call_id))
    await alice.expect(p.CallEnded, reason="hangup")


async def test_outsiders_and_unknown_calls(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    stranger = await srv.client()
    call_id, offer = await place(caller, "alice", alice)
    for message in (
        p.Ringing(call_id=call_id, ref=1),
        p.Accept(call_id=call_id, ref=2),
        p.Reject(call_id=call_id, ref=3),
        p.Hangup(call_id=call_id, ref=4),
        p.Connected(call_id=call_id, ref=5),
        p.Answer(call_id=call_id, sdp="x", ref=6),
        p.Offer(call_id=call_id, sdp="x", ref=7),
    ):
        await stranger.send(message)
        await stranger.error("not-allowed", ref=message.ref)
    # Before accept, even the caller cannot relay SDP.
    await caller.send(p.Answer(call_id=call_id, sdp="x", ref=8))
    await caller.error("not-allowed", ref=8)
    await stranger.send(p.Hangup(call_id="nonexistent-call", ref=9))
    await stranger.error("unknown-call", ref=9)
    await caller.send(p.Hangup(call_id=call_id))
    await caller.expect(p.CallEnded, reason="cancel")
    await alice.expect(p.CallEnded, reason="cancel")
    await srv.assert_forgotten(call_id, offer)


async def test_callee_hangup_while_ringing_rejects(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    await alice.send(p.Hangup(call_id=call_id))
    await caller.expect(p.CallEnded, reason="rejected")
    await srv.assert_forgotten(call_id, offer)


async def test_renegotiation_offer_after_connect_is_relayed(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    await answer(caller, alice, call_id, offer)
    again = sdp("offer")
    await caller.send(p.Offer(call_id=call_id, sdp=again, ref=11))
    await caller.expect(p.Ok, ref=11)
    await alice.expect(p.Offer, sdp=again)
    await srv.assert_forgotten(again)
    await alice.send(p.Hangup(call_id=call_id))
    await caller.expect(p.CallEnded, reason="hangup")


async def test_stale_device_entries_do_not_keep_a_call_ringing(srv: Running) -> None:
    (alice,) = await devices_of(srv, "alice")
    key = srv.hub.accounts.key("alice")
    # A device entry left by a crashed instance: nobody will receive for it.
    await srv.store.add_presence(key, "ghost-session-id-0000", srv.clock() + 60)
    caller = await srv.client("carol")
    call_id, offer = await place(caller, "alice", alice)
    record = await srv.store.get_call(call_id)
    assert record is not None and record.devices == [alice.session]
    await alice.send(p.Reject(call_id=call_id, reason="busy"))
    await caller.expect(p.CallEnded, call_id=call_id, reason="busy")
    # Only ghosts: unavailable at once.
    await alice.send(p.Logout())
    await alice.expect(p.Ok)
    call_id2, offer2 = await place(caller, "alice")
    await caller.expect(p.CallEnded, call_id=call_id2, reason="unavailable")
    await srv.assert_forgotten(call_id, offer, call_id2, offer2)
