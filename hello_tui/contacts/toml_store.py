"""The default contacts backend: one human-editable TOML file.

Layout (every key but ``name`` is optional when editing by hand)::

    version = 1

    [[contact]]
    id = "5f0c3a..."                   # generated on load when missing, saved on next write
    name = "Élodie Martin"
    emails = ["elodie@example.org"]
    phones = ["+33 6 12 34 56 78"]
    photo = "photos/5f0c3a....jpg"     # relative to this file's directory, or absolute
    notes = "Met at FOSDEM"
    favourite = true
    blocked = false
    created = 2024-05-01 09:30:00+00:00
    updated = 2024-06-12 18:02:41+00:00

``created``/``updated`` are written as native TOML offset date-times in UTC with
whole-second precision (RFC 3339, so editors highlight and validate them); on
load, ISO strings and Unix seconds are accepted too, naive times mean UTC and a
missing time defaults to the file's modification time. Empty or default values
are omitted so the file stays short (``updated`` too, when it equals ``created``).

Photo bytes handed to the store go to ``photos/<id>.png|jpg`` beside the file
(the TOML only holds the path); deleting the contact deletes that file.

Every mutation takes ``<file>.lock``, re-reads the file if another process (or
the user) changed it, applies the change and rewrites the file atomically. A
file that does not parse or has a wrong key raises :class:`ContactError` and is
never written over, so a hand-edit typo can't cost the user their contacts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import os
import re
import threading
import time
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import tomli_w

from hello_tui.contacts import search as keys
from hello_tui.contacts.model import (
    Contact,
    ContactError,
    ContactNotFound,
    image_mime,
    new_contact_id,
    normalize_email,
)
from hello_tui.contacts.store import ContactStore
from hello_tui.util.atomic import atomic_write_bytes, atomic_write_text
from hello_tui.util.locking import file_lock

FORMAT_VERSION = 1
PHOTO_DIR = "photos"
_PHOTO_SUFFIX = {"image/png": ".png", "image/jpeg": ".jpg"}
# Ids end up in photo file names, so they must be safe path components.
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_KEYS = (
    "id",
    "name",
    "emails",
    "phones",
    "photo",
    "notes",
    "favourite",
    "blocked",
    "created",
    "updated",
)
_CONTACT_HEADER = re.compile(r"^\s*\[\[\s*contact\s*\]\]")

_Stamp = tuple[int, int, int]  # (st_mtime_ns, st_size, st_ino)


def check_id(contact_id: object) -> str:
    """Reject ids that could not be used as a file name (they name photo files)."""
    if not isinstance(contact_id, str) or not _ID_RE.match(contact_id):
        raise ContactError(
            f"invalid contact id {contact_id!r} (use letters, digits, '-' or '_', max 128)"
        )
    return contact_id


def prepared(contact: Contact) -> Contact:
    """A validated copy with surrounding whitespace trimmed (what backends store)."""
    contact.validate()
    check_id(contact.id)
    return contact.copy(
        name=contact.name.strip(),
        emails=[address.strip() for address in contact.emails],
        phones=[phone.strip() for phone in contact.phones],
    )


def _whole_seconds(timestamp: float) -> float:
    """The time as it survives a round trip through the file (whole seconds)."""
    return float(math.floor(timestamp))


def _to_datetime(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(math.floor(timestamp), dt.UTC)


class _FileError(ContactError):
    """A problem inside one ``[[contact]]`` table; the loader adds file and position."""


def _time_value(value: object, key: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool):
        raise _FileError(f"{key!r} must be a date-time, not a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise _FileError(f"{key!r} is not an RFC 3339 date-time: {value!r}") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.timestamp()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC).timestamp()
    raise _FileError(f"{key!r} must be a date-time, not {type(value).__name__}")


def _str_list(value: object, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _FileError(f"{key!r} must be a list of strings, not {_describe(value)}")
    return value


def _describe(value: object) -> str:
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a list of {'/'.join(kinds)}" if kinds else "a list"
    return type(value).__name__


def _expect(value: object, kind: type | tuple[type, ...], key: str, what: str) -> Any:
    if not isinstance(value, kind):
        raise _FileError(f"{key!r} must be {what}, not {_describe(value)}")
    return value


class TomlContactStore(ContactStore):
    """Contacts in one TOML file; see the module docstring for the format."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser().absolute()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._mutex = threading.RLock()  # one batch at a time per store object
        self._depth = 0  # batch nesting; > 0 while this object holds the file lock
        self._dirty = False
        self._doomed_photos: set[Path] = set()  # deleted once the new TOML is on disk
        self._contacts: dict[str, Contact] = {}
        self._loaded = False
        self._stamp: _Stamp | None = None
        self._digest: bytes | None = None
        # Derived, rebuilt lazily: the display order and per-id search haystacks.
        self._order: list[str] | None = None
        self._haystacks: dict[str, str] = {}

    # -- reading ---------------------------------------------------------------------------

    def all(self, *, include_blocked: bool = True) -> list[Contact]:
        with self._mutex:
            self._refresh()
            contacts = (self._contacts[cid] for cid in self._ordered())
            return [_clone(c) for c in contacts if include_blocked or not c.blocked]

    def get(self, contact_id: str) -> Contact:
        with self._mutex:
            self._refresh()
            try:
                return _clone(self._contacts[contact_id])
            except KeyError:
                raise ContactNotFound(contact_id) from None

    def search(self, query: str, *, limit: int = 50, include_blocked: bool = True) -> list[Contact]:
        with self._mutex:
            self._refresh()
            folded = keys.normalize_query(query)
            found: list[Contact] = []
            if limit < 1:
                return found
            for cid in self._ordered():
                contact = self._contacts[cid]
                if not include_blocked and contact.blocked:
                    continue
                if folded and not keys.matches(folded, self._haystack(contact)):
                    continue
                found.append(_clone(contact))
                if len(found) >= limit:
                    break
            return found

    def find_by_email(self, address: str) -> Contact | None:
        wanted = normalize_email(address)
        with self._mutex:
            self._refresh()
            for cid in self._ordered():
                contact = self._contacts[cid]
                if any(normalize_email(a) == wanted for a in contact.emails):
                    return _clone(contact)
            return None

    def count(self) -> int:
        with self._mutex:
            self._refresh()
            return len(self._contacts)

    # -- writing ---------------------------------------------------------------------------

    def add(self, contact: Contact) -> Contact:
        new = prepared(contact)
        with self.batch():
            if new.id in self._contacts:
                raise ContactError(f"a contact with id {new.id!r} already exists")
            self._put(new)
            return _clone(new)

    def update(self, contact: Contact) -> Contact:
        new = prepared(contact)
        new.updated = time.time()
        with self.batch():
            if new.id not in self._contacts:
                raise ContactNotFound(new.id)
            self._put(new)
            return _clone(new)

    def delete(self, contact_id: str) -> None:
        with self.batch():
            try:
                old = self._contacts.pop(contact_id)
            except KeyError:
                raise ContactNotFound(contact_id) from None
            self._forget_photo(old, None)
            self._changed(contact_id)

    def save_many(self, contacts: Iterable[Contact]) -> None:
        # Validate everything before touching anything: an import is all or nothing.
        ready = [prepared(c) for c in contacts]
        with self.batch():
            for contact in ready:
                self._put(contact)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold the file lock; the file is written once, when the outermost batch ends.

        An exception escaping the outermost batch discards its changes (the file
        is re-read on next use).
        """
        with self._mutex:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with file_lock(self._lock_path):
                self._sync_locked()
                self._depth, self._dirty = 1, False
                self._doomed_photos.clear()
                try:
                    yield
                    if self._dirty:
                        self._write()
                except BaseException:
                    if self._dirty:
                        self._loaded = False  # forget in-memory changes: re-read the file
                    raise
                finally:
                    self._depth, self._dirty = 0, False
                    self._doomed_photos.clear()

    # -- internals: state ------------------------------------------------------------------

    def _put(self, contact: Contact) -> None:
        """Store ``contact`` (already prepared), moving photo bytes into a file."""
        old = self._contacts.get(contact.id)
        if contact.photo is not None:
            suffix = _PHOTO_SUFFIX[image_mime(contact.photo) or "image/png"]
            target = self.path.parent / PHOTO_DIR / f"{contact.id}{suffix}"
            atomic_write_bytes(target, contact.photo)
            self._doomed_photos.discard(target)
            contact.photo, contact.photo_path = None, str(target)
        elif contact.photo_path:
            contact.photo_path = str(self._photo_file(contact.photo_path))
        contact.created = _whole_seconds(contact.created)
        contact.updated = _whole_seconds(contact.updated)
        if old is not None:
            self._forget_photo(old, contact.photo_path)
        self._contacts[contact.id] = contact
        self._changed(contact.id)

    def _forget_photo(self, old: Contact, keep: str | None) -> None:
        """Schedule deletion of ``old``'s photo file if this store made it and it is
        no longer used."""
        if not old.photo_path or old.photo_path == keep:
            return
        path = Path(old.photo_path)
        if path.parent == self.path.parent / PHOTO_DIR and path.stem == old.id:
            self._doomed_photos.add(path)

    def _changed(self, contact_id: str) -> None:
        self._dirty = True
        self._haystacks.pop(contact_id, None)
        self._order = None

    def _haystack(self, contact: Contact) -> str:
        found = self._haystacks.get(contact.id)
        if found is None:
            found = self._haystacks[contact.id] = keys.haystack(contact)
        return found

    def _ordered(self) -> list[str]:
        if self._order is None:
            ordered = sorted(self._contacts.values(), key=keys.sort_key)
            self._order = [c.id for c in ordered]
        return self._order

    def _photo_file(self, photo_path: str) -> Path:
        """Relative to the contacts file's folder, as the file writes them."""
        path = Path(photo_path).expanduser()
        return path if path.is_absolute() else self.path.parent / path

    # -- internals: file -------------------------------------------------------------------

    def _stat(self) -> _Stamp | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _refresh(self) -> None:
        """Before a read: re-load if the file changed since we last saw it."""
        if self._depth:
            return  # inside a batch the in-memory state is the truth
        if not self._loaded or self._stat() != self._stamp:
            self._sync_locked(check_stamp_only=True)

    def _sync_locked(self, *, check_stamp_only: bool = False) -> None:
        """Load the file if its contents differ from what we hold.

        Under the lock the bytes are compared by digest, so even a change that
        kept mtime and size (coarse clocks) is noticed before a write.
        """
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
                if check_stamp_only and self._loaded and stamp == self._stamp:
                    return
                data = f.read()
        except FileNotFoundError:
            self._install({}, None, None)
            return
        except OSError as exc:
            raise ContactError(f"{self.path}: cannot read contacts file: {exc}") from None
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if self._loaded and digest == self._digest:
            self._stamp = stamp
            return
        self._install(self._parse(data, default_time=st.st_mtime), stamp, digest)

    def _install(
        self, contacts: dict[str, Contact], stamp: _Stamp | None, digest: bytes | None
    ) -> None:
        self._contacts, self._stamp, self._digest = contacts, stamp, digest
        self._haystacks, self._order, self._loaded = {}, None, True

    def _parse(self, data: bytes, *, default_time: float) -> dict[str, Contact]:
        where = str(self.path)
        try:
            text = data.decode("utf-8")
            doc = tomllib.loads(text)
        except UnicodeDecodeError as exc:
            raise ContactError(f"{where}: not UTF-8 text (byte {exc.start})") from None
        except tomllib.TOMLDecodeError as exc:
            # tomllib says "(at line L, column C)", except at the very end of the file.
            last_line = data.count(b"\n") + (not data.endswith(b"\n"))
            detail = str(exc).replace("at end of document", f"at end of document, line {last_line}")
            raise ContactError(f"{where}: invalid TOML: {detail}") from None

        unknown = sorted(set(doc) - {"version", "contact"})
        if unknown:
            raise ContactError(f"{where}: unknown top-level key {unknown[0]!r}")
        version = doc.get("version", FORMAT_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ContactError(f"{where}: 'version' must be an integer")
        if version > FORMAT_VERSION:
            raise ContactError(
                f"{where}: written by a newer hello-tui (format version {version}, "
                f"this one reads {FORMAT_VERSION})"
            )
        tables = doc.get("contact", [])
        if not isinstance(tables, list):
            raise ContactError(f"{where}: 'contact' must be an array of tables ([[contact]])")

        contacts: dict[str, Contact] = {}
        for index, table in enumerate(tables):
            try:
                contact = self._contact_from_table(table, default_time)
                if contact.id in contacts:
                    raise _FileError(f"duplicate id {contact.id!r}")
            except ContactError as exc:
                line = _table_line(text, index)
                at = f", line {line}" if line else ""
                raise ContactError(f"{where}: [[contact]] #{index + 1}{at}: {exc}") from None
            contacts[contact.id] = contact
        return contacts

    def _contact_from_table(self, table: object, default_time: float) -> Contact:
        if not isinstance(table, dict):
            raise _FileError(f"must be a table, not {_describe(table)}")
        unknown = [key for key in table if key not in _KEYS]
        if unknown:
            raise _FileError(f"unknown key {unknown[0]!r} (known: {', '.join(_KEYS)})")
        if "name" not in table:
            raise _FileError("missing 'name'")
        get = table.get
        contact_id = get("id")
        if contact_id is None:
            contact_id = new_contact_id()
        check_id(_expect(contact_id, str, "id", "a string"))
        photo = get("photo")
        if photo is not None:
            photo = str(self._photo_file(_expect(photo, str, "photo", "a path string")))
        created = _time_value(get("created"), "created", default_time)
        contact = Contact(
            name=_expect(table["name"], str, "name", "a string"),
            emails=_str_list(get("emails", []), "emails"),
            phones=_str_list(get("phones", []), "phones"),
            id=contact_id,
            photo_path=photo,
            notes=_expect(get("notes", ""), str, "notes", "a string"),
            favourite=_expect(get("favourite", False), bool, "favourite", "true or false"),
            blocked=_expect(get("blocked", False), bool, "blocked", "true or false"),
            created=created,
            updated=_time_value(get("updated"), "updated", created),
        )
        return contact.validate()

    def _write(self) -> None:
        directory = self.path.parent
        # Each table is dumped on its own under a [[contact]] header: given the whole
        # array, tomli_w would write short ones as one inline array, which is
        # valid but awkward to edit by hand. A table holds only plain keys, so
        # the concatenation is valid TOML.
        chunks = [tomli_w.dumps({"version": FORMAT_VERSION})]
        for contact in self._contacts.values():
            table = self._table(contact, directory)
            chunks.append(f"\n[[contact]]\n{tomli_w.dumps(table, multiline_strings=True)}")
        text = "".join(chunks)
        atomic_write_text(self.path, text)
        self._stamp = self._stat()
        self._digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        for photo in self._doomed_photos:
            with suppress(FileNotFoundError):
                photo.unlink()

    @staticmethod
    def _table(contact: Contact, directory: Path) -> dict[str, object]:
        table: dict[str, object] = {"id": contact.id, "name": contact.name}
        if contact.emails:
            table["emails"] = contact.emails
        if contact.phones:
            table["phones"] = contact.phones
        if contact.photo_path:
            path = Path(contact.photo_path)
            table["photo"] = (
                path.relative_to(directory).as_posix()
                if path.is_relative_to(directory)
                else str(path)
            )
        if contact.notes:
            table["notes"] = contact.notes
        if contact.favourite:
            table["favourite"] = True
        if contact.blocked:
            table["blocked"] = True
        table["created"] = _to_datetime(contact.created)
        if contact.updated != contact.created:  # on load, updated defaults to created
            table["updated"] = _to_datetime(contact.updated)
        return table


def _clone(c: Contact) -> Contact:
    """A private copy for callers (10x cheaper than ``Contact.copy``, which matters
    when listing thousands of contacts)."""
    return Contact(
        name=c.name,
        emails=list(c.emails),
        phones=list(c.phones),
        id=c.id,
        photo=c.photo,
        photo_path=c.photo_path,
        notes=c.notes,
        favourite=c.favourite,
        blocked=c.blocked,
        created=c.created,
        updated=c.updated,
    )


def _table_line(text: str, index: int) -> int | None:
    """Line number of the ``index``-th ``[[contact]]`` header, to point the user at it."""
    seen = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if _CONTACT_HEADER.match(line):
            seen += 1
            if seen == index:
                return number
    return None
