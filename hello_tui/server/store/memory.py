"""In-process store: the default for one server instance.

Records are kept serialised (as a Redis backend would hold them), so no
caller can mutate stored state by accident and ``dump()`` shows exactly what
a backend would hold. Expired records are dropped on access and by
``sweep()``. Delivery is a direct call into the subscribed instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from hello_tui.server.records import AccountRecord, CallRecord, RoomRecord
from hello_tui.server.store.base import DeliveryHandler, Store, Updater
from hello_tui.signaling.protocol import Message

T = TypeVar("T", AccountRecord, CallRecord, RoomRecord)

_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder[Any]] = {
    t: msgspec.msgpack.Decoder(t) for t in (AccountRecord, CallRecord, RoomRecord)
}


def _decode(kind: type[T], data: bytes) -> T:
    """A record from its msgpack bytes, by the cached decoder of its type (the
    dict cannot say that each key's decoder yields that key's type)."""
    record: T = _decoders[kind].decode(data)
    return record


class MemoryStore(Store):
    """Dictionaries with expiry; every entry is ``key -> (until, value)``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._records: dict[str, tuple[float, bytes]] = {}
        self._presence: dict[str, dict[str, float]] = {}
        self._sessions: dict[str, tuple[float, str]] = {}
        self._owners: dict[str, set[str]] = {}  # owner -> room tokens (index)
        self._handlers: dict[str, DeliveryHandler] = {}

    # ---------------------------------------------------------------- records
    def _get(self, key: str, kind: type[T]) -> T | None:
        entry = self._records.get(key)
        if entry is None:
            return None
        if entry[0] <= self.clock():
            self._drop(key)
            return None
        return _decode(kind, entry[1])

    def _put(self, key: str, record: T) -> None:
        self._records[key] = (record.until, _encoder.encode(record))
        if isinstance(record, RoomRecord):
            self._owners.setdefault(record.owner, set()).add(record.token)

    def _drop(self, key: str) -> None:
        entry = self._records.pop(key, None)
        if entry is not None and key.startswith("room:"):
            room = _decode(RoomRecord, entry[1])
            tokens = self._owners.get(room.owner)
            if tokens is not None:
                tokens.discard(room.token)
                if not tokens:
                    del self._owners[room.owner]

    def _update(self, key: str, kind: type[T], fn: Updater[T]) -> tuple[T | None, T | None]:
        old = self._get(key, kind)
        new = fn(old)  # may raise: nothing changed
        if new is None:
            if old is not None:
                self._drop(key)
        else:
            if isinstance(old, RoomRecord) and (
                not isinstance(new, RoomRecord) or new.owner != old.owner
            ):
                self._drop(key)
            self._put(key, new)
        return old, new

    # ---------------------------------------------------------------- accounts
    async def get_account(self, key: str) -> AccountRecord | None:
        return self._get(f"account:{key}", AccountRecord)

    async def create_account(self, key: str, record: AccountRecord) -> bool:
        if self._get(f"account:{key}", AccountRecord) is not None:
            return False
        self._put(f"account:{key}", record)
        return True

    async def put_account(self, key: str, record: AccountRecord) -> None:
        self._put(f"account:{key}", record)

    async def delete_account(self, key: str) -> bool:
        found = self._get(f"account:{key}", AccountRecord) is not None
        self._drop(f"account:{key}")
        return found

    # ---------------------------------------------------------------- presence
    async def add_presence(self, key: str, session_id: str, until: float) -> None:
        self._presence.setdefault(key, {})[session_id] = until

    async def touch_presence(self, key: str, session_id: str, until: float) -> bool:
        devices = self._presence.get(key)
        if devices is None or session_id not in devices:
            return False
        devices[session_id] = until
        return True

    async def remove_presence(self, key: str, session_id: str) -> None:
        devices = self._presence.get(key)
        if devices is not None:
            devices.pop(session_id, None)
            if not devices:
                del self._presence[key]

    async def clear_presence(self, key: str) -> None:
        self._presence.pop(key, None)

    async def list_presence(self, key: str) -> list[str]:
        now = self.clock()
        devices = self._presence.get(key, {})
        return [sid for sid, until in devices.items() if until > now]

    # ---------------------------------------------------------------- calls
    async def put_call(self, record: CallRecord) -> None:
        self._put(f"call:{record.call_id}", record)

    async def get_call(self, call_id: str) -> CallRecord | None:
        return self._get(f"call:{call_id}", CallRecord)

    async def update_call(
        self, call_id: str, fn: Updater[CallRecord]
    ) -> tuple[CallRecord | None, CallRecord | None]:
        return self._update(f"call:{call_id}", CallRecord, fn)

    # ---------------------------------------------------------------- rooms
    async def put_room(self, record: RoomRecord) -> None:
        self._put(f"room:{record.token}", record)

    async def get_room(self, token: str) -> RoomRecord | None:
        return self._get(f"room:{token}", RoomRecord)

    async def update_room(
        self, token: str, fn: Updater[RoomRecord]
    ) -> tuple[RoomRecord | None, RoomRecord | None]:
        return self._update(f"room:{token}", RoomRecord, fn)

    async def rooms_of(self, owner: str) -> list[RoomRecord]:
        rooms = (self._get(f"room:{t}", RoomRecord) for t in list(self._owners.get(owner, ())))
        return sorted((r for r in rooms if r is not None), key=lambda r: (r.created, r.token))

    # ---------------------------------------------------------------- delivery
    async def register_session(self, session_id: str, instance: str, until: float) -> None:
        self._sessions[session_id] = (until, instance)

    async def unregister_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def deliver(self, session_id: str, message: Message) -> bool:
        entry = self._sessions.get(session_id)
        if entry is None or entry[0] <= self.clock():
            return False
        handler = self._handlers.get(entry[1])
        if handler is None:
            return False
        handler(session_id, message)
        return True

    def subscribe(self, instance: str, handler: DeliveryHandler) -> None:
        self._handlers[instance] = handler

    def unsubscribe(self, instance: str) -> None:
        self._handlers.pop(instance, None)

    # ---------------------------------------------------------------- upkeep
    async def close(self) -> None:
        self._handlers.clear()

    async def ping(self) -> bool:
        return True

    async def sweep(self) -> int:
        now = self.clock()
        dropped = 0
        for key in [k for k, (until, _) in self._records.items() if until <= now]:
            self._drop(key)
            dropped += 1
        for key, devices in list(self._presence.items()):
            for sid in [s for s, until in devices.items() if until <= now]:
                del devices[sid]
                dropped += 1
            if not devices:
                del self._presence[key]
        for sid in [s for s, (until, _) in self._sessions.items() if until <= now]:
            del self._sessions[sid]
            dropped += 1
        return dropped

    async def dump(self) -> dict[str, Any]:
        await self.sweep()
        records: dict[str, Any] = {}
        for key, (until, data) in self._records.items():
            kind = {"account": AccountRecord, "call": CallRecord, "room": RoomRecord}[
                key.split(":", 1)[0]
            ]
            records[key] = msgspec.to_builtins(_decoders[kind].decode(data)) | {"until": until}
        return {
            "records": records,
            "presence": {k: dict(v) for k, v in self._presence.items()},
            "sessions": {k: {"until": u, "instance": i} for k, (u, i) in self._sessions.items()},
            "owners": {k: sorted(v) for k, v in self._owners.items()},
        }
