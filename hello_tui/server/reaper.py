"""Instance loss: what a surviving instance does for the sessions of a dead one.

Every instance on a shared store beats (``Store.beat``) five times per
``instance_timeout``; one that has not beaten for a whole period is dead
(``kill -9``, a lost host). One survivor claims it (``claim_dead_instances``
hands each dead instance to one claimer) and does for each of its sessions
what that instance would have done when the connection closed
(``Session._forget``):

- a connecting or connected direct call with a dead party ends ``closed``:
  the other party hears it (its client goes on peer to peer, docs/calls.md),
  and the record is deleted instead of lingering for ``call_ttl``;
- a ringing call is left to its timers: it times out, or connects if a live
  device accepts (the dead client's new session is not one of its devices);
- a room loses the dead participants (the other hears ``peer-left``) and the
  dead visitors in its lobby;
- the sessions' routes and device entries go at once, not after their TTL.

Nothing of this costs anything per message: the dead instance's leftovers are
found by scanning the store once, when it dies.

An instance judges others only after a whole period of its own beats on
time: just started, or back from a Redis outage (when every beat stopped,
not one instance), it first gives the others a period to beat again, so an
outage does not make the instances reap each other. An instance that finds
it was reaped (stalled longer than the period: its sessions are forgotten
elsewhere, their routes gone) tells its clients to reconnect, so they sign in
again with sessions the store knows; a beat set that merely expired in a long
Redis outage leaves the routes, and changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from hello_tui.server.calls import RINGING
from hello_tui.server.privacy import log
from hello_tui.server.records import CallRecord

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub

BEATS = 5  # per instance_timeout


class Reaper:
    """Beats for this instance and forgets the sessions of dead ones."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._beaten = False
        self._last_beat: float | None = None  # when this instance last beat
        self._steady_since = 0.0  # beating on time since then
        self.reaped: list[tuple[str, int, float]] = []  # (instance, sessions, seconds)

    async def run(self) -> None:
        """Beat and look for dead instances, until cancelled."""
        settings, store = self.hub.settings, self.hub.store
        period = settings.instance_timeout
        while period > 0:  # 0: never declare an instance dead
            try:
                await self._beat(period)
            except Exception as exc:
                if not store.unavailable(exc):  # an outage is logged once, by the store
                    log.error("instance beat failed: %s", type(exc).__name__)
            await asyncio.sleep(period / BEATS)

    async def _beat(self, period: float) -> None:
        store = self.hub.store
        now = store.clock()
        # The beat set outlives the sessions' routes: a fleet restarted within
        # that time still finds (and reaps) the old instances' leftovers.
        keep = max(2 * period, self.hub.settings.presence_ttl)
        fresh = await store.beat(self.hub.instance, now, keep)
        late = self._last_beat is None or now - self._last_beat > 3 * period / BEATS
        if fresh and self._beaten and await self._reaped(late):
            log.warning("this instance was declared dead: its clients reconnect")
            await self.hub.shutdown()
        self._beaten = True
        self._last_beat = now
        if late:  # just started, or cut off from Redis (so were the others, maybe)
            self._steady_since = now
        if now - self._steady_since < period:
            return  # judge no one before they have had a whole period to beat again
        for instance in await store.claim_dead_instances(now - period):
            await self.reap({instance})

    async def _reaped(self, late: bool) -> bool:
        """This instance's beat had vanished: was it reaped? Beating on time, only a
        reaper removes it. After a gap (a stall, or a Redis outage long enough for
        the beat set to expire) the evidence is its sessions' routes: a reaper
        deleted them; an expired set left them."""
        if not late:
            return True
        ours = {s.id for s in self.hub.sessions.values() if s.state == "open"}
        if not ours:
            return False
        return ours.isdisjoint(await self.hub.store.sessions_of({self.hub.instance}))

    async def reap(self, instances: set[str]) -> int:
        """Forget every session of ``instances``; returns how many there were."""
        store = self.hub.store
        started = time.monotonic()
        gone = await store.sessions_of(instances)
        if gone:
            for record in await store.calls_with(gone):
                await self._call(record, gone)
            for room in await store.rooms_with(gone):
                await self.hub.rooms.forget_sessions(room.token, gone)
            await store.forget_sessions(gone)
        took = time.monotonic() - started
        self.reaped.append((",".join(sorted(instances)), len(gone), took))
        log.warning(
            "instance %s is dead: forgot its %d sessions in %.2f s",
            ",".join(sorted(i[:6] for i in instances)),
            len(gone),
            took,
        )
        return len(gone)

    async def _call(self, record: CallRecord, gone: set[str]) -> None:
        calls = self.hub.calls
        if record.kind != "direct" or record.state in RINGING:
            return  # a room's call goes with its room; a ringing call with its timer
        if record.caller in gone or record.callee in gone:
            await calls.finish(record.call_id, "closed", states={"connecting", "connected"})
