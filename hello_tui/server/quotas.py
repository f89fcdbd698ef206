"""Quotas per client network and per owner: what one network can make the server hold.

A *network* is one IPv4 address or one IPv6 /64 (what one subscriber usually
gets). The raw address is never kept: :meth:`Quotas.network` turns it into a
keyed hash (HMAC-SHA256 of the truncated network) and every counter is keyed
by that.

Where they count:

* **one instance** (MemoryStore), or a shared store without a shared secret:
  in this process's memory, under a key random per process and never written;
  with several instances a network then gets each quota once per instance it
  reaches (said once in the log);
* **several instances on Redis** with the operator's secret (``--secret-file``,
  the same on every instance): in Redis, under a key derived from that secret,
  so every instance computes the same hash and a quota spent on one is spent
  on all. Redis then holds, per network, only that hash and a count or the ids
  of its unanswered calls, expiring with the window or the calls.

Two shapes of quota:

* a **window** counts events in a window of ``window`` seconds (registrations,
  room creations, relay credentials): nothing gives them back, time does. In
  memory the window slides; in Redis it is one counter per key that starts
  with its first event and expires ``window`` seconds later (``INCR`` and its
  expiry in one script);
* a **live set** counts things that still exist (anonymous rooms, unanswered
  calls): an entry goes when its room or call ends. When a set is full its
  entries are re-checked against the store first, so an ending this instance
  did not see (expiry, another instance) frees its slot too. Unanswered calls
  are shared through Redis (each entry expires when the call would have timed
  out anyway); anonymous rooms stay per instance, since a shared entry would
  tie a network to a room for the room's whole life (a day).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hello_tui.server.errors import Refusal
from hello_tui.server.privacy import log
from hello_tui.signaling import redact

if TYPE_CHECKING:
    from hello_tui.server.settings import ServerSettings
    from hello_tui.server.store import Store

Alive = Callable[[str], Awaitable[bool]]
Forget = Callable[["asyncio.Future[Any]"], None]


def network_of(address: str | None) -> str:
    """``203.0.113.7`` → ``203.0.113.7/32``; ``2001:db8:1:2::5`` → ``2001:db8:1:2::/64``."""
    return redact.network_of(address, 32, 64)


class Window:
    """At most ``limit`` events per key in any ``window`` seconds (0: no limit).

    With a ``store`` (shared quotas) the count lives there under ``name:key``."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float],
        *,
        name: str = "",
        store: Store | None = None,
    ) -> None:
        self.limit = limit
        self.window = window
        self.name = name
        self.store = store
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    async def take(self, key: str) -> bool:
        """Count one event for ``key``; False (nothing counted) if over the limit."""
        if self.limit <= 0:
            return True
        if self.store is not None:
            return await self.store.window_take(f"{self.name}:{key}", self.limit, self.window)
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    async def give_back(self, key: str) -> None:
        """Undo the last :meth:`take` (the request failed for another reason)."""
        if self.limit <= 0:
            return
        if self.store is not None:
            await self.store.window_give_back(f"{self.name}:{key}")
            return
        events = self._events.get(key)
        if events:
            events.pop()
            if not events:
                del self._events[key]

    def prune(self) -> None:
        cutoff = self._clock() - self.window
        for key in [k for k, e in self._events.items() if not e or e[-1] <= cutoff]:
            del self._events[key]


class LiveSet:
    """At most ``limit`` live items per key (0: no limit); items leave when they end."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: dict[str, set[str]] = {}
        self._owner: dict[str, str] = {}  # item -> key

    def count(self, key: str) -> int:
        return len(self._items.get(key, ()))

    async def room_for_one(self, key: str, alive: Alive) -> bool:
        """True if ``key`` may add an item; when full, ended items are dropped first."""
        if self.limit <= 0 or self.count(key) < self.limit:
            return True
        for item in list(self._items.get(key, ())):
            if not await alive(item):
                self.discard(item)
        return self.count(key) < self.limit

    async def take(self, key: str, item: str, alive: Alive) -> bool:
        """Count ``item`` under ``key`` unless full (ended items dropped first)."""
        if not await self.room_for_one(key, alive):
            return False
        self.add(key, item)  # no await since the count: concurrent takes cannot overshoot
        return True

    def add(self, key: str, item: str) -> None:
        if self.limit > 0:
            self._items.setdefault(key, set()).add(item)
            self._owner[item] = key

    def discard(self, item: str) -> None:
        key = self._owner.pop(item, None)
        if key is None:
            return
        items = self._items[key]
        items.discard(item)
        if not items:
            del self._items[key]


class SharedLiveSet(LiveSet):
    """A live set in a shared store under ``name:key``; entries leave at ``lifetime``
    after they were added at the latest. Remembers which key each item it added
    went to, so an ending seen here takes the item out at once."""

    def __init__(
        self, limit: int, name: str, store: Store, lifetime: float, forget: Forget
    ) -> None:
        super().__init__(limit)
        self.name = name
        self.store = store
        self.lifetime = lifetime
        self._forget = forget

    async def take(self, key: str, item: str, alive: Alive) -> bool:
        if self.limit <= 0:
            return True
        shared = f"{self.name}:{key}"
        until = self.store.clock() + self.lifetime
        for _ in range(2):
            items = await self.store.live_take(shared, item, self.limit, until)
            if not items:
                self._owner[item] = key
                if len(self._owner) > _OWNERS_MAX:  # endings seen elsewhere: expiry drops them
                    del self._owner[next(iter(self._owner))]
                return True
            ended = [i for i in items if not await alive(i)]
            if not ended:
                return False
            await self.store.live_drop(shared, *ended)
        return False

    def discard(self, item: str) -> None:
        key = self._owner.pop(item, None)
        if key is not None:
            self._forget(self.store.live_drop_soon(f"{self.name}:{key}", item))


_said_per_instance = False
_OWNERS_MAX = 50_000  # items remembered per shared live set


class Quotas:
    """Every per-network and per-owner quota of one instance (memory, or a shared store)."""

    def __init__(
        self,
        settings: ServerSettings,
        clock: Callable[[], float] = time.monotonic,
        store: Store | None = None,
    ):
        global _said_per_instance
        s = settings
        self._tasks: set[asyncio.Future[Any]] = set()
        shared = store if store is not None and store.shared_quotas else None
        if shared is not None and not s.shared_secret:
            if not _said_per_instance:
                _said_per_instance = True
                log.warning("quotas count per instance: no shared secret configured")
            shared = None
        self.shared = shared is not None
        if shared is not None:  # every instance derives the same key: the same hashes
            self._key = hmac.new(s.secret, b"hello-tui quotas", hashlib.sha256).digest()
        else:  # per process: the hashes mean nothing elsewhere
            self._key = secrets.token_bytes(32)
        self.store = shared

        def window(limit: int, name: str) -> Window:
            return Window(limit, s.quota_window, clock, name=name, store=shared)

        self.make_window = window
        self.registrations = window(s.registrations_per_network, "register")
        self.room_creations = window(s.rooms_per_network, "rooms")
        self.anonymous_rooms = LiveSet(s.anonymous_rooms_per_network)
        self.pending_by_network: LiveSet
        self.pending_by_caller: LiveSet
        if shared is not None:
            # An unanswered call times out by then (and its entry with it).
            lifetime = s.supervisory_timeout + s.ring_timeout + s.timer_lease + 1.0
            self.pending_by_network = SharedLiveSet(
                s.pending_calls_per_network, "calls", shared, lifetime, self._spawn
            )
            self.pending_by_caller = SharedLiveSet(
                s.pending_calls_per_caller, "caller-calls", shared, lifetime, self._spawn
            )
        else:
            self.pending_by_network = LiveSet(s.pending_calls_per_network)
            self.pending_by_caller = LiveSet(s.pending_calls_per_caller)

    def network(self, address: str | None) -> str:
        """The key a client's network is counted under: a keyed hash, never the address."""
        digest = hmac.new(self._key, network_of(address).encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def prune(self) -> None:
        """Drop windows that have emptied (upkeep)."""
        self.registrations.prune()
        self.room_creations.prune()

    def _spawn(self, task: asyncio.Future[Any]) -> None:
        """Keep a store write running in the background (queued in call order at
        once) until it is done; a failure is logged."""
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("quota update failed: %s", type(task.exception()).__name__)

    # ---------------------------------------------------------------- calls
    async def take_pending_call(
        self, network: str, caller: str, call_id: str, alive: Alive
    ) -> None:
        """Count ``call_id`` as unanswered for its network and its caller, or refuse."""
        if not await self.pending_by_network.take(network, call_id, alive):
            raise Refusal("quota-exceeded", "too many unanswered calls from your network")
        if not await self.pending_by_caller.take(caller, call_id, alive):
            self.pending_by_network.discard(call_id)
            raise Refusal("quota-exceeded", "too many unanswered calls: wait for an answer")

    def call_settled(self, call_id: str) -> None:
        """The call was answered or ended: it no longer holds an offer or rings."""
        self.pending_by_network.discard(call_id)
        self.pending_by_caller.discard(call_id)


def refuse(what: str) -> Refusal:
    return Refusal("quota-exceeded", f"too many {what} from your network; try again later")
