"""The contact record and its validation, shared by every backend and importer."""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

# Deliberately loose: an address book holds what people typed, but an address
# must at least look like local@domain with no spaces.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


class ContactError(ValueError):
    """A contact (or a contacts file) is invalid; the message says what and where."""


class ContactNotFound(KeyError):
    """No contact has the given id."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want a plain line
        return f"no contact with id {self.args[0]!r}"


def new_contact_id() -> str:
    """A random, opaque id (32 hex chars). Never derived from the contact's data."""
    return uuid.uuid4().hex


def normalize_email(address: str) -> str:
    """Canonical form used for duplicate detection: trimmed, lower-cased."""
    return address.strip().lower()


@dataclass(slots=True)
class Contact:
    """One person in the local address book.

    ``photo`` holds image bytes (PNG or JPEG) when the backend keeps them;
    ``photo_path`` points at an image file instead (the TOML backend stores
    imported photos as files next to the contacts file so the TOML stays
    readable). :meth:`ContactStore.photo_bytes` returns the bytes either way.
    Times are Unix seconds (float, UTC).
    """

    name: str
    emails: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)
    id: str = field(default_factory=new_contact_id)
    photo: bytes | None = None
    photo_path: str | None = None
    notes: str = ""
    favourite: bool = False
    blocked: bool = False
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    def validate(self) -> Contact:
        """Check the record; raise :class:`ContactError` naming the bad field."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise ContactError("contact name must be a non-empty string")
        for address in self.emails:
            if not isinstance(address, str) or not _EMAIL_RE.match(address.strip()):
                raise ContactError(f"contact {self.name!r}: invalid e-mail address {address!r}")
        for phone in self.phones:
            if not isinstance(phone, str) or not phone.strip():
                raise ContactError(f"contact {self.name!r}: invalid phone number {phone!r}")
        if self.photo is not None and not _is_image(self.photo):
            raise ContactError(f"contact {self.name!r}: photo is not a PNG or JPEG image")
        return self

    @property
    def primary_email(self) -> str | None:
        return self.emails[0] if self.emails else None

    def copy(self, **changes: Any) -> Contact:
        """A copy with ``changes`` applied (lists are copied, not shared)."""
        base = replace(self, emails=list(self.emails), phones=list(self.phones))
        return replace(base, **changes)


def image_mime(data: bytes) -> str | None:
    """``image/png`` or ``image/jpeg`` from the magic bytes, else ``None``."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def _is_image(data: bytes) -> bool:
    return image_mime(data) is not None
