"""An account's devices (protocol v2): link with a code, approve, list, revoke;
calls ring every device. Real server, real WebSockets, real signatures."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hello_tui.server.devices import LINKS_PER_NETWORK, MISSES_PER_ACCOUNT
from hello_tui.signaling import protocol as p
from hello_tui.signaling.identity import b64url_decode
from tests.server.conftest import Client, Running, b64, sdp

TAG = "T" * 43


async def v2(srv: Running, name: str | None = None, key: Ed25519PrivateKey | None = None) -> Client:
    client = await srv.raw()
    if key is not None:
        client.key = key
    await client.hello(2)
    if name is not None:
        assert isinstance(await client.login(name), p.LoggedIn)
    return client


async def owner(srv: Running, name: str = "alice") -> Client:
    first = await v2(srv)
    await first.register(name)
    assert isinstance(await first.login(name), p.LoggedIn)
    return first


async def ask_link(new: Client, name: str, handle: str = "7KQ2") -> None:
    await new.send(
        p.DeviceLink(
            name=name, public_key=new.public_key, handle=handle, tag=TAG, label="sealed", ref=1
        )
    )
    await new.expect(p.Ok, ref=1)


def approval(signer: Client, name: str, new: Client, handle: str = "7KQ2") -> str:
    return b64(signer.key.sign(p.device_approval_payload(name, new.public_key, handle, TAG)))


async def link(srv: Running, first: Client, name: str = "alice") -> Client:
    """A second device linked by ``first`` and signed in with its own key."""
    new = await v2(srv)
    await ask_link(new, name)
    await first.send(p.DeviceLinkGet(handle="7KQ2", ref=2))
    request = await first.expect(p.DeviceLinkRequest, public_key=new.public_key, ref=2)
    assert request.tag == TAG and request.label == "sealed"  # relayed unchanged
    signature = approval(first, name, new)
    await first.send(
        p.DeviceApprove(handle="7KQ2", public_key=new.public_key, signature=signature, ref=3)
    )
    await first.expect(p.Ok, ref=3)
    await new.expect(p.DeviceLinked, name=name, device=p.device_id(new.public_key))
    assert isinstance(await new.login(name), p.LoggedIn)
    return new


async def test_a_linked_device_signs_in_with_its_own_key(srv: Running) -> None:
    first = await owner(srv)
    second = await link(srv, first)
    await second.send(p.DeviceList(ref=4))
    listed = await second.expect(p.Devices, ref=4)
    assert [(d.id, d.current) for d in listed.devices] == [
        (p.device_id(first.public_key), False),
        (p.device_id(second.public_key), True),
    ]
    assert listed.devices[1].approved_by == p.device_id(first.public_key)
    # The server keeps the approval beside the key: anyone can check it later.
    record = await srv.store.get_account(srv.hub.accounts.key("alice"))
    assert record is not None and record.devices[0].public_key == second.public_key
    first.key.public_key().verify(
        b64url_decode(record.devices[0].signature),
        p.device_approval_payload("alice", second.public_key, "7KQ2", TAG),
    )
    assert record.links == []  # the pending link is gone once used


async def test_the_server_adds_nothing_without_a_device_signature(srv: Running) -> None:
    first = await owner(srv)
    new = await v2(srv)
    await ask_link(new, "alice")
    # A signature by another account's key (or over another key/code) is refused.
    mallory = await owner(srv, "mallory")
    await first.send(
        p.DeviceApprove(
            handle="7KQ2",
            public_key=new.public_key,
            signature=approval(mallory, "alice", new),
            ref=5,
        )
    )
    await first.error("bad-signature", ref=5)
    await first.send(
        p.DeviceApprove(
            handle="7KQ2",
            public_key=new.public_key,
            signature=approval(first, "alice", new, "ZZZZ"),
            ref=6,
        )
    )
    await first.error("bad-signature", ref=6)
    # Mallory, signed in to her own account, cannot see or approve alice's link.
    await mallory.send(p.DeviceLinkGet(handle="7KQ2", ref=7))
    await mallory.error("unknown-link", ref=7)
    await mallory.send(
        p.DeviceApprove(
            handle="7KQ2",
            public_key=new.public_key,
            signature=approval(mallory, "mallory", new),
            ref=8,
        )
    )
    await mallory.error("unknown-link", ref=8)
    # Anonymous sessions cannot approve at all.
    await new.send(
        p.DeviceApprove(
            handle="7KQ2", public_key=new.public_key, signature=approval(new, "alice", new), ref=9
        )
    )
    await new.error("auth-required", ref=9)
    assert isinstance(await new.login("alice"), p.Error)  # still not a device of alice


async def test_a_link_is_single_use_and_short_lived(srv: Running) -> None:
    first = await owner(srv)
    second = await link(srv, first)
    await first.send(
        p.DeviceApprove(
            handle="7KQ2",
            public_key=second.public_key,
            signature=approval(first, "alice", second),
            ref=7,
        )
    )
    await first.error("unknown-link", ref=7)
    late = await v2(srv)
    await ask_link(late, "alice", "9XYZ")
    srv.clock.advance(p.LINK_TTL + 1)
    await first.send(p.DeviceLinkGet(handle="9XYZ", ref=8))
    await first.error("unknown-link", ref=8)


async def test_linking_does_not_tell_who_exists_and_is_rate_limited(srv: Running) -> None:
    await owner(srv)
    stranger = await v2(srv)
    await ask_link(stranger, "nobody-here")  # ok, like for an existing account
    for _ in range(LINKS_PER_NETWORK - 1):
        await ask_link(stranger, "alice")
    await stranger.send(
        p.DeviceLink(name="alice", public_key=stranger.public_key, handle="7KQ2", tag=TAG, ref=9)
    )
    await stranger.error("rate-limited", ref=9)


async def test_guessing_codes_from_a_signed_in_device_is_bounded(srv: Running) -> None:
    first = await owner(srv)
    for n in range(MISSES_PER_ACCOUNT):
        await first.send(p.DeviceLinkGet(handle=f"{n:04d}", ref=n + 1))
        await first.error("unknown-link", ref=n + 1)
    await first.send(p.DeviceLinkGet(handle="ABCD", ref=99))
    await first.error("rate-limited", ref=99)


async def test_revoked_device_is_signed_out_and_cannot_sign_in(srv: Running) -> None:
    first = await owner(srv)
    second = await link(srv, first)
    gone = p.device_id(second.public_key)
    await first.send(p.DeviceRevoke(device=gone, ref=10))
    await first.expect(p.Ok, ref=10)
    await first.expect(p.DeviceRevoked, device=gone)  # every device hears it
    await second.expect(p.DeviceRevoked, device=gone)
    closed = await second.ws.receive(timeout=3)
    assert closed.type.name in ("CLOSE", "CLOSED", "CLOSING")
    again = await v2(srv)
    again.key = second.key
    reply = await again.login("alice")
    assert isinstance(reply, p.Error) and reply.code == "bad-signature"
    # The last device cannot be revoked (that is deleting the account).
    await first.send(p.DeviceRevoke(device=p.device_id(first.public_key), ref=11))
    await first.error("not-allowed", ref=11)


async def test_revoking_the_first_device_keeps_the_account(srv: Running) -> None:
    first = await owner(srv)
    second = await link(srv, first)
    await second.send(p.DeviceRevoke(device=p.device_id(first.public_key), ref=12))
    await second.expect(p.Ok, ref=12)
    third = await v2(srv)
    assert isinstance(await third.login("alice", second.key), p.LoggedIn)
    reply = await (await v2(srv)).login("alice", first.key)
    assert isinstance(reply, p.Error) and reply.code == "bad-signature"


async def test_a_call_rings_every_device_and_the_answer_stops_the_others(srv: Running) -> None:
    first = await owner(srv)
    second = await link(srv, first)
    carol = await v2(srv)
    await carol.register("carol")
    assert isinstance(await carol.login("carol"), p.LoggedIn)
    await carol.send(p.Call(to="alice", offer=sdp(), ref=20))
    created = await carol.expect(p.CallCreated, ref=20)
    for device in (first, second):
        await device.expect(p.Incoming, call_id=created.call_id, caller="carol")
    await second.send(p.Accept(call_id=created.call_id, ref=21))
    await second.expect(p.Offer, ref=21)
    accepted = await carol.expect(p.Accepted)
    assert accepted.callee_key == second.public_key  # the answering device's own key
    await first.expect(p.CallEnded, call_id=created.call_id, reason="answered-elsewhere")


def test_version_1_sessions_never_see_device_messages() -> None:
    for message in (
        p.DeviceLinked(name="alice", device="A" * 12),
        p.DeviceRevoked(device="A" * 12),
        p.Devices(devices=[]),
        p.DeviceLinkRequest(handle="7KQ2", public_key="A" * 43, tag=TAG),
    ):
        assert p.for_version(message, 1) is None
        assert p.for_version(message, 2) is message
    error = p.for_version(p.Error(code="unknown-link", message="x"), 1)
    assert isinstance(error, p.Error) and error.code == "not-allowed"
