"""The call history: one row per call, newest first, capped at ``max_entries``.

SQLite (stdlib) gives atomic, process-safe appends for free; the call engine
writes a record when a call ends, the CLI and the TUI read it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from hello_tui.util.private import private_file

Direction = Literal["outgoing", "incoming"]
DIRECTIONS: tuple[str, ...] = ("outgoing", "incoming")


class HistoryError(RuntimeError):
    """The history database is unreadable; the message names the file."""


@dataclass(slots=True)
class CallRecord:
    """One call as the user remembers it. ``peer`` is what the user sees
    (a contact name, an account name, a room); ``outcome`` is the end reason
    (answered, rejected, busy, timeout, cancelled, missed, failed, ...)."""

    direction: Direction
    peer: str
    outcome: str
    start: float = field(default_factory=time.time)
    duration: float = 0.0
    contact_id: str | None = None
    id: int | None = None
    # A room's URL with its #k= key, to rejoin it from the history: kept only
    # in this file on this device (0600), like rooms.toml.
    room_url: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    direction TEXT NOT NULL CHECK (direction IN ('outgoing', 'incoming')),
    peer TEXT NOT NULL,
    outcome TEXT NOT NULL,
    start REAL NOT NULL,
    duration REAL NOT NULL DEFAULT 0,
    contact_id TEXT,
    room_url TEXT
);
CREATE INDEX IF NOT EXISTS calls_start ON calls (start);
"""


def _add_room_url(db: sqlite3.Connection) -> None:
    """A database made before rooms were kept gains the column (NULL: no room)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(calls)")}
    if "room_url" not in columns:
        db.execute("ALTER TABLE calls ADD COLUMN room_url TEXT")


class HistoryStore:
    """Append and list call records in ``path`` (created on first use)."""

    def __init__(self, path: Path, *, max_entries: int = 1000) -> None:
        self.path = path
        self.max_entries = max_entries
        private_file(path)  # 0600; SQLite gives its -wal and -shm files the same mode
        try:
            self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            _add_room_url(self._db)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{path}: not a hello-tui history database ({exc})") from None

    def add(self, record: CallRecord) -> CallRecord:
        """Append ``record`` and drop the oldest rows beyond ``max_entries``."""
        if record.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {record.direction!r}")
        with self._write():
            cur = self._db.execute(
                "INSERT INTO calls (direction, peer, outcome, start, duration, contact_id,"
                " room_url) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.direction,
                    record.peer,
                    record.outcome,
                    record.start,
                    record.duration,
                    record.contact_id,
                    record.room_url,
                ),
            )
            record.id = cur.lastrowid
            self._db.execute(
                "DELETE FROM calls WHERE id NOT IN"
                " (SELECT id FROM calls ORDER BY start DESC, id DESC LIMIT ?)",
                (self.max_entries,),
            )
        return record

    def list(self, *, limit: int | None = None) -> list[CallRecord]:
        """Newest first."""
        rows = self._db.execute(
            "SELECT direction, peer, outcome, start, duration, contact_id, id, room_url FROM calls"
            " ORDER BY start DESC, id DESC LIMIT ?",
            (-1 if limit is None else limit,),
        ).fetchall()
        return [CallRecord(*row) for row in rows]

    def clear(self) -> int:
        """Delete every record; returns how many there were."""
        with self._write():
            return self._db.execute("DELETE FROM calls").rowcount

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` so concurrent writers queue on the busy timeout."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
