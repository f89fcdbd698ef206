"""The contacts backend for large address books: one SQLite database.

* WAL mode and a busy timeout: readers never block the writer, and a second
  process waits for the write lock instead of failing with "database is locked".
  Writes run in ``BEGIN IMMEDIATE`` transactions so two read-modify-writes can't
  interleave (no upgrade deadlocks).
* ``PRAGMA user_version`` holds the schema version.
* Search uses the folded keys from :mod:`hello_tui.contacts.search`, stored in
  columns, so results match the TOML backend exactly. Queries of three or more
  characters go through an FTS5 trigram index (substring search); shorter ones
  walk the display-order index, which is covering for the match test, and stop
  at ``limit`` hits. Both are well under a frame (see ``bench/contacts_bench.py``).
* E-mail lookups use an indexed side table of normalized addresses.
* Photos are BLOBs in their own table, so list scans never read image data; a
  photo given by path is copied in, so the database is self-contained.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hello_tui.contacts import search as keys
from hello_tui.contacts.model import (
    Contact,
    ContactError,
    ContactNotFound,
    image_mime,
    normalize_email,
)
from hello_tui.contacts.store import ContactStore
from hello_tui.contacts.toml_store import prepared
from hello_tui.util.private import private_file

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
_SQLITE_MAGIC = b"SQLite format 3\x00"
# Below this many characters FTS5's trigram index can't help (no full trigram).
_TRIGRAM = 3

_SCHEMA = """
CREATE TABLE contact (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    name      TEXT NOT NULL,
    emails    TEXT NOT NULL DEFAULT '[]',  -- JSON array, as typed
    phones    TEXT NOT NULL DEFAULT '[]',  -- JSON array
    notes     TEXT NOT NULL DEFAULT '',
    favourite INTEGER NOT NULL DEFAULT 0,
    blocked   INTEGER NOT NULL DEFAULT 0,
    created   REAL NOT NULL,
    updated   REAL NOT NULL,
    photo_path TEXT,
    name_key  TEXT NOT NULL,  -- search.name_key(): display order
    haystack  TEXT NOT NULL   -- search.haystack(): what queries match
);
-- Display order; carrying blocked+haystack makes it covering for short-query scans.
CREATE INDEX contact_order ON contact (favourite DESC, name_key, id, blocked, haystack);

CREATE TABLE contact_photo (
    seq  INTEGER PRIMARY KEY REFERENCES contact (seq) ON DELETE CASCADE,
    data BLOB NOT NULL
);

CREATE TABLE contact_email (
    address_key TEXT NOT NULL,  -- model.normalize_email()
    seq INTEGER NOT NULL REFERENCES contact (seq) ON DELETE CASCADE
);
CREATE INDEX contact_email_key ON contact_email (address_key);
CREATE INDEX contact_email_seq ON contact_email (seq);

CREATE VIRTUAL TABLE contact_fts USING fts5 (
    haystack, content = 'contact', content_rowid = 'seq',
    tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER contact_fts_insert AFTER INSERT ON contact BEGIN
    INSERT INTO contact_fts (rowid, haystack) VALUES (new.seq, new.haystack);
END;
CREATE TRIGGER contact_fts_delete AFTER DELETE ON contact BEGIN
    INSERT INTO contact_fts (contact_fts, rowid, haystack)
        VALUES ('delete', old.seq, old.haystack);
END;
CREATE TRIGGER contact_fts_update AFTER UPDATE OF haystack ON contact BEGIN
    INSERT INTO contact_fts (contact_fts, rowid, haystack)
        VALUES ('delete', old.seq, old.haystack);
    INSERT INTO contact_fts (rowid, haystack) VALUES (new.seq, new.haystack);
END;
"""
_OUR_TABLES = {"contact", "contact_photo", "contact_email", "contact_fts"}

_COLUMNS = (
    "c.seq, c.id, c.name, c.emails, c.phones, c.notes, c.favourite, c.blocked, "
    "c.created, c.updated, c.photo_path, p.data"
)
_SELECT = f"SELECT {_COLUMNS} FROM contact c LEFT JOIN contact_photo p ON p.seq = c.seq"
_ORDER = "ORDER BY c.favourite DESC, c.name_key, c.id"

# How many entries (in display order) a 3+ character query walks before it
# switches to the trigram index.
_WALK_WINDOW = 2000
_UNBLOCKED = {True: "", False: "AND blocked = 0"}  # by include_blocked
# Walking the order index, which is covering for the match test, so no table row
# is read until the final fetch. _WINDOW_SQL stops after `window` entries.
_WALK_SQL = {
    include: "SELECT seq FROM contact INDEXED BY contact_order "
    f"WHERE instr(haystack, ?) {cond} ORDER BY favourite DESC, name_key, id LIMIT ?"
    for include, cond in _UNBLOCKED.items()
}
_WINDOW_SQL = {
    include: "SELECT seq FROM (SELECT seq, blocked, haystack FROM contact "
    "INDEXED BY contact_order ORDER BY favourite DESC, name_key, id LIMIT ?) "
    f"WHERE instr(haystack, ?) {cond} LIMIT ?"
    for include, cond in _UNBLOCKED.items()
}

_UPSERT = """
INSERT INTO contact (id, name, emails, phones, notes, favourite, blocked, created, updated,
                     photo_path, name_key, haystack)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, emails = excluded.emails, phones = excluded.phones,
    notes = excluded.notes, favourite = excluded.favourite, blocked = excluded.blocked,
    created = excluded.created, updated = excluded.updated, photo_path = excluded.photo_path,
    name_key = excluded.name_key, haystack = excluded.haystack
RETURNING seq
"""


class SqliteContactStore(ContactStore):
    """Contacts in a SQLite database (see the module docstring for why it looks so)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self._mutex = threading.RLock()  # the connection is shared by this object's users
        self._depth = 0
        self._check_header()
        # Create it private; SQLite gives the -wal and -shm files the same mode.
        private_file(self.path)
        try:
            # isolation_level=None: we issue BEGIN IMMEDIATE/COMMIT ourselves.
            self._db = sqlite3.connect(
                self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=BUSY_TIMEOUT_MS / 1000,  # sets SQLite's busy timeout
            )
        except sqlite3.Error as exc:
            raise ContactError(f"{self.path}: cannot open contacts database: {exc}") from None
        try:
            self._setup()
        except BaseException:
            self._db.close()
            raise

    # -- opening ---------------------------------------------------------------------------

    def _check_header(self) -> None:
        """Refuse a file that is not SQLite before SQLite gets a chance to touch it."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ContactError(f"{self.path}: cannot read contacts database: {exc}") from None
        if head and head != _SQLITE_MAGIC:
            raise ContactError(f"{self.path}: not a SQLite database (refusing to touch it)")

    def _setup(self) -> None:
        db = self._db
        try:
            db.execute("PRAGMA foreign_keys = ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise ContactError(
                    f"{self.path}: written by a newer hello-tui (schema {version}, "
                    f"this one knows {SCHEMA_VERSION})"
                )
            if version == 0:
                self._check_not_foreign()  # before anything writes to the file
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL mode
            if version < SCHEMA_VERSION:
                with self._write():
                    self._migrate()
        except sqlite3.DatabaseError as exc:
            raise ContactError(f"{self.path}: unusable contacts database: {exc}") from None

    def _migrate(self) -> None:
        """Create (or, later, upgrade) the schema; runs inside the write transaction so
        two processes opening a new file at once don't both create it."""
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        self._check_not_foreign()
        for statement in _statements(_SCHEMA):
            # Not executescript(): it would COMMIT our BEGIN IMMEDIATE first.
            db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_not_foreign(self) -> None:
        """Refuse to add our tables to some other program's database."""
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        tables = {row[0] for row in self._db.execute(query)}
        foreign = sorted(t for t in tables if t not in _OUR_TABLES and not t.startswith("contact_"))
        if foreign:
            raise ContactError(
                f"{self.path}: a SQLite database that is not a hello-tui contacts store "
                f"(has table {foreign[0]!r})"
            )

    def close(self) -> None:
        with self._mutex:
            self._db.close()

    # -- transactions ----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), or join the enclosing one."""
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")  # waits (busy timeout) for other writers
            self._depth = 1
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One write transaction for the whole block; rolled back if it raises."""
        with self._write():
            yield

    # -- reading ---------------------------------------------------------------------------

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[Contact]:
        """Run a query selecting ``_COLUMNS`` and build contacts from the rows."""
        with self._mutex:
            return [_contact(row) for row in self._db.execute(sql, params)]

    def all(self, *, include_blocked: bool = True) -> list[Contact]:
        where = "" if include_blocked else "WHERE c.blocked = 0"
        return self._rows(f"{_SELECT} {where} {_ORDER}")

    def get(self, contact_id: str) -> Contact:
        found = self._rows(f"{_SELECT} WHERE c.id = ?", (contact_id,))
        if not found:
            raise ContactNotFound(contact_id)
        return found[0]

    def search(self, query: str, *, limit: int = 50, include_blocked: bool = True) -> list[Contact]:
        folded = keys.normalize_query(query)
        if limit < 1:
            return []
        unblocked = _UNBLOCKED[include_blocked]
        if not folded:
            return self._rows(f"{_SELECT} WHERE 1 {unblocked} {_ORDER} LIMIT ?", (limit,))
        # A common fragment ("e", "gmail") matches early in display order, so walking
        # the order index reaches `limit` hits fast. Short queries always walk (there
        # is no trigram to look up); longer ones walk only a window, then ask the
        # trigram index, which is quick precisely when the fragment is rare.
        with self._mutex:
            if len(folded) < _TRIGRAM:
                cursor = self._db.execute(_WALK_SQL[include_blocked], (folded, limit))
            else:
                params = (_WALK_WINDOW, folded, limit)
                cursor = self._db.execute(_WINDOW_SQL[include_blocked], params)
            seqs = [row[0] for row in cursor]
        if len(seqs) < limit and len(folded) >= _TRIGRAM:
            phrase = '"' + folded.replace('"', '""') + '"'  # an FTS5 string: a substring
            sql = (
                f"{_SELECT} WHERE c.seq IN (SELECT rowid FROM contact_fts WHERE contact_fts "
                f"MATCH ?) {unblocked} {_ORDER} LIMIT ?"
            )
            return self._rows(sql, (phrase, limit))
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        return self._rows(f"{_SELECT} WHERE c.seq IN ({marks}) {_ORDER}", seqs)

    def find_by_email(self, address: str) -> Contact | None:
        sql = (
            f"{_SELECT} WHERE c.seq IN (SELECT seq FROM contact_email WHERE address_key = ?) "
            f"{_ORDER} LIMIT 1"
        )
        found = self._rows(sql, (normalize_email(address),))
        return found[0] if found else None

    def count(self) -> int:
        with self._mutex:
            (count,) = self._db.execute("SELECT count(*) FROM contact").fetchone()
        return int(count)

    # -- writing ---------------------------------------------------------------------------

    def add(self, contact: Contact) -> Contact:
        new = _absorb_photo(prepared(contact))
        with self._write() as db:
            if db.execute("SELECT 1 FROM contact WHERE id = ?", (new.id,)).fetchone():
                raise ContactError(f"a contact with id {new.id!r} already exists")
            self._store(db, [new])
        return new

    def update(self, contact: Contact) -> Contact:
        new = _absorb_photo(prepared(contact))
        new.updated = time.time()
        with self._write() as db:
            if not db.execute("SELECT 1 FROM contact WHERE id = ?", (new.id,)).fetchone():
                raise ContactNotFound(new.id)
            self._store(db, [new])
        return new

    def delete(self, contact_id: str) -> None:
        with self._write() as db:
            # Photo and e-mail rows go with it (ON DELETE CASCADE).
            if not db.execute("DELETE FROM contact WHERE id = ?", (contact_id,)).rowcount:
                raise ContactNotFound(contact_id)

    def save_many(self, contacts: Iterable[Contact]) -> None:
        ready = [_absorb_photo(prepared(c)) for c in contacts]  # all valid, or nothing written
        with self._write() as db:
            self._store(db, ready)

    @staticmethod
    def _store(db: sqlite3.Connection, contacts: list[Contact]) -> None:
        """Insert or replace (by id) contacts, with their e-mail keys and photos."""
        for c in contacts:
            seq = db.execute(
                _UPSERT,
                (
                    c.id,
                    c.name,
                    json.dumps(c.emails, ensure_ascii=False),
                    json.dumps(c.phones, ensure_ascii=False),
                    c.notes,
                    int(c.favourite),
                    int(c.blocked),
                    c.created,
                    c.updated,
                    None if c.photo is not None else c.photo_path,
                    keys.name_key(c),
                    keys.haystack(c),
                ),
            ).fetchone()[0]
            db.execute("DELETE FROM contact_email WHERE seq = ?", (seq,))
            db.executemany(
                "INSERT INTO contact_email (address_key, seq) VALUES (?, ?)",
                [(key, seq) for key in dict.fromkeys(map(normalize_email, c.emails))],
            )
            if c.photo is not None:
                db.execute(
                    "INSERT OR REPLACE INTO contact_photo (seq, data) VALUES (?, ?)",
                    (seq, c.photo),
                )
                c.photo_path = None
            else:
                db.execute("DELETE FROM contact_photo WHERE seq = ?", (seq,))


def _absorb_photo(contact: Contact) -> Contact:
    """Copy a photo given by path into the database, so the store is self-contained
    (e.g. after moving from the TOML backend, whose photo files may be deleted).
    A path that is missing or not an image is kept as given."""
    if contact.photo is None and contact.photo_path:
        try:
            data = Path(contact.photo_path).expanduser().read_bytes()
        except OSError:
            return contact
        if image_mime(data):
            contact.photo, contact.photo_path = data, None
    return contact


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements (trigger bodies contain semicolons)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""


def _contact(row: tuple[Any, ...]) -> Contact:
    (_, cid, name, emails, phones, notes, favourite, blocked, created, updated, path, photo) = row
    return Contact(
        id=cid,
        name=name,
        emails=json.loads(emails),
        phones=json.loads(phones),
        notes=notes,
        favourite=bool(favourite),
        blocked=bool(blocked),
        created=float(created),
        updated=float(updated),
        photo_path=path,
        photo=photo,
    )
