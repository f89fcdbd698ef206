"""The check code's commitment exchange through the real server, against a peer
whose signaling the test writes by hand (where a man in the middle would)."""

from __future__ import annotations

import secrets

from hello_tui.call import events as ev
from hello_tui.call.sas import (
    COMMIT_ATTR,
    NONCE_ATTR,
    fingerprint_from_sdp,
    sas_code,
    sdp_attribute,
    unb64,
)
from hello_tui.cli.call_cmd import Printer
from hello_tui.signaling import protocol as p
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from tests.call.conftest import Env, T
from tests.call.manual_peer import ManualPeer


async def _ring_and_answer(env: Env, nonce: bytes | None) -> tuple[ManualPeer, str, p.Answer]:
    """Mallory (by hand) calls bob (a real Phone), bob accepts; returns bob's answer."""
    mallory = ManualPeer(await env.client("mallory"))
    bob = await env.phone("bob")
    call_id = await mallory.client.call("bob", await mallory.offer(nonce))
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    answer = await mallory.next_of([p.Answer], T)
    assert isinstance(answer, p.Answer)
    await mallory.take_answer(answer.sdp)
    return mallory, call_id, answer


async def test_a_right_reveal_gives_the_code_the_offerer_computes(env: Env) -> None:
    n_offer = secrets.token_bytes(32)
    mallory, call_id, answer = await _ring_and_answer(env, n_offer)
    (incoming,) = env.phones[0].live
    n_answer = unb64(sdp_attribute(answer.sdp, NONCE_ATTR) or "")
    assert n_answer is not None  # the answerer's nonce travels in the clear
    await mallory.reveal(call_id, n_offer)
    check = await incoming.wait_for(ev.CheckCode, T)
    assert check.status == "verified"
    # Computed independently from what crossed the wire: the offerer's view.
    fp_offer = fingerprint_from_sdp(mallory.pc.localDescription.sdp)
    fp_answer = fingerprint_from_sdp(answer.sdp)
    assert check.code == incoming.sas == sas_code(fp_offer, fp_answer, n_offer, n_answer)
    await incoming.hangup()
    await mallory.close()


async def test_a_tampered_reveal_warns_and_never_shows_a_code(env: Env) -> None:
    n_offer = secrets.token_bytes(32)
    mallory, call_id, _answer = await _ring_and_answer(env, n_offer)
    (incoming,) = env.phones[0].live
    await mallory.reveal(call_id, secrets.token_bytes(32))  # not the committed nonce
    check = await incoming.wait_for(ev.CheckCode, T)
    assert (check.status, check.code, incoming.sas) == ("mismatch", "", None)
    assert "WARNING" in Printer.human(check)
    await mallory.reveal(call_id, n_offer)  # the right one, too late: a wrong one is final
    await incoming.wait_for(ev.Connected, T)  # media still connects; the user decides
    await mallory.client.request(p.Hangup(call_id=call_id))  # after the reveal, in order
    await incoming.wait_ended(T)
    checks = [e for e in incoming.event_log if isinstance(e, ev.CheckCode)]
    assert checks == [check] and incoming.sas is None and incoming.check_status == "mismatch"
    await mallory.close()


async def test_an_offer_without_commitment_gets_no_code(env: Env) -> None:
    owner = await env.phone()
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, "old client"))
    waiting = owner.join(room_url(created.url, key))
    await waiting.wait_for(ev.Waiting, T)
    guest = ManualPeer(await env.client())
    joined = await guest.client.room_join(created.room.token, offer=await guest.offer(None))
    assert joined.call_id
    answer = await guest.next_of([p.Answer], T)
    assert isinstance(answer, p.Answer) and sdp_attribute(answer.sdp, NONCE_ATTR)
    await guest.take_answer(answer.sdp)
    await waiting.wait_for(ev.Connected, T)
    check = await waiting.wait_for(ev.CheckCode, T)
    assert (check.status, check.code, waiting.sas) == ("unsupported", "", None)
    assert Printer.human(check) == "No check code: the other side does not support it."
    await waiting.hangup()
    await guest.close()


async def test_an_answer_without_nonce_gets_no_code_and_no_reveal(env: Env) -> None:
    waiter = ManualPeer(await env.client())
    key = new_room_key()
    created = await waiter.client.room_create(encrypt_name(key, "old client"))
    await waiter.client.room_join(created.room.token)
    guest = await env.phone()
    joining = guest.join(room_url(created.url, key))
    offer = await waiter.next_of([p.Offer], T)
    assert isinstance(offer, p.Offer)
    # The offer commits to its nonce and does not show it.
    assert sdp_attribute(offer.sdp, COMMIT_ATTR) and not sdp_attribute(offer.sdp, NONCE_ATTR)
    await waiter.client.answer(offer.call_id, await waiter.answer(offer.sdp, None))
    check = await joining.wait_for(ev.CheckCode, T)
    assert (check.status, check.code, joining.sas) == ("unsupported", "", None)
    await joining.hangup()
    # Everything the offerer sent reached us before its leaving: no reveal among it.
    seen: list[p.Message] = []
    while not seen or not isinstance(seen[-1], p.PeerLeft):
        seen.append(await waiter.next_of([p.Message], T))  # type: ignore[type-abstract]
    assert not [m for m in seen if isinstance(m, p.SasReveal)], seen
    await waiter.close()


async def test_a_second_offer_cannot_restart_the_exchange(env: Env) -> None:
    """One exchange per call: otherwise a relay could re-offer until the codes agreed."""
    owner = await env.phone()
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, "retries"))
    waiting = owner.join(room_url(created.url, key))
    await waiting.wait_for(ev.Waiting, T)
    guest = ManualPeer(await env.client())
    first = secrets.token_bytes(32)
    joined = await guest.client.room_join(created.room.token, offer=await guest.offer(first))
    assert joined.call_id
    answer = await guest.next_of([p.Answer], T)
    assert isinstance(answer, p.Answer)
    again = ManualPeer(guest.client)  # a fresh offer with a fresh commitment, same call
    await guest.client.offer(joined.call_id, await again.offer(secrets.token_bytes(32)))
    await guest.take_answer(answer.sdp)
    await guest.reveal(joined.call_id, first)  # opens the first commitment only
    check = await waiting.wait_for(ev.CheckCode, T)
    assert check.status == "verified" and waiting.sas == check.code
    await waiting.hangup()
    seen: list[p.Message] = []
    while not seen or not isinstance(seen[-1], p.PeerLeft):
        seen.append(await guest.next_of([p.Message], T))  # type: ignore[type-abstract]
    assert not [m for m in seen if isinstance(m, p.Answer)], seen  # never answered again
    await guest.close()
    await again.close()
