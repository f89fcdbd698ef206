"""The storage seam: everything the server remembers goes through :class:`Store`.

Methods are async so a Redis backend can implement the same interface.
Read-modify-write goes through ``update_*(key, fn)``: ``fn`` gets the current
record (or None) and returns the new one (None deletes it) or raises to
abort; the backend applies it atomically (a Redis backend: WATCH/MULTI with
retry, so ``fn`` must be pure). Every record expires at its ``until``.

Delivery is part of the seam because with several instances the recipient's
socket may live elsewhere: ``register_session`` says which instance holds a
session, ``deliver`` routes a message to it (pub/sub on Redis, a direct call
in memory), and each instance ``subscribe``\\s once with its handler.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from hello_tui.server.records import AccountRecord, CallRecord, RoomRecord
from hello_tui.signaling.protocol import Message

R = TypeVar("R")
Updater = Callable[[R | None], R | None]
DeliveryHandler = Callable[[str, Message], None]
# Offered a delivery's frame (JSON as the sending instance encoded it) before it
# is decoded; True: taken as is (sent to the session), False: decode and hand
# it to the DeliveryHandler.
FrameHandler = Callable[[str, bytes], bool]
# What to tell whom once a call update is written: (session id, message) pairs
# from the (old, new) records; pure, like an Updater (it may run again on a retry).
Tell = Callable[[CallRecord | None, CallRecord | None], Iterable[tuple[str, Message]]]


class Store(ABC):
    """Abstract server state. ``clock`` returns Unix seconds (tests move it)."""

    clock: Callable[[], float]
    # True where call timers live in the store (every instance polls
    # :meth:`claim_due_calls`); False: the instance that armed a timer fires it.
    shared_timers: bool = False

    # True where quotas can be counted in the store, the same for every instance
    # (server/quotas.py); False: each instance counts in its own memory.
    shared_quotas: bool = False

    # ---------------------------------------------------------------- quotas
    async def window_take(self, key: str, limit: int, window: float) -> bool:
        """Count one event under ``key`` unless ``limit`` are already counted in its
        window (which starts at the first event and lasts ``window`` seconds, then
        the key is gone); False, nothing counted, when full. Shared stores only."""
        raise NotImplementedError

    async def window_give_back(self, key: str) -> None:
        """Uncount one event of ``key``'s window (the request failed otherwise)."""
        raise NotImplementedError

    async def live_take(self, key: str, item: str, limit: int, until: float) -> list[str]:
        """Add ``item`` to the live set ``key`` (it leaves at ``until`` at the latest)
        unless the set holds ``limit`` live items: then nothing is added and the
        items are returned, for the caller to re-check. ``[]``: added."""
        raise NotImplementedError

    async def live_drop(self, key: str, *items: str) -> None:
        """Take ``items`` out of the live set ``key`` (they ended)."""
        raise NotImplementedError

    def live_drop_soon(self, key: str, *items: str) -> asyncio.Future[Any]:
        """:meth:`live_drop`, started now (queued in call order), not awaited."""
        return asyncio.ensure_future(self.live_drop(key, *items))

    # ---------------------------------------------------------------- invites
    async def consume_invite(self, digest: str) -> bool:
        """Take the invite with this SHA-256 digest from a shared store: True once.
        Stores of one process keep none (their invites are a file:
        ``server/invites.py``)."""
        return False

    # ---------------------------------------------------------------- accounts
    @abstractmethod
    async def get_account(self, key: str) -> AccountRecord | None: ...

    @abstractmethod
    async def create_account(self, key: str, record: AccountRecord) -> bool:
        """Store ``record`` unless ``key`` is taken (then return False)."""

    @abstractmethod
    async def put_account(self, key: str, record: AccountRecord) -> None: ...

    @abstractmethod
    async def delete_account(self, key: str) -> bool: ...

    # ---------------------------------------------------------------- presence
    @abstractmethod
    async def add_presence(self, key: str, session_id: str, until: float) -> None:
        """Record that ``session_id`` is a connected device of account ``key``."""

    @abstractmethod
    async def touch_presence(self, key: str, session_id: str, until: float) -> bool:
        """Extend an existing device entry; False (and nothing stored) if gone."""

    @abstractmethod
    async def remove_presence(self, key: str, session_id: str) -> None: ...

    @abstractmethod
    async def clear_presence(self, key: str) -> None: ...

    @abstractmethod
    async def list_presence(self, key: str) -> list[str]: ...

    # ---------------------------------------------------------------- calls
    @abstractmethod
    async def put_call(self, record: CallRecord) -> None: ...

    @abstractmethod
    async def get_call(self, call_id: str) -> CallRecord | None: ...

    async def known_call(self, call_id: str) -> CallRecord | None:
        """The call record as this instance last wrote or read it, if it kept one
        (no round trip), else :meth:`get_call`. It may be stale: only for
        decisions that an :meth:`update_call` re-checks."""
        return await self.get_call(call_id)

    @abstractmethod
    async def update_call(
        self, call_id: str, fn: Updater[CallRecord]
    ) -> tuple[CallRecord | None, CallRecord | None]:
        """Atomically replace the record with ``fn(record)``; returns (old, new)."""

    async def update_call_then_deliver(
        self, call_id: str, fn: Updater[CallRecord], tell: Tell
    ) -> tuple[CallRecord | None, CallRecord | None]:
        """:meth:`update_call`, then :meth:`deliver_many` of ``tell(old, new)``; a
        shared store runs both as one script (one round trip): the messages leave
        only if the update was written, right after it."""
        old, new = await self.update_call(call_id, fn)
        await self.deliver_many(tell(old, new))
        return old, new

    async def claim_due_calls(self, now: float, lease: float, limit: int = 200) -> list[str]:
        """Call ids whose ``deadline`` is due, each handed to one claimer only.

        A claimed entry comes due again ``lease`` seconds later unless the call is
        written meanwhile (ended, or re-armed), so a claimer that dies mid-way
        loses nothing. Only stores with ``shared_timers`` keep such a list."""
        return []

    # ---------------------------------------------------------------- rooms
    @abstractmethod
    async def put_room(self, record: RoomRecord) -> None: ...

    @abstractmethod
    async def get_room(self, token: str) -> RoomRecord | None: ...

    @abstractmethod
    async def update_room(
        self, token: str, fn: Updater[RoomRecord]
    ) -> tuple[RoomRecord | None, RoomRecord | None]: ...

    @abstractmethod
    async def rooms_of(self, owner: str) -> list[RoomRecord]: ...

    # ---------------------------------------------------------------- delivery
    @abstractmethod
    async def register_session(self, session_id: str, instance: str, until: float) -> None: ...

    @abstractmethod
    async def unregister_session(self, session_id: str) -> None: ...

    @abstractmethod
    async def deliver(self, session_id: str, message: Message) -> bool:
        """Hand ``message`` to the instance holding ``session_id``; False if none does."""

    async def put_call_then_deliver(
        self, record: CallRecord, messages: Iterable[tuple[str, Message]]
    ) -> list[bool]:
        """:meth:`put_call`, then :meth:`deliver_many` (a shared store sends both
        in one round trip, in that order)."""
        await self.put_call(record)
        return await self.deliver_many(messages)

    async def deliver_many(self, messages: Iterable[tuple[str, Message]]) -> list[bool]:
        """:meth:`deliver` each (session id, message), in order; a shared store
        sends them together (one round trip)."""
        return [await self.deliver(session_id, message) for session_id, message in messages]

    @abstractmethod
    def subscribe(self, instance: str, handler: DeliveryHandler) -> None:
        """Receive every message delivered to sessions registered by ``instance``."""

    @abstractmethod
    def unsubscribe(self, instance: str) -> None: ...

    def take_frames(self, instance: str, handler: FrameHandler) -> None:  # noqa: B027
        """Offer ``handler`` the frames that reach ``instance`` from other processes
        before decoding them (a store delivering in-process has none)."""

    # ---------------------------------------------------------------- instances
    # Several instances on one shared store: each beats; one that stops beating
    # is dead, and a survivor forgets its sessions (server/reaper.py). A store
    # of one process has no other instance: these do nothing there.
    async def beat(self, instance: str, now: float, ttl: float) -> bool:
        """Say ``instance`` is alive at ``now``; True if the store had no beat of
        it (its first, or it was declared dead meanwhile)."""
        return False

    async def claim_dead_instances(self, before: float) -> list[str]:
        """Instances whose last beat is older than ``before``, each handed to one
        claimer only (removed from the beating set as it is claimed)."""
        return []

    async def sessions_of(self, instances: set[str]) -> set[str]:
        """Ids of the sessions registered by these instances."""
        return set()

    async def calls_with(self, sessions: set[str]) -> list[CallRecord]:
        """Call records naming one of ``sessions`` (caller, callee or ringing device)."""
        return []

    async def rooms_with(self, sessions: set[str]) -> list[RoomRecord]:
        """Room records with one of ``sessions`` among participants or in the lobby."""
        return []

    async def forget_sessions(self, sessions: set[str]) -> None:
        """Drop these sessions' routes and device entries (their instance is dead)."""
        return None

    # ---------------------------------------------------------------- upkeep
    def unavailable(self, exc: BaseException) -> bool:
        """Whether ``exc`` means the backend cannot be reached right now (a shared
        store's connection lost or refused), not a bug: the request is refused as
        "unavailable" and no traceback is logged. A store logs the outage itself,
        once, and once more when it is back."""
        return False

    @abstractmethod
    async def ping(self) -> bool:
        """True if the backend answers (the heartbeat endpoint)."""

    @abstractmethod
    async def sweep(self) -> int:
        """Drop expired records now; returns how many (a no-op where TTLs are native)."""

    @abstractmethod
    async def dump(self) -> dict[str, Any]:
        """Everything held, as plain data: for tests proving what is forgotten."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections (nothing to do in memory)."""


def redact_store_url(url: str) -> str:
    """A Redis URL without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme == "unix":  # the socket's path (the query may hold a password)
        return f"unix://{parts.path}"
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"
