"""MemoryStore that survives a restart of ``hello-tui serve``: accounts and
rooms are saved to an SQLite database; calls, presence and sessions never are (P4).

What the database holds is what the memory store holds for those records,
one row each (``key``, ``until``, ``data``: the record as JSON): HMAC-keyed accounts
(public keys), room tokens, encrypted room names and owner keys — no plain
name, no IP, no SDP. Participants and the pair's call id are dropped on
save: after a restart nobody is in a room.

Writes are incremental and off the event loop. A change marks its key
dirty; within ``delay`` seconds the dirty rows are encoded on the loop in
slices of :data:`SLICE` (about a millisecond each, yielding in between),
one JSON array per slice, and one worker thread writes them all in one
transaction, each slice by a single statement over ``json_each`` — so the
worker holds the GIL only to hand SQLite a string, and SQLite runs with the
GIL released (a statement per row would take and drop the GIL per row and
starve the loop). SQLite runs in WAL mode with
``synchronous=FULL``: a crash loses at most the changes not yet flushed,
never half a transaction. ``secure_delete`` overwrites deleted rows and the
WAL is truncated after checkpoints, so a deleted account does not linger on
disk. Files are created mode 0600 (SQLite gives its -wal/-shm files the
database's mode).

A state file of the previous format (one msgpack snapshot, rewritten whole)
is migrated on first start: converted into a new database beside it, which
then replaces it atomically (``os.replace``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from hello_tui.server.privacy import log
from hello_tui.server.records import AccountRecord, RoomRecord
from hello_tui.server.store.base import Updater
from hello_tui.server.store.memory import MemoryStore, _decode, _encoder

FORMAT = 2  # PRAGMA user_version of the database
LEGACY_FORMAT = 1  # the msgpack snapshot file
SLICE = 128  # dirty keys encoded per event-loop step (under a millisecond)
_SQLITE_MAGIC = b"SQLite format 3\x00"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    until REAL NOT NULL,
    data BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_until ON records (until);
"""
_UPSERT = (
    "INSERT OR REPLACE INTO records (key, until, data) SELECT json_extract(value, '$[0]'),"
    " json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?)"
)
_DELETE = "DELETE FROM records WHERE key IN (SELECT value FROM json_each(?))"
_json = msgspec.json.Encoder()

Record = AccountRecord | RoomRecord
Row = tuple[str, float, Record]
Batch = tuple[bytes, bytes]  # JSON arrays: rows to upsert, keys to delete


class _LegacyState(msgspec.Struct):
    format: int
    accounts: dict[str, AccountRecord]
    rooms: list[RoomRecord]


class StateFileError(ValueError):
    """The state file is unreadable; it is left untouched."""


def _create_private(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _connect(path: Path, *, wal: bool = True) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)  # transactions are explicit
    db.execute("PRAGMA busy_timeout = 5000")
    if wal:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA journal_size_limit = 0")  # truncate the WAL after checkpoints
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA secure_delete = ON")
    return db


def _yield_cpu() -> None:
    """The worker gives way to the event loop when both want a CPU (Linux: a
    thread has its own nice value). It holds the GIL only to hand SQLite a
    string, so the loop does not end up waiting on a descheduled worker."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _write(db: sqlite3.Connection, batches: list[Batch], now: float) -> None:
    """One transaction: the slices of a flush, and whatever has expired."""
    db.execute("BEGIN IMMEDIATE")
    try:
        for upserts, deletes in batches:
            db.execute(_UPSERT, (upserts.decode(),))
            db.execute(_DELETE, (deletes.decode(),))
        db.execute("DELETE FROM records WHERE until <= ?", (now,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _batch(rows: list[Row], deletes: list[str]) -> Batch:
    return _json.encode(rows), _json.encode(deletes)


def _saved(key: str, data: bytes) -> Record:
    """A record as saved: a room with nobody in it and no call."""
    if not key.startswith("room:"):
        return _decode(AccountRecord, data)
    room = _decode(RoomRecord, data)
    room.participants = []
    room.call_id = None
    return room


class PersistentMemoryStore(MemoryStore):
    """:class:`MemoryStore` plus an SQLite database for accounts and rooms."""

    def __init__(
        self, path: Path, *, delay: float = 1.0, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(clock=clock)
        self.path = path
        self.delay = delay
        self._dirty: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._flush_task: asyncio.Task[None] | None = None
        self._closed = False
        # Every database call runs on this one thread, in order.
        self._worker = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="hello-state", initializer=_yield_cpu
        )
        self._db: sqlite3.Connection | None = None
        try:
            rows = self._worker.submit(self._open).result()
        except BaseException:
            self._worker.shutdown()
            raise
        accounts = msgspec.json.Decoder(AccountRecord)
        rooms = msgspec.json.Decoder(RoomRecord)
        for key, data in rows:
            if key.startswith("account:"):
                self._put(key, accounts.decode(data))
            else:
                self._put(key, rooms.decode(data))

    # ---------------------------------------------------------------- worker thread
    def _open(self) -> list[tuple[str, str]]:
        """Open (migrating a legacy file first) and read the live rows."""
        try:
            head = self.path.read_bytes()[:16] if self.path.exists() else b""
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot read the state file ({exc})") from None
        if head and head != _SQLITE_MAGIC:
            self._migrate()
        elif not head:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
        try:
            db = _connect(self.path)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, FORMAT):
                db.close()
                raise StateFileError(f"{self.path}: unsupported state format {version}")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {FORMAT}")
            now = self.clock()
            db.execute("DELETE FROM records WHERE until <= ?", (now,))
            rows = db.execute("SELECT key, data FROM records").fetchall()
        except sqlite3.DatabaseError as exc:
            message = f"{self.path}: not a hello-tui server state file ({exc})"
            raise StateFileError(message) from None
        self._db = db
        return rows

    def _migrate(self) -> None:
        """Legacy snapshot → a new database beside it → atomically in its place."""
        try:
            state = msgspec.msgpack.decode(self.path.read_bytes(), type=_LegacyState)
        except msgspec.DecodeError as exc:
            raise StateFileError(
                f"{self.path}: not a hello-tui server state file ({exc})"
            ) from None
        if state.format != LEGACY_FORMAT:
            raise StateFileError(f"{self.path}: unsupported state format {state.format}")
        now = self.clock()
        rows: list[Row] = [
            (f"account:{key}", a.until, a) for key, a in state.accounts.items() if a.until > now
        ]
        rows += [
            (f"room:{r.token}", r.until, _saved(f"room:{r.token}", _encoder.encode(r)))
            for r in state.rooms
            if r.until > now
        ]
        tmp = self.path.with_name(self.path.name + ".migrating")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()  # a migration cut short earlier
        _create_private(tmp)
        db = _connect(tmp, wal=False)  # one self-contained file to move into place
        try:
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {FORMAT}")
            _write(db, [_batch(rows, [])], now)
        finally:
            db.close()
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        log.info("state file migrated to SQLite: %d records", len(rows))

    def _commit(self, batches: list[Batch], now: float) -> None:
        assert self._db is not None
        _write(self._db, batches, now)

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()  # the last connection checkpoints and removes the WAL
            self._db = None

    # ---------------------------------------------------------------- event loop
    def _slice(self, keys: Iterable[str]) -> Batch:
        """The rows of ``keys`` as they are now (absent or expired: deleted)."""
        now = self.clock()
        rows: list[Row] = []
        deletes: list[str] = []
        for key in keys:
            entry = self._records.get(key)
            if entry is None or entry[0] <= now:
                deletes.append(key)
            else:
                rows.append((key, entry[0], _saved(key, entry[1])))
        return _batch(rows, deletes)

    def _mark(self, key: str) -> None:
        self._dirty.add(key)
        if self._timer is not None or self._flush_task is not None:
            return  # a flush is due or running; it picks this up
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.save_now()
            return
        self._timer = loop.call_later(self.delay, self._start_flush)

    def _start_flush(self) -> None:
        self._timer = None
        self._flush_task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Write what is dirty: encoded a slice at a time, one transaction in the worker."""
        loop = asyncio.get_running_loop()
        keys = list(self._dirty)
        self._dirty.clear()
        batches: list[Batch] = []
        try:
            for start in range(0, len(keys), SLICE):
                if start:
                    await asyncio.sleep(0)  # let signaling run between slices
                batches.append(self._slice(keys[start : start + SLICE]))
            await loop.run_in_executor(self._worker, self._commit, batches, self.clock())
        except Exception:
            log.exception("could not save the server state; retrying")
            self._dirty.update(keys)  # nothing of this flush was committed
        finally:
            self._flush_task = None
        if self._dirty and not self._closed:
            self._timer = loop.call_later(self.delay, self._start_flush)

    def _all_dirty(self) -> list[Batch]:
        keys = list(self._dirty)
        self._dirty.clear()
        return [self._slice(keys[i : i + SLICE]) for i in range(0, len(keys), SLICE)]

    def save_now(self) -> None:
        """Write what is dirty now, blocking (no event loop)."""
        self._worker.submit(self._commit, self._all_dirty(), self.clock()).result()

    # Every account/room mutation marks its key dirty.
    async def create_account(self, key: str, record: AccountRecord) -> bool:
        created = await super().create_account(key, record)
        if created:
            self._mark(f"account:{key}")
        return created

    async def put_account(self, key: str, record: AccountRecord) -> None:
        await super().put_account(key, record)
        self._mark(f"account:{key}")

    async def delete_account(self, key: str) -> bool:
        found = await super().delete_account(key)
        self._mark(f"account:{key}")
        return found

    async def put_room(self, record: RoomRecord) -> None:
        await super().put_room(record)
        self._mark(f"room:{record.token}")

    async def update_room(
        self, token: str, fn: Updater[RoomRecord]
    ) -> tuple[RoomRecord | None, RoomRecord | None]:
        result = await super().update_room(token, fn)
        self._mark(f"room:{token}")
        return result

    async def close(self) -> None:
        """Write what is pending, then close the database and its thread."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._flush_task is not None:
            await asyncio.shield(self._flush_task)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._worker, self._commit, self._all_dirty(), self.clock())
        except (OSError, sqlite3.Error):
            log.exception("could not save the server state at shutdown")
        await loop.run_in_executor(self._worker, self._close_db)
        self._worker.shutdown()
        await super().close()
