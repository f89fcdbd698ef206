"""An account's devices: linking a new one, listing, revoking (protocol v2).

A new device sends ``device-link`` (its own key, the code's handle, a tag only
the code's secret can make, its sealed label). The server keeps that for
``LINK_TTL`` seconds inside the account record (so any instance behind a
shared store finds it) and tells the new device nothing about whether the
account exists. A device already signed in fetches it by handle, checks the
tag against the code its user typed, and signs the approval; the server adds
the key only with a valid signature by one of the account's current keys, and
keeps that signature beside it. Each pending link is used once; misses are
rate-limited per account, link requests per network (docs/security.md).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any

import msgspec

from hello_tui.server.accounts import device_keys, public_key, raw_b64url, verify
from hello_tui.server.errors import Refusal
from hello_tui.server.privacy import log, short
from hello_tui.server.quotas import Window
from hello_tui.server.records import AccountRecord, BoxKeyRecord, DeviceRecord, LinkRecord
from hello_tui.signaling.protocol import (
    LINK_TTL,
    Chain,
    DeviceApproval,
    DeviceApprove,
    DeviceBoxKey,
    DeviceInfo,
    DeviceLink,
    DeviceLinked,
    DeviceLinkGet,
    DeviceLinkRequest,
    DeviceList,
    DeviceRevoke,
    DeviceRevoked,
    Devices,
    Ok,
    box_key_payload,
    device_approval_payload,
    device_id,
)

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub
    from hello_tui.server.session import Session

MAX_PENDING = 4  # links waiting per account; a fifth pushes out the oldest
LINKS_PER_NETWORK = 10  # device-link requests per network and hour
MISSES_PER_ACCOUNT = 10  # unknown handles asked for per account and 10 minutes
MAX_DEVICES = 20


def _raw(key_b64: str) -> str:
    """A key in the protocol's one form (raw, base64url without padding)."""
    return base64.urlsafe_b64encode(public_key(key_b64).public_bytes_raw()).rstrip(b"=").decode()


def approval_chain(record: AccountRecord, key: str) -> Chain:
    """The approvals from ``key`` up to a key no approval of this record added
    (the first device, or a revoked approver): what a contact who pinned any key
    on the way needs to follow it. Each link is the stored signature, unchanged."""
    by_key = {d.public_key: d for d in record.devices if d.approver_key and d.tag}
    chain: Chain = []
    while (found := by_key.pop(key, None)) is not None:  # pop: no cycle runs twice
        chain.append(
            DeviceApproval(
                public_key=found.public_key,
                approver=found.approver_key,
                handle=found.handle,
                tag=found.tag,
                signature=found.signature,
                added=found.added,
            )
        )
        key = found.approver_key
    return chain


async def _no_chain() -> Chain:
    return []


async def _chain(record_soon: Awaitable[AccountRecord | None], key: str) -> Chain:
    record = await record_soon
    return [] if record is None else approval_chain(record, key)


def _with_box_key(row: DeviceInfo, record: AccountRecord) -> DeviceInfo:
    found = record.box_keys.get(row.id)
    if found is None:
        return row
    return msgspec.structs.replace(row, box_key=found.box_key, box_signature=found.signature)


def box_key_ids(record: AccountRecord) -> set[str]:
    """The devices of the account a room key may be sealed to (current ones)."""
    return {device_id(raw_b64url(k)) for k in device_keys(record)}


class DeviceService:
    """Handlers for device-link / -link-get / -approve / -list / -revoke."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        clock = hub.store.clock
        self.link_window = Window(LINKS_PER_NETWORK, 3600, clock)
        self.miss_window = Window(MISSES_PER_ACCOUNT, 600, clock)

    async def chain_of(self, session: Session) -> Chain:
        """The approval chain of the key ``session`` signed in with ([] for a first
        device or an anonymous session; ``for_version`` drops it for v1 receivers)."""
        return await self.chain_soon(session)

    def chain_soon(self, session: Session) -> Coroutine[Any, Any, Chain]:
        """:meth:`chain_of`, its read queued now (a store that queues reads when
        called, Redis, sends it with whatever else this turn queues)."""
        key, mine = session.account_key, session.public_key
        if key is None or mine is None:
            return _no_chain()
        return _chain(self.hub.store.get_account(key), mine)

    def prune(self) -> None:
        self.link_window.prune()
        self.miss_window.prune()

    async def _own(self, session: Session) -> tuple[str, AccountRecord]:
        """The session's account record, checking its key is still one of the account's."""
        key = session.account_key
        record = None if key is None else await self.hub.store.get_account(key)
        if key is None or record is None:
            raise Refusal("auth-required", "log in first")
        if session.public_key not in {raw_b64url(k) for k in device_keys(record)}:
            raise Refusal("auth-required", "this device was revoked")
        return key, record

    def _live_links(self, record: AccountRecord) -> list[LinkRecord]:
        now = self.hub.store.clock()
        return [link for link in record.links if link.until > now]

    # ---------------------------------------------------------------- the new device
    async def link(self, session: Session, msg: DeviceLink) -> None:
        new_key = _raw(msg.public_key)  # a malformed key is refused, account or not
        if not await self.link_window.take(session.network):
            raise Refusal("rate-limited", "too many device links from this network; try later")
        accounts = self.hub.accounts
        store = self.hub.store
        key = accounts.key(msg.name)
        record = None if accounts.reserved(msg.name) else await store.get_account(key)
        if record is not None:
            links = [link for link in self._live_links(record) if link.handle != msg.handle]
            links.append(
                LinkRecord(
                    handle=msg.handle,
                    public_key=new_key,
                    tag=msg.tag,
                    label=msg.label,
                    session=session.id,
                    until=store.clock() + LINK_TTL,
                )
            )
            record.links = links[-MAX_PENDING:]
            await store.put_account(key, record)
            log.info("device link pending session=%s", short(session.id))
        # The same answer for a name nobody has: linking tells nobody who exists.
        session.push(Ok(ref=msg.ref))

    # ---------------------------------------------------------------- a signed-in device
    async def link_get(self, session: Session, msg: DeviceLinkGet) -> None:
        key, record = await self._own(session)
        link = next((x for x in self._live_links(record) if x.handle == msg.handle), None)
        if link is None:
            if not await self.miss_window.take(key):
                raise Refusal("rate-limited", "too many unknown link codes; try later")
            raise Refusal("unknown-link", "no device is waiting with that code")
        session.push(
            DeviceLinkRequest(
                handle=link.handle,
                public_key=link.public_key,
                tag=link.tag,
                label=link.label,
                ref=msg.ref,
            )
        )

    async def approve(self, session: Session, msg: DeviceApprove) -> None:
        key, record = await self._own(session)
        assert session.name is not None and session.public_key is not None
        live = self._live_links(record)
        link = next(
            (x for x in live if x.handle == msg.handle and x.public_key == msg.public_key), None
        )
        if link is None:
            raise Refusal("unknown-link", "no device is waiting with that code")
        payload = device_approval_payload(session.name, link.public_key, link.handle, link.tag)
        if not verify(session.public_key, msg.signature, payload):
            raise Refusal("bad-signature", "the approval is not signed by this device's key")
        # Single use, whatever happens next.
        record.links = [x for x in live if x is not link]
        known = {raw_b64url(k) for k in device_keys(record)}
        if link.public_key not in known:
            if len(known) >= MAX_DEVICES:
                raise Refusal("quota-exceeded", f"an account has at most {MAX_DEVICES} devices")
            record.devices.append(
                DeviceRecord(
                    public_key=link.public_key,
                    added=int(self.hub.store.clock()),
                    approved_by=device_id(session.public_key),
                    signature=msg.signature,
                    approver_key=session.public_key,
                    handle=link.handle,
                    tag=link.tag,
                )
            )
        await self.hub.store.put_account(key, record)
        new_id = device_id(link.public_key)
        await self.hub.store.deliver(link.session, DeviceLinked(name=session.name, device=new_id))
        log.info("device linked session=%s", short(session.id))
        session.push(Ok(ref=msg.ref))

    async def list(self, session: Session, msg: DeviceList) -> None:
        _, record = await self._own(session)
        mine = session.public_key
        first = raw_b64url(record.public_key)
        rows = [DeviceInfo(id=device_id(first), public_key=first, added=record.created,
                           current=first == mine)]  # fmt: skip
        rows += [
            DeviceInfo(
                id=device_id(d.public_key),
                public_key=d.public_key,
                added=d.added,
                approved_by=d.approved_by,
                current=d.public_key == mine,
            )
            for d in record.devices
        ]
        rows = [_with_box_key(row, record) for row in rows]
        session.push(Devices(devices=rows, ref=msg.ref))

    async def box_key(self, session: Session, msg: DeviceBoxKey) -> None:
        """Keep the session's device's X25519 key, if its own Ed25519 key signed it."""
        key, record = await self._own(session)
        assert session.name is not None and session.public_key is not None
        payload = box_key_payload(session.name, session.public_key, msg.box_key)
        if not verify(session.public_key, msg.signature, payload):
            raise Refusal("bad-signature", "the box key is not signed by this device's key")
        current = box_key_ids(record)
        boxes = {d: b for d, b in record.box_keys.items() if d in current}  # revoked: gone
        boxes[device_id(session.public_key)] = BoxKeyRecord(
            box_key=msg.box_key, signature=msg.signature
        )
        record.box_keys = boxes
        await self.hub.store.put_account(key, record)
        session.push(Ok(ref=msg.ref))

    async def revoke(self, session: Session, msg: DeviceRevoke) -> None:
        key, record = await self._own(session)
        keys = device_keys(record)
        gone = next((k for k in keys if device_id(raw_b64url(k)) == msg.device), None)
        if gone is None:
            raise Refusal("not-allowed", "no such device on this account")
        if len(keys) == 1:
            raise Refusal("not-allowed", "that is the account's only device: delete the account")
        if gone == record.public_key:  # the first device goes: the next one takes its place
            record.public_key = record.devices.pop(0).public_key
        else:
            record.devices = [d for d in record.devices if d.public_key != gone]
        await self.hub.store.put_account(key, record)
        log.info("device revoked session=%s", short(session.id))
        session.push(Ok(ref=msg.ref))
        # Every session of the account hears it; the revoked key's are signed out
        # and closed by their own instance (``revoked_here``).
        for other in await self.hub.store.list_presence(key):
            await self.hub.store.deliver(other, DeviceRevoked(device=msg.device))

    async def revoked_here(self, session: Session, msg: DeviceRevoked) -> None:
        """On the instance holding ``session``: end it if it signed in with that key."""
        if session.public_key is None or device_id(session.public_key) != msg.device:
            return
        log.info("session %s of a revoked device closed", short(session.id))
        await session.set_account(None, None)
        session.close()
