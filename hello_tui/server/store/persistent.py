"""MemoryStore that survives a restart of ``hello-tui serve``: accounts and
rooms are saved to one file; calls, presence and sessions never are (P4).

What the file holds is what the memory store holds for those records:
HMAC-keyed accounts (public keys), room tokens, encrypted room names and
owner keys — no plain name, no IP, no SDP. Participants are dropped on save:
after a restart nobody is in a room. Writes are atomic (temp file, fsync,
rename) and coalesced: a burst of changes is one write within ``delay``
seconds, and ``close()`` writes what is pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from hello_tui.server.privacy import log
from hello_tui.server.records import AccountRecord, RoomRecord
from hello_tui.server.store.base import Updater
from hello_tui.server.store.memory import MemoryStore
from hello_tui.util.atomic import atomic_write_bytes

FORMAT = 1


class _State(msgspec.Struct):
    format: int
    accounts: dict[str, AccountRecord]
    rooms: list[RoomRecord]


class StateFileError(ValueError):
    """The state file is unreadable; it is left untouched."""


class PersistentMemoryStore(MemoryStore):
    """:class:`MemoryStore` plus a state file for accounts and rooms."""

    def __init__(
        self, path: Path, *, delay: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock=clock)
        self.path = path
        self.delay = delay
        self._save_handle: asyncio.TimerHandle | None = None
        self._load()

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        try:
            state = msgspec.msgpack.decode(raw, type=_State)
        except msgspec.DecodeError as exc:
            raise StateFileError(
                f"{self.path}: not a hello-tui server state file ({exc})"
            ) from None
        if state.format != FORMAT:
            raise StateFileError(f"{self.path}: unsupported state format {state.format}")
        now = self.clock()
        for key, account in state.accounts.items():
            if account.until > now:
                self._put(f"account:{key}", account)
        for room in state.rooms:
            if room.until > now:
                self._put(f"room:{room.token}", room)

    def snapshot(self) -> bytes:
        """The state file's bytes for what is held now."""
        accounts: dict[str, AccountRecord] = {}
        rooms: list[RoomRecord] = []
        for key in list(self._records):
            kind, _, rest = key.partition(":")
            if kind == "account":
                account = self._get(key, AccountRecord)
                if account is not None:
                    accounts[rest] = account
            elif kind == "room":
                room = self._get(key, RoomRecord)
                if room is not None:
                    room.participants = []
                    room.call_id = None
                    rooms.append(room)
        return msgspec.msgpack.encode(_State(format=FORMAT, accounts=accounts, rooms=rooms))

    def save_now(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        atomic_write_bytes(self.path, self.snapshot())

    def _changed(self) -> None:
        if self._save_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save_now()
            return
        self._save_handle = loop.call_later(self.delay, self._save_later)

    def _save_later(self) -> None:
        self._save_handle = None
        try:
            self.save_now()
        except OSError:
            log.exception("could not save the server state file")

    # Every account/room mutation marks the state dirty.
    async def create_account(self, key: str, record: AccountRecord) -> bool:
        created = await super().create_account(key, record)
        if created:
            self._changed()
        return created

    async def put_account(self, key: str, record: AccountRecord) -> None:
        await super().put_account(key, record)
        self._changed()

    async def delete_account(self, key: str) -> bool:
        found = await super().delete_account(key)
        self._changed()
        return found

    async def put_room(self, record: RoomRecord) -> None:
        await super().put_room(record)
        self._changed()

    async def update_room(
        self, token: str, fn: Updater[RoomRecord]
    ) -> tuple[RoomRecord | None, RoomRecord | None]:
        result = await super().update_room(token, fn)
        self._changed()
        return result

    async def close(self) -> None:
        with contextlib.suppress(OSError):
            self.save_now()
        await super().close()
