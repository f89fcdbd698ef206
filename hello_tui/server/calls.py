"""Direct calls: Firefox Hello's state machine, its three timers, and forgetting.

States (the record's ``state``; "terminated" is the record being deleted)::

    init --ringing--> alerting --accept--> connecting --connected--> connected
      \\______________________/                \\_________________________/
        reject / cancel / timers                  hangup / media-fail / closed

Three timers: supervisory (init → setup-timeout), ringing (alerting →
timeout), connection (connecting → media-fail). Each state change writes the
guarding timer's ``deadline`` into the record. With a shared store
(``Store.shared_timers``, Redis) every instance polls the store's due-list
and one of them fires each timer, whichever instance armed it or died;
otherwise the instance arms ``loop.call_later``. A timer only ends the call
if it is still in the state the timer guards, so a late timer is harmless.
Every ending goes through :meth:`Calls.finish` (or :meth:`Calls.expire`),
which deletes the record (parties, held SDP, state) before telling anyone (P4).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from hello_tui.server.errors import Refusal
from hello_tui.server.ids import new_id
from hello_tui.server.privacy import log, short
from hello_tui.server.records import CallRecord, CallState
from hello_tui.signaling.protocol import (
    Accept,
    Accepted,
    Answer,
    Call,
    CallCreated,
    CallEnded,
    Connected,
    EndReason,
    Hangup,
    Incoming,
    Message,
    Offer,
    Reject,
    RenewAnswer,
    RenewOffer,
    Ringing,
    SasReveal,
)

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub
    from hello_tui.server.session import Session

RINGING: frozenset[CallState] = frozenset({"init", "alerting"})
# The ending of each timed state when its deadline passes.
TIMED_OUT: dict[CallState, EndReason] = {
    "init": "setup-timeout",
    "alerting": "timeout",
    "connecting": "media-fail",
}
replace = msgspec.structs.replace


def _require(record: CallRecord | None) -> CallRecord:
    if record is None:
        raise Refusal("unknown-call", "no such call")
    return record


MAX_RENEWALS = 20  # renew-offer rounds per call (each one a new peer connection)


def _claim(rec: CallRecord, session: Session) -> CallRecord:
    """``rec`` with ``session`` in place of the party whose device key it signed in
    with: that device reconnected (its old session may linger until its heartbeat
    fails). Anonymous parties have no key and cannot be taken over."""
    key = session.public_key
    if rec.is_party(session.id) or not key:
        return rec
    if key == rec.caller_key:
        return replace(rec, caller=session.id)
    if key == rec.callee_key and rec.callee is not None:
        return replace(rec, callee=session.id)
    return rec


async def _settle(*steps: Coroutine[Any, Any, Any]) -> list[Any]:
    """Await every step in order, then raise the first error if there was one
    (none is left pending, no error unretrieved); cancelled, close the rest."""
    out: list[Any] = []
    error: Exception | None = None
    for i, step in enumerate(steps):
        try:
            out.append(await step)
        except Exception as exc:
            error = error or exc
            out.append(None)
        except BaseException:
            for rest in steps[i + 1 :]:
                rest.close()
            raise
    if error is not None:
        raise error
    return out


def _endings(
    old: CallRecord, reason: EndReason, actor: str | None, ref: int | None
) -> list[tuple[str, CallEnded]]:
    """``call-ended`` for every party and ringing device of a deleted call
    (``actor``'s copy carries ``ref``, answering its request)."""
    targets = dict.fromkeys([old.caller, *([old.callee] if old.callee else []), *old.devices])
    return [
        (t, CallEnded(call_id=old.call_id, reason=reason, ref=ref if t == actor else None))
        for t in targets
    ]


class Calls:
    """Handlers for the call messages, plus the timers of this instance's calls."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._timers: dict[str, asyncio.TimerHandle] = {}

    @property
    def _setup_ttl(self) -> float:
        s = self.hub.settings
        return s.supervisory_timeout + s.ring_timeout + s.connection_timeout + 60.0

    # ---------------------------------------------------------------- timers
    def _arm(self, call_id: str, delay: float, reason: EndReason, states: set[CallState]) -> None:
        self._disarm(call_id)
        if self.hub.store.shared_timers:
            return  # the record's deadline is the timer: poll_timers fires it
        loop = asyncio.get_running_loop()
        self._timers[call_id] = loop.call_later(
            delay, lambda: self.hub.spawn(self.finish(call_id, reason, states=states))
        )

    def _disarm(self, call_id: str) -> None:
        handle = self._timers.pop(call_id, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for call_id in list(self._timers):
            self._disarm(call_id)

    async def poll_timers(self) -> None:
        """Fire the store's due timers (shared stores only), until cancelled.

        Every instance polls; the store hands each due call to one claimer, and
        :meth:`expire` re-checks the record atomically, so a timer ends its
        call exactly once whichever instances live or die."""
        settings, store = self.hub.settings, self.hub.store
        while True:
            await asyncio.sleep(settings.timer_poll)
            try:
                due = await store.claim_due_calls(store.clock(), settings.timer_lease)
            except Exception as exc:
                if not store.unavailable(exc):  # an outage is logged once, by the store
                    log.error("timer poll failed: %s", type(exc).__name__)
                continue
            for call_id in due:
                self.hub.spawn(self.expire(call_id))

    async def expire(self, call_id: str) -> CallRecord | None:
        """End ``call_id`` if its deadline has passed in the state it guards."""
        now = self.hub.store.clock()
        reason: list[EndReason] = []

        def due(rec: CallRecord | None) -> CallRecord | None:
            reason.clear()
            if rec is None or rec.deadline is None or rec.deadline > now:
                return rec  # written back as is: the due-list follows the record
            if rec.state not in TIMED_OUT:
                return replace(rec, deadline=None)
            reason.append(TIMED_OUT[rec.state])
            return None

        def tell(old: CallRecord | None, new: CallRecord | None) -> list[tuple[str, CallEnded]]:
            if old is None or new is not None or not reason:
                return []
            return _endings(old, reason[0], None, None)

        # Ended and told in one round trip on a shared store.
        old, new = await self.hub.store.update_call_then_deliver(call_id, due, tell)
        if old is None or new is not None or not reason:
            return None
        self._forget(old, reason[0])
        return old

    # ---------------------------------------------------------------- ending
    async def finish(
        self,
        call_id: str,
        reason: EndReason,
        *,
        states: Iterable[CallState] | None = None,
        actor: str | None = None,
        ref: int | None = None,
    ) -> CallRecord | None:
        """Delete the call (if still in one of ``states``) and tell every party
        (``actor``'s copy carries ``ref``, answering its request).

        Returns the deleted record, or None if someone else ended it first.
        """
        allowed = set(states) if states is not None else None

        def drop(rec: CallRecord | None) -> CallRecord | None:
            if rec is None or (allowed is not None and rec.state not in allowed):
                return rec
            if actor is not None and not rec.is_party(actor):  # (hangup chose on a guess)
                raise Refusal("not-allowed", "not a party of this call")
            return None

        def tell(old: CallRecord | None, new: CallRecord | None) -> list[tuple[str, CallEnded]]:
            if old is None or new is not None:
                return []
            return _endings(old, reason, actor, ref)

        # Deleted and told in one round trip on a shared store.
        old, new = await self.hub.store.update_call_then_deliver(call_id, drop, tell)
        if old is None or new is not None:
            return None
        self._forget(old, reason)
        return old

    def _forget(self, old: CallRecord, reason: EndReason) -> None:
        """The record is deleted: this instance's part of the call ends."""
        call_id = old.call_id
        self._disarm(call_id)
        self.hub.quotas.call_settled(call_id)
        self.hub.metrics.call_ended(reason)
        log.info("call %s ended reason=%s", short(call_id), reason)

    def ended_at_once(self, session: Session, call_id: str, reason: EndReason) -> None:
        """A call that could not even ring: nothing was stored."""
        self.hub.quotas.call_settled(call_id)
        self.hub.metrics.call_ended(reason)
        log.info("call %s ended reason=%s", short(call_id), reason)
        session.push(CallEnded(call_id=call_id, reason=reason))

    # ---------------------------------------------------------------- caller
    async def place(self, session: Session, msg: Call) -> None:
        hub = self.hub
        if session.account_key is None and not hub.accounts.reserved(msg.to):
            # No oracle for strangers: without an account one can call the echo
            # test and join rooms, not probe who exists or who is online.
            raise Refusal(
                "auth-required",
                "sign in to call someone: without an account, calls reach the echo test "
                "and rooms only",
            )
        limit = hub.settings.max_held_offer
        if limit and len(msg.offer) > limit // 4 and len(msg.offer.encode()) > limit:
            raise Refusal("too-big", f"call offer over {limit} bytes")
        call_id = new_id()
        # The call's reads are queued first, so a store that queues a read when it
        # is called (Redis) sends them in the quota's batch: they change nothing
        # if the quota refuses, and the call's critical path is one round trip
        # shorter (quota, reads, record: two round trips instead of three).
        reads = self._lookups(session, msg)
        try:
            # Counted from here (atomically), so concurrent calls cannot overshoot.
            await hub.quotas.take_pending_call(
                session.network, session.owner, call_id, self._ringing
            )
        except Exception:
            with contextlib.suppress(Exception):  # (none left pending, no error unretrieved)
                await _settle(*reads)
            raise
        except BaseException:
            for read in reads:
                read.close()
            raise
        try:
            await self._place(session, msg, call_id, reads)
        except BaseException:
            hub.quotas.call_settled(call_id)
            raise

    def _lookups(self, session: Session, msg: Call) -> tuple[Coroutine[Any, Any, Any], ...]:
        """The caller's approval chain (for the ``incoming``), the callee's account
        and devices: each read queued now, awaited by :meth:`_ring`."""
        hub = self.hub
        key = hub.accounts.key(msg.to)
        # No such account and nobody online look the same, and take the same
        # steps (both lookups always run): the answer is not an existence oracle.
        return (
            hub.devices.chain_soon(session),
            hub.store.get_account(key),
            hub.store.list_presence(key),
        )

    async def _place(
        self,
        session: Session,
        msg: Call,
        call_id: str,
        reads: tuple[Coroutine[Any, Any, Any], ...],
    ) -> None:
        self.hub.metrics.call_started()
        session.push(CallCreated(call_id=call_id, ref=msg.ref))
        try:
            await self._ring(session, msg, call_id, reads)
        except Exception as exc:
            # The store went away after the caller had its call id: end that call
            # for the caller now (it would wait for its own timer otherwise); the
            # request's error says why.
            if self.hub.store.unavailable(exc):
                self.ended_at_once(session, call_id, "unavailable")
            raise

    async def _ring(
        self,
        session: Session,
        msg: Call,
        call_id: str,
        reads: tuple[Coroutine[Any, Any, Any], ...],
    ) -> None:
        hub = self.hub
        # The three reads (_lookups) left together, in the quota's round trip.
        chain, account, present = await _settle(*reads)
        devices = [d for d in present if d != session.id]
        if account is None or not devices:
            return self.ended_at_once(session, call_id, "unavailable")
        record = CallRecord(
            call_id=call_id,
            state="init",
            caller=session.id,
            devices=devices,
            offer=msg.offer,
            video=msg.video,
            until=hub.store.clock() + self._setup_ttl,
            deadline=hub.store.clock() + hub.settings.supervisory_timeout,
            caller_key=session.public_key or "",
        )
        incoming = Incoming(
            call_id=call_id,
            caller=session.name or "",
            video=msg.video,
            caller_key=session.public_key or "",
            caller_chain=chain,
        )
        # Stored, then told: one round trip on a shared store (in that order).
        reached = await hub.store.put_call_then_deliver(record, [(d, incoming) for d in devices])
        self._arm(call_id, hub.settings.supervisory_timeout, "setup-timeout", {"init"})
        log.info("call %s created devices=%d", short(call_id), len(devices))
        missed = {d for d, ok in zip(devices, reached, strict=True) if not ok}
        if missed:  # stale device entries (e.g. a restarted instance): stop waiting for them
            await self._drop_devices(call_id, missed)

    async def _ringing(self, call_id: str) -> bool:
        """Still unanswered (the pending-call quotas re-check with this)."""
        record = await self.hub.store.get_call(call_id)
        return record is not None and record.state in RINGING

    async def _drop_devices(self, call_id: str, missed: set[str]) -> None:
        def prune(rec: CallRecord | None) -> CallRecord | None:
            if rec is None or rec.state not in RINGING:
                return rec
            return replace(rec, devices=[d for d in rec.devices if d not in missed])

        _, new = await self.hub.store.update_call(call_id, prune)
        if new is not None and new.state in RINGING and not new.devices:
            await self.finish(call_id, "unavailable", states=RINGING)

    # ---------------------------------------------------------------- callee devices
    async def ringing(self, session: Session, msg: Ringing) -> None:
        deadline = self.hub.store.clock() + self.hub.settings.ring_timeout

        def ring(rec: CallRecord | None) -> CallRecord:
            rec = _require(rec)
            if session.id not in rec.devices:
                raise Refusal("not-allowed", "not a ringing device of this call")
            if rec.state != "init":
                return rec
            return replace(rec, state="alerting", deadline=deadline)

        def tell(old: CallRecord | None, _new: CallRecord | None) -> list[tuple[str, Ringing]]:
            if old is None or old.state != "init":
                return []
            return [(old.caller, Ringing(call_id=msg.call_id))]

        # Written and told in one round trip on a shared store.
        old, _ = await self.hub.store.update_call_then_deliver(msg.call_id, ring, tell)
        assert old is not None
        if old.state == "init":
            self._arm(msg.call_id, self.hub.settings.ring_timeout, "timeout", {"alerting"})
        session.ok(msg.ref)

    async def accept(self, session: Session, msg: Accept) -> None:
        hub = self.hub
        deadline = hub.store.clock() + hub.settings.connection_timeout
        until = deadline + 60.0

        def take(rec: CallRecord | None) -> CallRecord:
            rec = _require(rec)
            if session.id not in rec.devices or rec.state not in RINGING:
                raise Refusal("not-allowed", "this device cannot accept this call now")
            # The held offer leaves the store as it leaves for the accepting device.
            return replace(
                rec,
                state="connecting",
                callee=session.id,
                devices=[],
                callee_key=session.public_key or "",
                offer=None,
                until=until,
                deadline=deadline,
            )

        accepted = Accepted(
            call_id=msg.call_id,
            callee_key=session.public_key or "",
            callee_chain=await hub.devices.chain_of(session),
        )
        elsewhere = CallEnded(call_id=msg.call_id, reason="answered-elsewhere")

        def tell(old: CallRecord | None, _new: CallRecord | None) -> list[tuple[str, Message]]:
            if old is None:
                return []
            others = [(d, elsewhere) for d in old.devices if d != session.id]
            return [(old.caller, accepted), *others]

        # Taken and told in one round trip on a shared store.
        old, _ = await hub.store.update_call_then_deliver(msg.call_id, take, tell)
        assert old is not None and old.offer is not None
        hub.quotas.call_settled(msg.call_id)
        self._arm(msg.call_id, hub.settings.connection_timeout, "media-fail", {"connecting"})
        session.push(Offer(call_id=msg.call_id, sdp=old.offer, ref=msg.ref))
        log.info("call %s accepted", short(msg.call_id))

    async def reject(self, session: Session, msg: Reject) -> None:
        """``rejected`` ends the call for every device (as Hello did); ``busy`` only
        withdraws this device, and the call ends ``busy`` when no device is left."""
        await self.withdraw(session.id, msg.call_id, msg.reason)
        session.ok(msg.ref)

    async def withdraw(self, session_id: str, call_id: str, reason: EndReason) -> None:
        def leave(rec: CallRecord | None) -> CallRecord | None:
            rec = _require(rec)
            if session_id not in rec.devices or rec.state not in RINGING:
                raise Refusal("not-allowed", "this device is not ringing for this call")
            # The withdrawing device hears no call-ended: it knows, and may never
            # have shown the call (an automatic busy).
            return replace(rec, devices=[d for d in rec.devices if d != session_id])

        _, new = await self.hub.store.update_call(call_id, leave)
        if new is not None and (reason == "rejected" or not new.devices):
            await self.finish(call_id, reason, states=RINGING)

    def busy_elsewhere(self, session: Session, call_id: str) -> None:
        """A device already in a call answers ``busy`` for itself, unseen by its user."""

        async def busy() -> None:
            with contextlib.suppress(Refusal):  # the call ended meanwhile
                await self.withdraw(session.id, call_id, "busy")

        self.hub.spawn(busy())

    # ---------------------------------------------------------------- both parties
    async def relay(self, session: Session, msg: Offer | Answer | SasReveal) -> None:
        """SDP (and the check code's reveal) goes to the other party only, not kept."""
        rec = _require(await self.hub.store.get_call(msg.call_id))
        if not rec.is_party(session.id):
            raise Refusal("not-allowed", "not a party of this call")
        other = rec.other(session.id)
        if other is None:
            raise Refusal("not-allowed", "the call has not been answered yet")
        await self.hub.store.deliver(other, replace(msg, ref=None))
        session.ok(msg.ref)

    async def connected(self, session: Session, msg: Connected) -> None:
        until = self.hub.store.clock() + self.hub.settings.call_ttl

        def mark(rec: CallRecord | None) -> CallRecord:
            rec = _claim(_require(rec), session)
            if not rec.is_party(session.id) or rec.callee is None:
                raise Refusal("not-allowed", "not a party of an answered call")
            return replace(rec, state="connected", until=until, deadline=None)

        await self.hub.store.update_call(msg.call_id, mark)
        session.party_calls.add(msg.call_id)  # a party taken back over (_claim), too
        self._disarm(msg.call_id)
        session.ok(msg.ref)

    async def renew(self, session: Session, msg: RenewOffer | RenewAnswer) -> None:
        """A new transport within a connected call (v2): relayed to the other party
        like ``offer``/``answer``. Offers are bounded: rounds never go back (the
        current one may be sent again) and stop at :data:`MAX_RENEWALS` per call.
        A party back on a new session with the same device key takes its place."""

        def check(rec: CallRecord | None) -> CallRecord:
            rec = _claim(_require(rec), session)
            if not rec.is_party(session.id):
                raise Refusal("not-allowed", "not a party of this call")
            if rec.callee is None or (rec.kind == "direct" and rec.state != "connected"):
                raise Refusal("not-allowed", "only a connected call renews its transport")
            if isinstance(msg, RenewAnswer):
                return rec
            if msg.round > MAX_RENEWALS:
                raise Refusal("rate-limited", "this call renewed its transport too often")
            if msg.round < rec.renew_round:
                raise Refusal("not-allowed", "an older renewal of this call")
            return replace(rec, renew_round=msg.round)

        _, rec = await self.hub.store.update_call(msg.call_id, check)
        assert rec is not None
        session.party_calls.add(msg.call_id)
        other = rec.other(session.id)
        assert other is not None
        await self.hub.store.deliver(other, replace(msg, ref=None))
        session.ok(msg.ref)

    async def hangup(self, session: Session, msg: Hangup) -> None:
        # A party hanging up its direct call: the record this instance last wrote
        # (at connected) decides, without a read; finish re-checks state and party
        # in its compare-and-set. Anything else is decided on what the store holds.
        store = self.hub.store
        rec = await store.known_call(msg.call_id)
        if rec is None or rec.kind != "direct" or not rec.is_party(session.id):
            rec = await store.get_call(msg.call_id)
        rec = _require(rec)
        if rec.kind == "room" and rec.room and rec.is_party(session.id):
            await self.hub.rooms.leave(session, rec.room, msg.reason, msg.ref)
            return
        if session.id in rec.devices and not rec.is_party(session.id):
            await self.withdraw(session.id, msg.call_id, "rejected")  # hang up while ringing
            session.ok(msg.ref)
            return
        if not rec.is_party(session.id):
            raise Refusal("not-allowed", "not a party of this call")
        # Before an answer the caller cancels; the state is re-checked atomically.
        actor: dict[str, Any] = {"actor": session.id, "ref": msg.ref}
        if rec.state in RINGING:
            done = await self.finish(msg.call_id, "cancel", states=RINGING, **actor)
            if done is not None:
                return
        if await self.finish(msg.call_id, msg.reason, **actor) is None:
            raise Refusal("unknown-call", "the call already ended")

    async def closed(self, session: Session, call_id: str) -> None:
        """A party's connection vanished: the other side hears ``closed``."""
        rec = await self.hub.store.get_call(call_id)
        if rec is not None and rec.kind == "direct" and rec.is_party(session.id):
            await self.finish(call_id, "closed")
