"""Following a device's approval chain: real Ed25519 signatures over the payload
the server verifies (``protocol.device_approval_payload``), the pins that follow
it, the chain the server serves from an account record, and v1 never seeing it."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hello_tui.contacts.pins import KeyPins
from hello_tui.server.devices import approval_chain
from hello_tui.server.records import AccountRecord, DeviceRecord
from hello_tui.signaling import protocol as p
from hello_tui.signaling.identity import (
    approval_path,
    b64url_encode,
    generate_key,
    public_key_b64,
)

TAG = "T" * 43


def approve(
    approver: Ed25519PrivateKey,
    new: Ed25519PrivateKey,
    account: str = "alice",
    handle: str = "7KQ2",
) -> p.DeviceApproval:
    key = public_key_b64(new)
    signature = approver.sign(p.device_approval_payload(account, key, handle, TAG))
    return p.DeviceApproval(
        public_key=key,
        approver=public_key_b64(approver),
        handle=handle,
        tag=TAG,
        signature=b64url_encode(signature),
        added=1_700_000_000,
    )


def test_a_chain_of_two_links_leads_to_the_trusted_key() -> None:
    desk, laptop, phone = generate_key(), generate_key(), generate_key()
    chain = [approve(laptop, phone), approve(desk, laptop)]
    path = approval_path(["alice"], public_key_b64(phone), chain, {public_key_b64(desk)})
    assert path == chain
    # Trusting the middle key is enough; the trusted key itself needs no path.
    assert approval_path(["alice"], public_key_b64(phone), chain, {chain[1].public_key}) == [
        chain[0]
    ]
    assert approval_path(["alice"], public_key_b64(desk), chain, {public_key_b64(desk)}) == []


def test_forgeries_lead_nowhere() -> None:
    desk, laptop, mallory = generate_key(), generate_key(), generate_key()
    trusted = {public_key_b64(desk)}
    new = public_key_b64(laptop)
    # Signed by another key while naming the trusted one as approver.
    forged = approve(mallory, laptop)
    claimed = p.DeviceApproval(**{**_fields(forged), "approver": public_key_b64(desk)})
    assert approval_path(["alice"], new, [claimed], trusted) is None
    # A valid signature by another key leads to a key nobody trusts.
    assert approval_path(["alice"], new, [forged], trusted) is None
    # The trusted key's real signature, but for another account, handle or key.
    assert approval_path(["alice"], new, [approve(desk, laptop, "carol")], trusted) is None
    wrong_handle = p.DeviceApproval(**{**_fields(approve(desk, laptop)), "handle": "ZZZZ"})
    assert approval_path(["alice"], new, [wrong_handle], trusted) is None
    other = generate_key()
    swapped = p.DeviceApproval(**{**_fields(approve(desk, other)), "public_key": new})
    assert approval_path(["alice"], new, [swapped], trusted) is None
    # A cycle (each approving the other) ends the walk; an empty chain too.
    loop = [approve(laptop, mallory), approve(mallory, laptop)]
    assert approval_path(["alice"], new, loop, trusted) is None
    assert approval_path(["alice"], new, [], trusted) is None
    # Approvals only go downwards: the approver of a trusted key is not trusted.
    assert approval_path(["alice"], public_key_b64(desk), [approve(desk, laptop)], {new}) is None


def _fields(link: p.DeviceApproval) -> dict[str, object]:
    return {f: getattr(link, f) for f in link.__struct_fields__}


def test_pins_follow_the_chain_and_pin_every_key_on_the_way(tmp_path: Path) -> None:
    desk, laptop, phone, stranger = (generate_key() for _ in range(4))
    pins = KeyPins.in_dir(tmp_path)
    assert pins.record("Alice", public_key_b64(desk)) == "new"
    chain = [approve(laptop, phone), approve(desk, laptop)]
    key = public_key_b64(phone)
    assert pins.judge("alice", key) == "changed"  # no chain: as before
    assert pins.judge("alice", key, chain) == "linked"  # judging writes nothing
    assert pins.get("alice").devices == ()  # type: ignore[union-attr]
    assert pins.record("alice", key, chain) == "linked"
    pin = pins.get("alice")
    assert pin is not None and pin.key == public_key_b64(desk)
    assert set(pin.devices) == {public_key_b64(laptop), key}
    assert pins.record("alice", key) == "known" and pins.judge("alice", chain[1].public_key) == (
        "known"
    )
    # Verified covers the keys linked from the verified one.
    pins.verify("alice")
    assert pins.judge("alice", key) == "verified"
    # A stranger's key with a chain "by" the pinned key it cannot sign: changed, pending.
    forged = p.DeviceApproval(
        **{**_fields(approve(stranger, stranger)), "approver": public_key_b64(desk)}
    )
    assert pins.record("alice", public_key_b64(stranger), [forged]) == "changed"
    assert pins.get("alice").pending == public_key_b64(stranger)  # type: ignore[union-attr]
    # The file keeps the linked keys; accepting a changed key starts afresh.
    assert set(KeyPins.in_dir(tmp_path).get("alice").devices) == set(pin.devices)  # type: ignore[union-attr]
    assert pins.trust("alice").devices == ()


def test_the_name_as_first_seen_is_tried_too(tmp_path: Path) -> None:
    """The approving device signed the name it signed in with ("Alice"); the
    caller may be announced as "alice": both forms are tried."""
    desk, laptop = generate_key(), generate_key()
    pins = KeyPins.in_dir(tmp_path)
    pins.record("Alice", public_key_b64(desk))
    chain = [approve(desk, laptop, "Alice")]
    assert pins.record("alice", public_key_b64(laptop), chain) == "linked"


def test_the_server_serves_the_stored_approvals_up_to_the_first_device() -> None:
    desk, laptop, phone = generate_key(), generate_key(), generate_key()
    links = [approve(desk, laptop), approve(laptop, phone)]
    record = AccountRecord(public_key=public_key_b64(desk), created=1, until=2)
    for link in links:
        record.devices.append(
            DeviceRecord(
                public_key=link.public_key,
                added=link.added,
                approved_by=p.device_id(link.approver),
                signature=link.signature,
                approver_key=link.approver,
                handle=link.handle,
                tag=link.tag,
            )
        )
    record.devices.append(  # written before approvals were kept whole: not served
        DeviceRecord(
            public_key=public_key_b64(generate_key()), added=1, approved_by="x", signature="y"
        )
    )
    assert approval_chain(record, public_key_b64(phone)) == [links[1], links[0]]
    assert approval_chain(record, public_key_b64(desk)) == []
    assert approval_chain(record, record.devices[2].public_key) == []


def test_v1_sessions_never_see_a_chain() -> None:
    link = approve(generate_key(), generate_key())
    incoming = p.Incoming(call_id="c" * 10, caller="alice", caller_key=link.public_key,
                          caller_chain=[link])  # fmt: skip
    accepted = p.Accepted(call_id="c" * 10, callee_key=link.public_key, callee_chain=[link])
    for message in (incoming, accepted):
        assert b"chain" in p.encode(message)
        old = p.for_version(message, 1)
        assert old is not None and b"chain" not in p.encode(old)
        assert p.decode_server(p.encode(message)) == message
    # More links than an account may have devices: refused as a bad message.
    too_long = p.encode(p.Incoming(call_id="c" * 10, caller_chain=[link] * (p.MAX_CHAIN + 1)))
    try:
        p.decode_server(too_long)
    except p.ProtocolError as exc:
        assert exc.code == "bad-message"
    else:
        raise AssertionError("a chain longer than MAX_CHAIN was decoded")
