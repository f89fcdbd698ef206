"""Round trips on the way to a call's first audio (docs/media.md, "Where setup time
goes", session 9): the callee's `accept` does not wait for the server's `ok` to
its `ringing`."""

from __future__ import annotations

import asyncio

from hello_tui.call import events as ev
from tests.call.conftest import Env

T = 15.0


async def test_the_call_is_answerable_before_the_server_acks_ringing(env: Env) -> None:
    """Bob's `ringing` is sent but its reply held back for good: the call is still
    handed out and answered, and the server, serving one connection's messages in
    order, has Alice see it ring before it is accepted."""
    alice = await env.phone("alice", audio_in="sine:440")
    bob = await env.phone("bob", audio_in="sine:440")
    ringing = bob.client.ringing
    sent: list[str] = []

    async def ring_unacked(call_id: str) -> None:
        request = asyncio.ensure_future(ringing(call_id))
        await asyncio.sleep(0)  # its first step: sent (the send lock taken)
        sent.append(call_id)
        await asyncio.Event().wait()  # the ok never counts
        await request

    bob.client.ringing = ring_unacked  # type: ignore[method-assign]
    call = alice.dial("bob")
    incoming = await bob.next_incoming(5.0)
    assert sent == [incoming.call_id]
    await incoming.accept()
    await call.wait_for(ev.MediaFlowing, T)
    await incoming.wait_for(ev.MediaFlowing, T)
    kinds = [type(e) for e in call.event_log]
    assert kinds.index(ev.Ringing) < kinds.index(ev.Connecting)
    await call.hangup()
    await incoming.wait_ended(T)
