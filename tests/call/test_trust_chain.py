"""A contact's second device is the same account, not a changed key.

Real aiortc peers through the real server; the second device is linked by the
real flow (``device-link`` with a code's tag, checked and signed on the first
device by ``account_local``), so the approval the callee follows is the one the
server stored. A lying server (a WebSocket relay) makes up a chain to show a
forged one gets "changed" as before.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hello_tui.call import events as ev
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.call.identity_proof import Identity
from hello_tui.config.paths import Paths
from hello_tui.signaling import protocol as p
from hello_tui.signaling.account_local import approve_link, fetch_link
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import (
    b64url_encode,
    generate_key,
    link_key,
    link_tag,
    new_link_code,
    parse_link_code,
    public_key_b64,
)
from tests.call.conftest import LOOPBACK, Env, T
from tests.call.test_identity_pins import (
    Person,
    _nth_identity,
    last_identity,
    person,
    reregister,
    talk,
)
from tests.services.ws_relay import relay_to


async def linked_device(env: Env, first: Person) -> Person:
    """A second device of ``first``'s account: its own key, linked with a code the
    first device checks and approves, then signed in and ready to call."""
    client = SignalingClient(reconnect=None)
    await client.connect(env.url)
    env.clients.append(client)
    key = generate_key()
    public = public_key_b64(key)
    code = new_link_code()
    handle, secret = parse_link_code(code)
    box = await asyncio.to_thread(link_key, handle, secret, first.name)
    tag = link_tag(box, public, first.name)
    await client.request(p.DeviceLink(name=first.name, public_key=public, handle=handle, tag=tag))
    # On the first device: the typed code checks the waiting key, then it signs.
    offer = await fetch_link(first.phone.client, first.name, code)
    paths = Paths(None, env.tmp / "cfg", env.tmp / "first-data", env.tmp / "state")
    await approve_link(first.phone.client, paths, first.key, offer)
    while not isinstance(event := await client.next_event(T), p.DeviceLinked):
        assert not isinstance(event, p.Error), event
    await client.login(event.name, key)
    options = CallOptions(host_addresses=LOOPBACK, identity=Identity(event.name, key))
    phone = Phone(client, options)
    phone.pins = first.pins
    phone.start()
    env.phones.append(phone)
    return Person(event.name, key, phone, first.pins)


def identities(call: Any) -> list[ev.Identity]:
    return [e for e in call.event_log if isinstance(e, ev.Identity)]


async def test_a_call_from_a_linked_device_is_the_same_account(env: Env) -> None:
    alice, bob = await person(env, "alice"), await person(env, "bob")
    await talk(alice, bob)  # bob pins alice's first key
    first_key = public_key_b64(alice.key)
    laptop = await linked_device(env, alice)

    call = laptop.phone.dial("bob")
    incoming = await bob.phone.next_incoming(T)
    # While it rings, the chain already says "same account": no warning, the contact shown.
    assert incoming.contact_shown and not identities(incoming)
    await incoming.accept()
    identity = await incoming.wait_for(ev.Identity, T)
    assert (identity.status, identity.proven) == ("linked", True)
    assert identity.linked_by == p.device_id(first_key) and identity.linked_on > 0
    assert identity.trusted and incoming.contact_shown
    assert f"linked by device {p.device_id(first_key)}" in identity.line()
    assert "not the alice" not in identity.line()
    await call.wait_for(ev.Identity, T)
    await call.hangup()
    await incoming.wait_ended(T)
    pin = bob.pins.get("alice")
    assert pin is not None and pin.key == first_key and not pin.pending
    assert pin.devices == (public_key_b64(laptop.key),)  # pinned too

    # From then on it is a known key of alice's, from either device.
    call, incoming = await talk(laptop, bob)
    assert last_identity(incoming).status == "known"
    call, incoming = await talk(alice, bob)
    assert last_identity(incoming).status == "known"


async def test_a_linked_device_answering_is_the_same_account(env: Env) -> None:
    alice, bob = await person(env, "alice"), await person(env, "bob")
    await talk(bob, alice)  # bob pins alice's first key (alice answered)
    laptop = await linked_device(env, alice)
    await alice.phone.close()  # only the laptop rings
    call = bob.phone.dial("alice")
    incoming = await laptop.phone.next_incoming(T)
    await incoming.accept()
    identity = await call.wait_for(ev.Identity, T)
    assert (identity.status, identity.proven) == ("linked", True)
    assert identity.linked_by == p.device_id(public_key_b64(alice.key))
    await call.hangup()
    assert bob.pins.get("alice").devices == (public_key_b64(laptop.key),)  # type: ignore[union-attr]


async def test_a_forged_chain_is_still_a_changed_key(start_env: Any) -> None:
    """The name passes to a stranger (account deleted, registered again); the
    callee's server makes up an approval of the stranger's key "by" alice's
    pinned key, signed with another account's key: the check fails."""
    mallory_key = generate_key()
    forged: dict[str, Any] = {}

    def lie(frame: str) -> str:
        data = json.loads(frame)
        if data.get("type") == "incoming" and forged:
            data["caller_chain"] = [forged]
        return json.dumps(data)

    async with relay_to("") as relay:
        env = await start_env(aliases=(relay.url,))
        relay.upstream_url = env.url
        relay.rewrite_down = lie
        alice = await person(env, "alice")
        bob = await person(env, "bob", url=relay.url + "/ws")
        await talk(alice, bob)
        pinned = public_key_b64(alice.key)
        stranger = await reregister(env, alice)
        new = public_key_b64(stranger.key)
        handle, tag = "7KQ2", "T" * 43
        payload = p.device_approval_payload("alice", new, handle, tag)
        forged.update(public_key=new, approver=pinned, handle=handle, tag=tag,
                      signature=b64url_encode(mallory_key.sign(payload)), added=1)  # fmt: skip

        call = stranger.phone.dial("bob")
        incoming = await bob.phone.next_incoming(T)
        assert [c.approver for c in incoming.trust.peer_chain] == [pinned]  # the lie arrived
        early = incoming.identity
        assert early is not None and early.status == "changed"  # warned while ringing
        await incoming.accept()
        identity = await _nth_identity(incoming, 2)
        assert (identity.status, identity.proven) == ("changed", True)
        assert not incoming.contact_shown
        await call.hangup()
        pin = bob.pins.get("alice")
        assert pin is not None and pin.key == pinned and pin.devices == ()
        assert pin.pending == new
