"""Search keys shared by every contacts backend, so both agree on what matches and in
which order results come.

A query matches a contact when its folded form is a substring of the contact's
folded name or of one of its folded e-mail addresses. Folding ignores case and
accents ("Élodie", "ELODIE" and "elodie" are the same key) and collapses runs of
whitespace, so a double space typed by accident in a name does not hide it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from hello_tui.contacts.model import Contact

# Joins a contact's keys into one haystack; it can never occur in a folded query
# (queries are whitespace-collapsed), so a match never straddles two keys.
KEY_SEPARATOR = "\n"


def fold(text: str) -> str:
    """Accent- and case-insensitive form of ``text``.

    Case-folding first (so ``ß`` becomes ``ss`` and ``İ`` its decomposed form),
    then NFKD splits letters from their accents and turns compatibility forms
    (ligatures, full-width letters) into plain ones; combining marks are dropped.
    """
    if text.isascii():
        return text.lower()  # the common case, and 10x faster
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def fold_key(text: str) -> str:
    """:func:`fold` with whitespace trimmed and collapsed to single spaces."""
    return " ".join(fold(text).split())


def normalize_query(query: str) -> str:
    """The folded form a query is matched with; empty means "everything"."""
    return fold_key(query)


def name_key(contact: Contact) -> str:
    """The folded name: what results are ordered by (after favourites)."""
    return fold_key(contact.name)


def email_keys(emails: Iterable[str]) -> list[str]:
    """Folded e-mail addresses (addresses contain no whitespace once trimmed)."""
    return [fold_key(address) for address in emails]


def haystack(contact: Contact) -> str:
    """Every searchable key of ``contact`` in one string (see :data:`KEY_SEPARATOR`)."""
    return KEY_SEPARATOR.join([name_key(contact), *email_keys(contact.emails)])


def matches(folded_query: str, contact_haystack: str) -> bool:
    """Whether a query already passed through :func:`normalize_query` matches."""
    return folded_query in contact_haystack


def sort_key(contact: Contact) -> tuple[bool, str, str]:
    """Favourites first, then folded name, then id (a total, stable order)."""
    return (not contact.favourite, name_key(contact), contact.id)
