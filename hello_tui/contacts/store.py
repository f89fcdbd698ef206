"""The interface every contacts backend implements, and the factory that opens one.

Backends: ``toml`` (default, a human-editable file) and ``sqlite`` (large
address books). The same test suite runs against both.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from hello_tui.contacts.model import Contact


class ContactStore(abc.ABC):
    """A local address book. All methods are synchronous and process-safe:
    two processes writing at once never lose each other's changes."""

    path: Path

    @abc.abstractmethod
    def all(self, *, include_blocked: bool = True) -> list[Contact]:
        """Every contact, favourites first, then by name (accent/case-insensitive)."""

    @abc.abstractmethod
    def get(self, contact_id: str) -> Contact:
        """The contact with this id; raises :class:`ContactNotFound`."""

    @abc.abstractmethod
    def add(self, contact: Contact) -> Contact:
        """Validate and store a new contact; returns it as stored."""

    @abc.abstractmethod
    def update(self, contact: Contact) -> Contact:
        """Validate and replace the stored contact with the same id (sets ``updated``)."""

    @abc.abstractmethod
    def delete(self, contact_id: str) -> None:
        """Remove a contact (and its stored photo); raises :class:`ContactNotFound`."""

    @abc.abstractmethod
    def search(self, query: str, *, limit: int = 50, include_blocked: bool = True) -> list[Contact]:
        """Contacts whose name or an address contains ``query``, ignoring case and
        accents (``élodie`` finds ``Elodie``); favourites first, then by name."""

    @abc.abstractmethod
    def find_by_email(self, address: str) -> Contact | None:
        """The contact holding this e-mail address (case-insensitive), if any."""

    @abc.abstractmethod
    def save_many(self, contacts: Iterable[Contact]) -> None:
        """Add or replace (by id) many contacts in one write (used by imports)."""

    def photo_bytes(self, contact: Contact) -> bytes | None:
        """The contact's photo as bytes, from ``photo`` or ``photo_path``; ``None``
        when there is none or its file has disappeared."""
        if contact.photo is not None:
            return contact.photo
        if not contact.photo_path:
            return None
        try:
            return self._photo_file(contact.photo_path).read_bytes()
        except FileNotFoundError:
            return None

    def _photo_file(self, photo_path: str) -> Path:
        """The file a contact's ``photo_path`` names (``~`` expanded)."""
        return Path(photo_path).expanduser()

    @abc.abstractmethod
    def batch(self) -> AbstractContextManager[None]:
        """Hold the store's lock for a read-modify-write spanning several calls."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of contacts."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (database connections)."""

    def set_blocked(self, contact_id: str, blocked: bool = True) -> Contact:
        with self.batch():
            return self.update(self.get(contact_id).copy(blocked=blocked))

    def set_favourite(self, contact_id: str, favourite: bool = True) -> Contact:
        with self.batch():
            return self.update(self.get(contact_id).copy(favourite=favourite))

    def __iter__(self) -> Iterator[Contact]:
        return iter(self.all())

    def __enter__(self) -> ContactStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(backend: str, path: str | Path) -> ContactStore:
    """Open the contacts store named by the ``[contacts]`` config section."""
    if backend == "toml":
        from hello_tui.contacts.toml_store import TomlContactStore

        return TomlContactStore(Path(path))
    if backend == "sqlite":
        from hello_tui.contacts.sqlite_store import SqliteContactStore

        return SqliteContactStore(Path(path))
    raise ValueError(f"unknown contacts backend {backend!r} (expected 'toml' or 'sqlite')")
