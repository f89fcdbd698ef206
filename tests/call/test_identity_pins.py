"""Who is calling, really: account keys proven end to end and pinned on first use.

Real aiortc peers through the real server (and, for the lying server, a real
WebSocket relay in front of it). A stranger cannot register a look-alike of a
name (server policy), so a "changed" key is made the one way left: the account
is deleted and its name registered again with another key.
"""

from __future__ import annotations

import asyncio
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hello_tui.call import events as ev
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.call.history_recorder import HistoryRecorder
from hello_tui.call.identity_proof import Identity
from hello_tui.contacts.pins import FILE_NAME, KeyPins, key_fingerprint
from hello_tui.history.store import HistoryStore
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key, public_key_b64
from tests.call.conftest import LOOPBACK, Env, T
from tests.services.ws_relay import relay_to


@dataclass
class Person:
    name: str
    key: Any
    phone: Phone
    pins: KeyPins


async def person(
    env: Env, name: str, *, url: str | None = None, register: bool = True, sign: bool = True
) -> Person:
    """A signed-in phone that signs its SDP and keeps its own pins (``tmp/name-N``)."""
    client = SignalingClient(reconnect=None)
    await client.connect(url or env.url)
    env.clients.append(client)
    key = generate_key()
    if register:
        await client.register(name, key)
    await client.login(name, key)
    history = HistoryStore(env.tmp / f"history-{name}-{len(env.phones)}.sqlite3")
    env.histories.append(history)
    identity = Identity(name, key) if sign else None
    options = CallOptions(host_addresses=LOOPBACK, identity=identity)
    phone = Phone(client, options)
    HistoryRecorder(history).attach(phone)
    phone.pins = KeyPins.in_dir(env.tmp / f"{name}-data")
    phone.start()
    env.phones.append(phone)
    return Person(name, key, phone, phone.pins)


async def talk(caller: Person, callee: Person, to: str | None = None) -> tuple[Any, Any]:
    """One connected call, hung up once both sides settled who is who."""
    call = caller.phone.dial(to or callee.name)
    incoming = await callee.phone.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Identity, T)
    await incoming.wait_for(ev.Identity, T)
    await call.wait_for(ev.CheckCode, T)
    await incoming.wait_for(ev.CheckCode, T)
    await call.hangup()
    await incoming.wait_ended(T)
    return call, incoming


def last_identity(call: Any) -> ev.Identity:
    found = [e for e in call.event_log if isinstance(e, ev.Identity)]
    assert found, f"no identity event: {[e.kind for e in call.event_log]}"
    return found[-1]


async def reregister(env: Env, old: Person) -> Person:
    """The account deleted, its name registered again with a new key (a new device)."""
    await old.phone.client.delete_account()
    await old.phone.close()
    return await person(env, old.name)


# ---------------------------------------------------------------- trust on first use
async def test_first_call_pins_then_known(env: Env) -> None:
    alice, bob = await person(env, "alice"), await person(env, "bob")
    call, incoming = await talk(alice, bob)
    for side, other in ((call, bob), (incoming, alice)):
        identity = last_identity(side)
        assert (identity.status, identity.proven, identity.name) == ("new", True, other.name)
        assert identity.fingerprint == key_fingerprint(public_key_b64(other.key))
    pin = alice.pins.get("BOB")  # names compare as the server does
    assert pin is not None and pin.key == public_key_b64(bob.key) and not pin.verified
    assert bob.pins.get("alice").key == public_key_b64(alice.key)  # type: ignore[union-attr]
    path = env.tmp / "alice-data" / FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    call, incoming = await talk(alice, bob)
    assert last_identity(call).status == "known" and last_identity(incoming).status == "known"
    assert call.peer == "bob"


async def test_a_new_key_for_a_known_name_is_changed_and_never_replaces_the_pin(
    env: Env,
) -> None:
    alice, bob = await person(env, "alice"), await person(env, "bob")
    await talk(alice, bob)
    first = public_key_b64(bob.key)
    bob2 = await reregister(env, bob)

    # Alice calls "Bob" again: a stranger now holds the name.
    call = alice.phone.dial("bob", peer="Bob (contact)")
    incoming = await bob2.phone.next_incoming(T)
    await incoming.accept()
    identity = await call.wait_for(ev.Identity, T)
    assert (identity.status, identity.proven) == ("changed", True)
    assert identity.pinned == key_fingerprint(first)
    assert identity.fingerprint == key_fingerprint(public_key_b64(bob2.key))
    assert "this is not the bob you talked to before" in identity.line()
    assert call.peer == "bob" and not call.contact_shown  # not the contact's name
    await call.hangup()
    pin = alice.pins.get("bob")
    assert pin is not None and pin.key == first  # unchanged
    assert pin.pending == public_key_b64(bob2.key)

    # The new Bob calls Alice: the prompt already knows, before anyone answers.
    alice.phone.name_of = lambda caller: "Bob (contact)"
    ringing_call = bob2.phone.dial("alice")
    ringing = await alice.phone.next_incoming(T)
    early = ringing.identity
    assert early is not None and (early.status, early.proven) == ("changed", False)
    kinds = [e.kind for e in ringing.event_log]
    assert kinds.index("identity") < kinds.index("ringing")
    assert ringing.peer == "bob" and not ringing.contact_shown
    await ringing.accept()
    proven = await _nth_identity(ringing, 2)
    assert (proven.status, proven.proven) == ("changed", True)
    await ringing_call.hangup()
    assert alice.pins.get("bob").key == first  # type: ignore[union-attr]

    # Accepting the new key explicitly: it replaces the pin, unverified.
    alice.pins.trust("bob")
    call, _ = await talk(alice, bob2)
    assert last_identity(call).status == "known"
    assert alice.pins.get("bob").key == public_key_b64(bob2.key)  # type: ignore[union-attr]


async def _nth_identity(call: Any, n: int) -> ev.Identity:
    seen = 0
    async for event in call.events():
        if isinstance(event, ev.Identity):
            seen += 1
            if seen == n:
                return event
    raise AssertionError("the call ended first")


async def test_marking_verified_after_the_check_code_shows_on_later_calls(env: Env) -> None:
    alice, bob = await person(env, "alice"), await person(env, "bob")
    call = alice.phone.dial("bob")
    incoming = await bob.phone.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Identity, T)
    check = await call.wait_for(ev.CheckCode, T)
    assert check.status == "verified"
    marked = call.mark_verified()
    assert marked.status == "verified" and last_identity(call) is marked
    await call.hangup()
    assert alice.pins.get("bob").verified  # type: ignore[union-attr]
    call, incoming = await talk(alice, bob)
    assert last_identity(call).status == "verified"
    assert last_identity(incoming).status == "known"  # Bob did not verify Alice


# ---------------------------------------------------------------- nothing proven
async def test_a_server_lying_about_the_key_gets_unproven_and_no_pin(start_env: Any) -> None:
    """The relay is the callee's server (its logins are bound to the relay's
    origin) and replaces the announced caller key with one of its own."""
    liar_key = public_key_b64(generate_key())

    def lie(frame: str) -> str:
        data = json.loads(frame)
        if data.get("type") in ("incoming", "accepted"):
            data["caller_key" if data["type"] == "incoming" else "callee_key"] = liar_key
        return json.dumps(data)

    async with relay_to("") as relay:
        env = await start_env(aliases=(relay.url,))
        relay.upstream_url = env.url
        relay.rewrite_down = lie
        alice = await person(env, "alice")
        bob = await person(env, "bob", url=relay.url + "/ws")
        call = alice.phone.dial("bob")
        incoming = await bob.phone.next_incoming(T)
        assert incoming.peer_key == liar_key  # the lie reached the client
        await incoming.accept()
        identity = await incoming.wait_for(ev.Identity, T)
        assert (identity.status, identity.proven) == ("unproven", False)
        assert "cannot prove this is the account alice" in identity.line()
        assert bob.pins.get("alice") is None  # never pinned
        # The caller's side went through the honest server: proven.
        assert (await call.wait_for(ev.Identity, T)).status == "new"
        await call.hangup()

        # And the other way round: Bob calls through the liar, Alice answers.
        call = bob.phone.dial("alice")
        incoming = await alice.phone.next_incoming(T)
        await incoming.accept()
        identity = await call.wait_for(ev.Identity, T)
        assert identity.status == "unproven" and bob.pins.get("alice") is None
        assert (await incoming.wait_for(ev.Identity, T)).status == "known"  # pinned above
        await call.hangup()


async def test_a_peer_that_signs_nothing_is_unproven(env: Env) -> None:
    alice, bob = await person(env, "alice", sign=False), await person(env, "bob")
    call = alice.phone.dial("bob")
    incoming = await bob.phone.next_incoming(T)
    await incoming.accept()
    assert (await incoming.wait_for(ev.Identity, T)).status == "unproven"
    assert (await call.wait_for(ev.Identity, T)).status == "new"  # bob signed
    await call.hangup()
    assert bob.pins.get("alice") is None and bob.pins.all() == []


async def test_no_identity_for_the_echo_test(tmp_path: Path) -> None:
    """The echo service gets a new key at every start: never pinned, never warned."""
    from hello_tui.session.embedded import embedded_server

    async with embedded_server() as server:
        client = SignalingClient(reconnect=None)
        await client.connect(server.url)
        async with Phone(client, CallOptions(host_addresses=LOOPBACK)) as phone:
            phone.pins = KeyPins.in_dir(tmp_path)
            call = phone.dial("echo")
            await call.wait_for(ev.CheckCode, T)
            await call.hangup()
        await client.close()
    assert not [e for e in call.event_log if isinstance(e, ev.Identity)]
    assert not (tmp_path / FILE_NAME).exists()


async def test_a_missed_call_from_a_changed_key_is_not_the_contact(env: Env) -> None:
    alice, bob, carol = [await person(env, n) for n in ("alice", "bob", "carol")]
    await talk(bob, alice)  # alice pins bob's key
    bob = await reregister(env, bob)
    alice.phone.name_of = lambda caller: f"{caller.title()} (contact)"
    missed: list[str] = []
    alice.phone.on_missed = missed.append
    busy_call = carol.phone.dial("alice")
    in_call = await alice.phone.next_incoming(T)
    await in_call.accept()
    await busy_call.wait_for(ev.Connected, T)
    assert (await bob.phone.dial("alice").wait_ended(T)).reason == "busy"
    carol_again = carol.phone.dial("alice")  # a known key, for contrast: named as the contact
    assert (await carol_again.wait_ended(T)).reason == "busy"
    async with asyncio.timeout(T):
        while len(missed) < 2:  # the notices follow the busy answers on alice's connection
            await asyncio.sleep(0.02)
    assert missed == ["bob", "Carol (contact)"]
    await busy_call.hangup()
