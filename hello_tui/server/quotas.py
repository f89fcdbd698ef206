"""Quotas per client network and per owner: what one network can make the server hold.

A *network* is one IPv4 address or one IPv6 /64 (what one subscriber usually
gets). The raw address is never kept: :meth:`Quotas.network` turns it into a
keyed hash (HMAC-SHA256 under a key random per process, never written), and
every counter here is keyed by that, in memory only. Counters are per
instance: with several instances behind Redis a network gets each quota once
per instance it reaches.

Two shapes of quota:

* a **window** counts events in the last ``window`` seconds (registrations,
  room creations): nothing gives them back, time does;
* a **live set** counts things that still exist (anonymous rooms, unanswered
  calls): an entry goes when its room or call ends. When a set is full its
  entries are re-checked against the store first, so an ending this instance
  did not see (expiry, another instance) frees its slot too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from hello_tui.server.errors import Refusal
from hello_tui.signaling import redact

if TYPE_CHECKING:
    from hello_tui.server.settings import ServerSettings

Alive = Callable[[str], Awaitable[bool]]


def network_of(address: str | None) -> str:
    """``203.0.113.7`` → ``203.0.113.7/32``; ``2001:db8:1:2::5`` → ``2001:db8:1:2::/64``."""
    return redact.network_of(address, 32, 64)


class Window:
    """At most ``limit`` events per key in any ``window`` seconds (0: no limit)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def take(self, key: str) -> bool:
        """Count one event for ``key``; False (nothing counted) if over the limit."""
        if self.limit <= 0:
            return True
        now = self._clock()
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def give_back(self, key: str) -> None:
        """Undo the last :meth:`take` (the request failed for another reason)."""
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


class Quotas:
    """Every per-network and per-owner quota of one instance (memory only)."""

    def __init__(self, settings: ServerSettings, clock: Callable[[], float] = time.monotonic):
        self._key = secrets.token_bytes(32)  # per process: the hashes mean nothing elsewhere
        s = settings
        self.registrations = Window(s.registrations_per_network, s.quota_window, clock)
        self.room_creations = Window(s.rooms_per_network, s.quota_window, clock)
        self.anonymous_rooms = LiveSet(s.anonymous_rooms_per_network)
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

    # ---------------------------------------------------------------- calls
    async def check_pending_call(self, network: str, caller: str, alive: Alive) -> None:
        if not await self.pending_by_network.room_for_one(network, alive):
            raise Refusal("quota-exceeded", "too many unanswered calls from your network")
        if not await self.pending_by_caller.room_for_one(caller, alive):
            raise Refusal("quota-exceeded", "too many unanswered calls: wait for an answer")

    def call_pending(self, network: str, caller: str, call_id: str) -> None:
        self.pending_by_network.add(network, call_id)
        self.pending_by_caller.add(caller, call_id)

    def call_settled(self, call_id: str) -> None:
        """The call was answered or ended: it no longer holds an offer or rings."""
        self.pending_by_network.discard(call_id)
        self.pending_by_caller.discard(call_id)


def refuse(what: str) -> Refusal:
    return Refusal("quota-exceeded", f"too many {what} from your network; try again later")
