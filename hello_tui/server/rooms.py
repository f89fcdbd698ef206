"""Rooms: conversation URLs anyone holding the token can join, two at a time.

The room name is ciphertext (its key travels only in the URL fragment, which
browsers never send). Owner: a logged-in creator's account key, or for an
anonymous creator the creating session — such a room can be managed only
from that connection and otherwise simply expires. Every join pushes the
expiry ``ttl`` seconds further; an expired room answers ``room-expired`` for
``room_expired_grace`` seconds, then is gone. When the second participant
joins, a call record pairs them; it is deleted when either leaves.

A paired participant that joined with a seat secret (v2 ``room-join`` ``seat``)
and whose connection drops keeps its seat for ``room_seat_grace`` seconds: the
other is told nothing, and the same client, reconnected, takes the seat back
with the secret (``RoomService.reseat``): the pair's call record names its new
session, so the call goes on and can renew its transport (docs/calls.md).

Knock to enter (a room's ``knock``): a visitor other than the owner waits in
the room's lobby (``RoomRecord.lobby``: a knock id and its session, never its
name) until an owner's session admits or declines it, or its wait times out.
What the visitor brought (display name, offer, the timer) stays in its own
instance's memory (``Session.knocks``): announcing the knock to the owner and
entering once admitted both run there, reached through the store's delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgspec

from hello_tui.server.devices import box_key_ids
from hello_tui.server.errors import Refusal
from hello_tui.server.ids import new_id
from hello_tui.server.privacy import log, short
from hello_tui.server.quotas import refuse
from hello_tui.server.records import CallRecord, KnockRecord, RoomRecord
from hello_tui.signaling.protocol import (
    EndReason,
    KnockEnd,
    Offer,
    Ok,
    PeerJoined,
    PeerLeft,
    PeerName,
    RoomAdmit,
    RoomCreate,
    RoomCreated,
    RoomDecline,
    RoomDelete,
    RoomInfo,
    RoomJoin,
    RoomJoined,
    RoomKeyAdd,
    RoomKnock,
    RoomKnockEnded,
    RoomKnocking,
    RoomLeave,
    RoomList,
    RoomRename,
    Rooms,
    RoomWaiting,
    device_id,
)

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub
    from hello_tui.server.session import Session

replace = msgspec.structs.replace


@dataclass
class Knocking:
    """A knock this session made, in its instance's memory only (never stored)."""

    knock: str
    offer: str | None
    display_name: str
    timer: asyncio.TimerHandle | None = None
    seat: str = ""  # the hash of the seat secret it knocked with


def info(room: RoomRecord, device: str | None = None) -> RoomInfo:
    """The room as listed; with ``device`` (an owner's device id), its sealed key."""
    return RoomInfo(
        token=room.token,
        name=room.name,
        expires=room.expires,
        participants=len(room.participants),
        context=room.context,
        knock=room.knock,
        key_box=room.key_boxes.get(device) if device else None,
    )


def _device_of(session: Session) -> str | None:
    return None if session.public_key is None else device_id(session.public_key)


def _found(room: RoomRecord | None, token: str) -> RoomRecord:
    if room is None or not hmac.compare_digest(room.token, token):
        raise Refusal("unknown-room", "no such room")
    return room


def seat_hash(secret: str) -> str:
    """What the room keeps of a seat secret ("" for none)."""
    return hashlib.sha256(secret.encode()).hexdigest() if secret else ""


def _without(session_id: str, token: str) -> Callable[[RoomRecord | None], RoomRecord]:
    """The room without participant ``session_id`` (and without its pair's call)."""

    def out(room: RoomRecord | None) -> RoomRecord:
        room = _found(room, token)
        if session_id not in room.participants:
            raise Refusal("not-allowed", "not in this room")
        rest = [p for p in room.participants if p != session_id]
        seats = {k: v for k, v in room.seats.items() if k in rest}
        return replace(room, participants=rest, seats=seats, call_id=None)

    return out


class RoomService:
    """Handlers for the room messages."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # (room token, session id) → the timer ending a dropped participant's seat
        self._held: dict[tuple[str, str], asyncio.TimerHandle] = {}

    def cancel_all(self) -> None:
        for timer in self._held.values():
            timer.cancel()
        self._held.clear()

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
        if not await quotas.room_creations.take(session.network):
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
            knock=msg.knock,
        )
        await hub.store.put_room(room)
        if anonymous:
            quotas.anonymous_rooms.add(session.network, room.token)
        hub.metrics.rooms_created_total += 1
        log.info("room %s created session=%s", short(room.token), short(session.id))
        url = f"{session.base_url}/r/{room.token}"
        session.push(RoomCreated(room=info(room, _device_of(session)), url=url, ref=msg.ref))

    async def _exists(self, token: str) -> bool:
        return await self.hub.store.get_room(token) is not None

    async def list(self, session: Session, msg: RoomList) -> None:
        rooms = await self.hub.store.rooms_of(session.owner)
        mine = _device_of(session)
        session.push(Rooms(rooms=[info(r, mine) for r in rooms], ref=msg.ref))

    async def key_add(self, session: Session, msg: RoomKeyAdd) -> None:
        """The owner's device seals the room's key to more of the account's devices.
        Only current devices of the account keep boxes (so at most ``MAX_DEVICES``)."""
        owned = self._owned_by(session, msg.token)
        record = None
        if session.account_key is not None:
            record = await self.hub.store.get_account(session.account_key)
        ids = set() if record is None else box_key_ids(record)
        boxes = {b.device: b.box for b in msg.key_boxes if b.device in ids}

        def added(room: RoomRecord | None) -> RoomRecord:
            room = owned(room)
            kept = {d: b for d, b in room.key_boxes.items() if d in ids}
            return replace(room, key_boxes={**kept, **boxes})

        await self.hub.store.update_room(msg.token, added)
        session.push(Ok(ref=msg.ref))

    async def rename(self, session: Session, msg: RoomRename) -> None:
        owned = self._owned_by(session, msg.token)
        context, knock = msg.context, msg.knock

        def renamed(room: RoomRecord | None) -> RoomRecord:
            room = replace(owned(room), name=msg.name)
            room = room if context is None else replace(room, context=context)
            return room if knock is None else replace(room, knock=knock)

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
        await self._close_lobby(old)
        session.push(Ok(ref=msg.ref))

    async def delete_owned(self, owner: str) -> None:
        """Account deletion: every room it owns goes, its pairs are told."""
        for room in await self.hub.store.rooms_of(owner):
            old, _ = await self.hub.store.update_room(room.token, lambda r: None)
            self.hub.quotas.anonymous_rooms.discard(room.token)
            if old is not None:
                await self._end_pair(old, None, "closed")
                await self._close_lobby(old)

    async def join(self, session: Session, msg: RoomJoin) -> None:
        seat = seat_hash(msg.seat)
        await self._join(session, msg.token, msg.offer, msg.display_name, msg.ref, seat=seat)

    async def _join(
        self,
        session: Session,
        token: str,
        offer: str | None,
        display_name: str,
        ref: int | None,
        *,
        admitted: bool = False,
        seat: str = "",
    ) -> None:
        hub = self.hub
        now = hub.store.clock()
        call_id = new_id()
        knock_id = new_id()
        knocks = [False]  # set by enter() (which the store may run more than once)
        held: list[str] = []  # the seat taken back: its old session

        def enter(room: RoomRecord | None) -> RoomRecord:
            room = _found(room, token)
            knocks[0] = False
            held.clear()
            mine = [p for p in room.participants
                    if seat and hmac.compare_digest(room.seats.get(p, ""), seat)]  # fmt: skip
            if mine and mine[0] != session.id:  # the same client on a new session
                held.append(mine[0])
                moved = {mine[0]: session.id}
                return replace(
                    room,
                    participants=[moved.get(p, p) for p in room.participants],
                    seats={moved.get(k, k): v for k, v in room.seats.items()},
                )
            if now >= room.expires:
                raise Refusal("room-expired", "this room has expired")
            if session.id in room.participants:
                raise Refusal("not-allowed", "already in this room")
            if len(room.participants) >= 2:
                raise Refusal("room-full", "this room already has two participants")
            lobby = [k for k in room.lobby if k.until > now]
            if room.knock and not admitted and not hmac.compare_digest(room.owner, session.owner):
                knocks[0] = True
                return self._into_lobby(session, replace(room, lobby=lobby), knock_id, now)
            expires = int(now) + room.ttl
            seats = {k: v for k, v in room.seats.items() if k in room.participants}
            return replace(
                room,
                seats={**seats, session.id: seat} if seat else seats,
                participants=[*room.participants, session.id],
                expires=expires,
                until=expires + hub.settings.room_expired_grace,
                call_id=call_id if room.participants else None,
                lobby=lobby,
            )

        _, room = await hub.store.update_room(token, enter)
        assert room is not None
        if held:
            return await self.reseat(session, room, held[0], display_name, ref)
        if knocks[0]:
            return await self._knocked(session, room, knock_id, offer, display_name, ref, seat)
        if display_name:
            session.display_names[room.token] = display_name
        if hmac.compare_digest(room.owner, session.owner):
            # An owner's session arrived: whoever knocks is told, and tells it.
            for entry in room.lobby:
                knocking = RoomKnocking(token=room.token, knock=entry.knock, owner_present=True)
                await hub.store.deliver(entry.session, knocking)
        if room.call_id is None:
            session.push(RoomJoined(room=info(room), ref=ref))
            await self._tell_owner(room, display_name)
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
        session.push(RoomJoined(room=info(room), call_id=call_id, ref=ref))
        joined = PeerJoined(token=room.token, call_id=call_id, display_name=display_name)
        await hub.store.deliver(first, joined)
        if offer is not None:  # the later arrival offers; relayed, never stored
            await hub.store.deliver(first, Offer(call_id=call_id, sdp=offer))
        await self._tell_owner(room, display_name)

    # ---------------------------------------------------------------- knock to enter
    def _into_lobby(
        self, session: Session, room: RoomRecord, knock_id: str, now: float
    ) -> RoomRecord:
        if session.version < 2:
            raise Refusal(
                "not-allowed",
                "this room lets visitors in when its owner says so, "
                "which needs a newer client (protocol version 2)",
            )
        if room.token in session.knocks or any(k.session == session.id for k in room.lobby):
            raise Refusal("not-allowed", "already knocking at this room")
        if len(room.lobby) >= self.hub.settings.max_lobby:
            raise Refusal("room-full", "too many people are already knocking at this room")
        until = now + self.hub.settings.knock_timeout
        entry = KnockRecord(knock=knock_id, session=session.id, until=until)
        return replace(room, lobby=[*room.lobby, entry])

    async def _knocked(
        self,
        session: Session,
        room: RoomRecord,
        knock_id: str,
        offer: str | None,
        display_name: str,
        ref: int | None,
        seat: str = "",
    ) -> None:
        """``session`` waits in the lobby: the owner's sessions in the room hear the
        knock (``Session.push`` announces it), else the owner hears room-waiting."""
        token = room.token
        state = Knocking(knock=knock_id, offer=offer, display_name=display_name, seat=seat)
        session.knocks[token] = state
        hub = self.hub
        state.timer = asyncio.get_running_loop().call_later(
            hub.settings.knock_timeout,
            lambda: hub.spawn(self.knock_over(session, token, knock_id, "timeout")),
        )
        present = bool(await self._owner_sessions(room, in_room=True))
        log.info("room %s: a visitor knocks (owner present: %s)", short(token), present)
        session.push(RoomKnocking(token=token, knock=knock_id, owner_present=present, ref=ref))
        if not present:
            await self._tell_owner(room, display_name)

    async def announce_knock(self, session: Session, token: str) -> None:
        """On the visitor's instance: the owner's sessions in the room hear the knock,
        with the display name only this instance holds."""
        state = session.knocks.get(token)
        room = await self.hub.store.get_room(token)
        if state is None or room is None:
            return
        knock = RoomKnock(token=token, knock=state.knock, display_name=state.display_name)
        for owner in await self._owner_sessions(room, in_room=True):
            await self.hub.store.deliver(owner, knock)

    async def admit(self, session: Session, msg: RoomAdmit) -> None:
        await self._answer_knock(session, msg.token, msg.knock, "admitted", msg.ref)

    async def decline(self, session: Session, msg: RoomDecline) -> None:
        await self._answer_knock(session, msg.token, msg.knock, "declined", msg.ref)

    async def _answer_knock(
        self, session: Session, token: str, knock: str, verdict: KnockEnd, ref: int | None
    ) -> None:
        """The owner's verdict: off the lobby; the visitor's instance is told (and
        on ``admitted`` enters the room for it: ``enter_admitted``)."""
        owned = self._owned_by(session, token)
        now = self.hub.store.clock()

        def take(room: RoomRecord | None) -> RoomRecord:
            room = owned(room)
            if not any(k.knock == knock and k.until > now for k in room.lobby):
                raise Refusal("not-allowed", "nobody is knocking with that id any more")
            if verdict == "admitted" and len(room.participants) >= 2:
                raise Refusal("room-full", "this room already has two participants")
            return replace(room, lobby=[k for k in room.lobby if k.knock != knock])

        old, room = await self.hub.store.update_room(token, take)
        assert old is not None and room is not None
        visitor = next(k.session for k in old.lobby if k.knock == knock)
        log.info("room %s: knock %s", short(token), verdict)
        session.push(Ok(ref=ref))
        ended = RoomKnockEnded(token=token, knock=knock, reason=verdict)
        await self.hub.store.deliver(visitor, ended)
        await self._tell_owner_in_room(room, ended)

    async def enter_admitted(self, session: Session, token: str, state: Knocking) -> None:
        """On the visitor's instance, once admitted: join as anyone would have."""
        try:
            await self._join(session, token, state.offer, state.display_name, None,
                             admitted=True, seat=state.seat)  # fmt: skip
        except Refusal:  # deleted, expired or filled meanwhile
            session.push(RoomKnockEnded(token=token, knock=state.knock, reason="closed"))

    async def knock_over(self, session: Session, token: str, knock: str, reason: KnockEnd) -> None:
        """The visitor's side ends its knock (``timeout``, or ``left``: it gave up or
        its connection closed): off the lobby, and the owner's sessions in the room told."""
        state = session.knocks.get(token)
        if state is None or state.knock != knock:
            return
        del session.knocks[token]
        if state.timer is not None:
            state.timer.cancel()

        def out(room: RoomRecord | None) -> RoomRecord:
            room = _found(room, token)
            return replace(room, lobby=[k for k in room.lobby if k.knock != knock])

        ended = RoomKnockEnded(token=token, knock=knock, reason=reason)
        if reason == "timeout":
            session.push(ended)
        with contextlib.suppress(Refusal):
            _, room = await self.hub.store.update_room(token, out)
            if room is not None:
                await self._tell_owner_in_room(room, ended)

    async def _close_lobby(self, room: RoomRecord) -> None:
        """The room is gone: everyone knocking hears ``closed``."""
        for entry in room.lobby:
            ended = RoomKnockEnded(token=room.token, knock=entry.knock, reason="closed")
            await self.hub.store.deliver(entry.session, ended)

    async def _owner_sessions(self, room: RoomRecord, *, in_room: bool = False) -> Sequence[str]:
        """The owner's sessions: each device of the owning account, or the anonymous
        creating session; with ``in_room``, only those in the room."""
        kind, _, who = room.owner.partition(":")
        devices = await self.hub.store.list_presence(who) if kind == "a" else [who]
        return [d for d in devices if d in room.participants] if in_room else devices

    async def _tell_owner_in_room(self, room: RoomRecord, message: RoomKnockEnded) -> None:
        for owner in await self._owner_sessions(room, in_room=True):
            await self.hub.store.deliver(owner, message)

    async def _tell_owner(self, room: RoomRecord, display_name: str) -> None:
        """Someone is in the room and none of the owner's sessions is: each of them
        hears ``room-waiting`` (through the store's delivery, so on any instance).
        The visitor's display name is all it says of the visitor; it is not logged."""
        devices = await self._owner_sessions(room)
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
        knocking = session.knocks.get(msg.token)
        if knocking is not None and msg.token not in session.rooms:  # gives up knocking
            await self.knock_over(session, msg.token, knocking.knock, "left")
            session.push(Ok(ref=msg.ref))
            return
        await self.leave(session, msg.token, msg.reason, msg.ref)

    async def leave(
        self, session: Session, token: str, reason: EndReason, ref: int | None = None
    ) -> None:
        """``session`` leaves the room; the pair's call record is deleted."""
        session.rooms.discard(token)
        session.display_names.pop(token, None)
        old, _ = await self.hub.store.update_room(token, _without(session.id, token))
        assert old is not None
        if old.call_id is not None:
            session.party_calls.discard(old.call_id)
        await self._end_pair(old, session.id, reason)
        if ref is not None or reason == "hangup":
            session.push(Ok(ref=ref))

    # ---------------------------------------------------------------- seats kept
    async def away(self, session: Session, token: str) -> None:
        """``session``'s connection dropped: a paired participant that joined with a
        seat secret keeps its seat for ``room_seat_grace`` (nobody is told: the
        media path is the peers' own); anyone else leaves, ``closed``."""
        grace = self.hub.settings.room_seat_grace
        room = await self.hub.store.get_room(token)
        kept = room is not None and room.call_id is not None and session.id in room.seats
        if not kept or grace <= 0:
            await self.leave(session, token, "closed")
            return
        session.rooms.discard(token)
        key = (token, session.id)
        self._held[key] = asyncio.get_running_loop().call_later(
            grace, lambda: self.hub.spawn(self._seat_lapsed(*key))
        )
        log.info("room %s: a participant's connection dropped; seat kept %g s",
                 short(token), grace)  # fmt: skip

    async def _seat_lapsed(self, token: str, session_id: str) -> None:
        """Nobody took the seat back in time: it leaves as a dropped connection does."""
        self._held.pop((token, session_id), None)
        with contextlib.suppress(Refusal):  # taken back, left, or the room is gone
            old, _ = await self.hub.store.update_room(token, _without(session_id, token))
            assert old is not None
            await self._end_pair(old, session_id, "closed")

    async def reseat(
        self, session: Session, room: RoomRecord, old: str, display_name: str, ref: int | None
    ) -> None:
        """``session`` took back the seat of ``old`` (the same client, reconnected):
        the pair's call names it now; no one else hears of it."""
        held = self._held.pop((room.token, old), None)
        if held is not None:
            held.cancel()
        if room.call_id is not None:

            def moved(rec: CallRecord | None) -> CallRecord | None:
                if rec is None:
                    return None
                caller = session.id if rec.caller == old else rec.caller
                callee = session.id if rec.callee == old else rec.callee
                return replace(rec, caller=caller, callee=callee)

            await self.hub.store.update_call(room.call_id, moved)
        if display_name:
            session.display_names[room.token] = display_name
        log.info("room %s: a participant took its seat back", short(room.token))
        session.push(RoomJoined(room=info(room), call_id=room.call_id, ref=ref))

    async def forget_sessions(self, token: str, gone: set[str]) -> None:
        """Sessions of a dead instance (server/reaper.py) leave the room and its
        lobby; if one was in the pair's call, the other hears ``peer-left``."""
        paired: list[bool] = []

        def out(room: RoomRecord | None) -> RoomRecord | None:
            paired.clear()
            if room is None:
                return None
            broken = room.call_id is not None and not gone.isdisjoint(room.participants)
            paired.append(broken)
            return replace(
                room,
                participants=[p for p in room.participants if p not in gone],
                lobby=[k for k in room.lobby if k.session not in gone],
                call_id=None if broken else room.call_id,
            )

        old, _ = await self.hub.store.update_room(token, out)
        if old is not None and paired and paired[0]:
            await self._end_pair(old, None, "closed")

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
