"""Rooms: conversation URLs anyone holding the token can join, two at a time.

The room name is ciphertext (its key travels only in the URL fragment, which
browsers never send). Owner: a logged-in creator's account key, or for an
anonymous creator the creating session — such a room can be managed only
from that connection and otherwise simply expires. Every join pushes the
expiry ``ttl`` seconds further; an expired room answers ``room-expired`` for
``room_expired_grace`` seconds, then is gone. When the second participant
joins, a call record pairs them; it is deleted when either leaves.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from hello_tui.server.errors import Refusal
from hello_tui.server.ids import new_id
from hello_tui.server.privacy import log, short
from hello_tui.server.quotas import refuse
from hello_tui.server.records import CallRecord, RoomRecord
from hello_tui.signaling.protocol import (
    EndReason,
    Offer,
    Ok,
    PeerJoined,
    PeerLeft,
    PeerName,
    RoomCreate,
    RoomCreated,
    RoomDelete,
    RoomInfo,
    RoomJoin,
    RoomJoined,
    RoomLeave,
    RoomList,
    RoomRename,
    Rooms,
    RoomWaiting,
)

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub
    from hello_tui.server.session import Session

replace = msgspec.structs.replace


def info(room: RoomRecord) -> RoomInfo:
    return RoomInfo(
        token=room.token,
        name=room.name,
        expires=room.expires,
        participants=len(room.participants),
        context=room.context,
    )


def _found(room: RoomRecord | None, token: str) -> RoomRecord:
    if room is None or not hmac.compare_digest(room.token, token):
        raise Refusal("unknown-room", "no such room")
    return room


class RoomService:
    """Handlers for the room messages."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def _owned_by(self, session: Session, token: str) -> Callable[[RoomRecord | None], RoomRecord]:
        owner = session.owner

        def check(room: RoomRecord | None) -> RoomRecord:
            room = _found(room, token)
            if not hmac.compare_digest(room.owner, owner):
                raise Refusal("not-allowed", "only the room's owner can do that")
            return room

        return check

    async def create(self, session: Session, msg: RoomCreate) -> None:
        hub = self.hub
        settings = hub.settings
        quotas = hub.quotas
        anonymous = session.account_key is None
        if anonymous and settings.registration == "invite-only":
            raise Refusal("auth-required", "this server makes rooms for its accounts: log in")
        if len(await hub.store.rooms_of(session.owner)) >= settings.max_rooms_per_owner:
            raise Refusal("quota-exceeded", f"at most {settings.max_rooms_per_owner} rooms")
        if anonymous and not await quotas.anonymous_rooms.room_for_one(
            session.network, self._exists
        ):
            raise refuse("rooms without an account")
        if not quotas.room_creations.take(session.network):
            raise refuse("new rooms")
        ttl = min(msg.ttl or settings.room_ttl, settings.room_max_ttl)
        if anonymous:
            ttl = min(ttl, settings.anonymous_room_ttl)
        now = int(hub.store.clock())
        room = RoomRecord(
            token=new_id(),
            name=msg.name,
            owner=session.owner,
            created=now,
            expires=now + ttl,
            ttl=ttl,
            until=now + ttl + settings.room_expired_grace,
            context=msg.context,
        )
        await hub.store.put_room(room)
        if anonymous:
            quotas.anonymous_rooms.add(session.network, room.token)
        hub.metrics.rooms_created_total += 1
        log.info("room %s created session=%s", short(room.token), short(session.id))
        url = f"{session.base_url}/r/{room.token}"
        session.push(RoomCreated(room=info(room), url=url, ref=msg.ref))

    async def _exists(self, token: str) -> bool:
        return await self.hub.store.get_room(token) is not None

    async def list(self, session: Session, msg: RoomList) -> None:
        rooms = await self.hub.store.rooms_of(session.owner)
        session.push(Rooms(rooms=[info(r) for r in rooms], ref=msg.ref))

    async def rename(self, session: Session, msg: RoomRename) -> None:
        owned = self._owned_by(session, msg.token)
        context = msg.context

        def renamed(room: RoomRecord | None) -> RoomRecord:
            room = replace(owned(room), name=msg.name)
            return room if context is None else replace(room, context=context)

        await self.hub.store.update_room(msg.token, renamed)
        session.push(Ok(ref=msg.ref))

    async def delete(self, session: Session, msg: RoomDelete) -> None:
        owned = self._owned_by(session, msg.token)

        def drop(room: RoomRecord | None) -> None:
            owned(room)

        old, _ = await self.hub.store.update_room(msg.token, drop)
        assert old is not None
        self.hub.quotas.anonymous_rooms.discard(old.token)
        await self._end_pair(old, None, "closed")
        session.push(Ok(ref=msg.ref))

    async def delete_owned(self, owner: str) -> None:
        """Account deletion: every room it owns goes, its pairs are told."""
        for room in await self.hub.store.rooms_of(owner):
            old, _ = await self.hub.store.update_room(room.token, lambda r: None)
            self.hub.quotas.anonymous_rooms.discard(room.token)
            if old is not None:
                await self._end_pair(old, None, "closed")

    async def join(self, session: Session, msg: RoomJoin) -> None:
        hub = self.hub
        now = hub.store.clock()
        call_id = new_id()

        def enter(room: RoomRecord | None) -> RoomRecord:
            room = _found(room, msg.token)
            if now >= room.expires:
                raise Refusal("room-expired", "this room has expired")
            if session.id in room.participants:
                raise Refusal("not-allowed", "already in this room")
            if len(room.participants) >= 2:
                raise Refusal("room-full", "this room already has two participants")
            expires = int(now) + room.ttl
            return replace(
                room,
                participants=[*room.participants, session.id],
                expires=expires,
                until=expires + hub.settings.room_expired_grace,
                call_id=call_id if room.participants else None,
            )

        _, room = await hub.store.update_room(msg.token, enter)
        assert room is not None
        if msg.display_name:
            session.display_names[room.token] = msg.display_name
        if room.call_id is None:
            session.push(RoomJoined(room=info(room), ref=msg.ref))
            await self._tell_owner(room, msg.display_name)
            return
        first = room.participants[0]
        await hub.store.put_call(
            CallRecord(
                call_id=call_id,
                kind="room",
                room=room.token,
                state="connecting",
                caller=first,
                callee=session.id,
                until=room.until,
            )
        )
        hub.metrics.call_started()
        log.info("room %s paired call %s", short(room.token), short(call_id))
        session.push(RoomJoined(room=info(room), call_id=call_id, ref=msg.ref))
        joined = PeerJoined(token=room.token, call_id=call_id, display_name=msg.display_name)
        await hub.store.deliver(first, joined)
        if msg.offer is not None:  # the later arrival offers; relayed, never stored
            await hub.store.deliver(first, Offer(call_id=call_id, sdp=msg.offer))
        await self._tell_owner(room, msg.display_name)

    async def _tell_owner(self, room: RoomRecord, display_name: str) -> None:
        """Someone is in the room and none of the owner's sessions is: each of them
        hears ``room-waiting`` (through the store's delivery, so on any instance).
        The visitor's display name is all it says of the visitor; it is not logged."""
        kind, _, who = room.owner.partition(":")
        devices = await self.hub.store.list_presence(who) if kind == "a" else [who]
        if not devices or any(d in room.participants for d in devices):
            return
        waiting = RoomWaiting(token=room.token, name=room.name, display_name=display_name)
        told = 0
        for device in devices:
            told += await self.hub.store.deliver(device, waiting)
        log.info("room %s waiting: %d owner session(s) told", short(room.token), told)

    async def tell_name(self, session: Session, token: str, call_id: str) -> None:
        """``session`` (already in the room) learnt of a joiner: the joiner hears the
        display name ``session`` gave, from this instance (names are never stored)."""
        name = session.display_names.get(token)
        record = await self.hub.store.get_call(call_id)
        if not name or record is None:
            return
        joiner = record.other(session.id)
        if joiner is not None:
            await self.hub.store.deliver(
                joiner, PeerName(token=token, call_id=call_id, display_name=name)
            )

    async def leave_request(self, session: Session, msg: RoomLeave) -> None:
        await self.leave(session, msg.token, "hangup", msg.ref)

    async def leave(
        self, session: Session, token: str, reason: EndReason, ref: int | None = None
    ) -> None:
        """``session`` leaves the room; the pair's call record is deleted."""

        def out(room: RoomRecord | None) -> RoomRecord:
            room = _found(room, token)
            if session.id not in room.participants:
                raise Refusal("not-allowed", "not in this room")
            rest = [p for p in room.participants if p != session.id]
            return replace(room, participants=rest, call_id=None)

        session.rooms.discard(token)
        session.display_names.pop(token, None)
        old, _ = await self.hub.store.update_room(token, out)
        assert old is not None
        if old.call_id is not None:
            session.party_calls.discard(old.call_id)
        await self._end_pair(old, session.id, reason)
        if ref is not None or reason == "hangup":
            session.push(Ok(ref=ref))

    async def _end_pair(self, room: RoomRecord, leaver: str | None, reason: EndReason) -> None:
        """Delete the pair's call; everyone but ``leaver`` hears ``peer-left``."""
        if room.call_id is None:
            return
        old, _ = await self.hub.store.update_call(room.call_id, lambda r: None)
        if old is not None:
            self.hub.metrics.call_ended(reason)
            log.info("room %s call ended reason=%s", short(room.token), reason)
        left = PeerLeft(token=room.token, call_id=room.call_id, reason=reason)
        for participant in room.participants:
            if participant != leaver:
                await self.hub.store.deliver(participant, left)
