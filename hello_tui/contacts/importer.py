"""Import contacts from vCard / Google CSV files into a store, and export them back.

An import never doubles a contact. Cards are matched, in file order, against the
store *and* against cards earlier in the same file:

* A card with e-mail addresses is the same person as the contact holding any of
  them (compared with :func:`normalize_email`). The two are merged: the existing
  name is kept, e-mails and phones are unioned (order kept, no duplicates), empty
  notes and a missing photo are filled in, and favourite and blocked are OR'ed
  (an import can star or block someone, never unstar or unblock them).
  An address that already belongs to a *different* contact is not copied over
  (that would make two contacts answer to it); a warning says so.
* A card without e-mail is the same person only as a contact that also has no
  e-mail, the same folded name (case, accents and spacing ignored) and the same
  set of phone numbers. Anything less certain is added as a new contact: a
  duplicate is easy to delete, a wrong merge is hard to undo.

Everything is written by ONE :meth:`ContactStore.save_many` inside one
:meth:`ContactStore.batch` (a 10,000-card file is one write, and another process
can't slip a change in between the read and the write). Only new and changed
contacts are written; re-importing the same file writes nothing.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hello_tui.contacts.csv_google import export_google_csv, parse_google_csv
from hello_tui.contacts.model import Contact, ContactError, normalize_email
from hello_tui.contacts.search import fold_key
from hello_tui.contacts.store import ContactStore
from hello_tui.contacts.vcard import (
    ParseResult,
    Progress,
    Skip,
    decode_text,
    export_vcards,
    parse_vcards,
    phone_key,
)
from hello_tui.util.atomic import atomic_write_text

__all__ = [
    "FORMATS",
    "VCARD_VERSIONS",
    "ImportReport",
    "ParseResult",
    "Skip",
    "export_file",
    "export_text",
    "import_file",
    "merge_into",
    "parse_file",
]

# Accepted spellings of ``fmt`` → canonical format (the same for import and export).
FORMATS = {"vcard": "vcard", "vcf": "vcard", "csv": "csv", "google": "csv"}
VCARD_VERSIONS = ("3.0", "4.0")
_EXTENSIONS = {".vcf": "vcard", ".vcard": "vcard", ".csv": "csv"}
_VCARD_SNIFF = re.compile(r"^\s*BEGIN\s*:\s*VCARD\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(slots=True)
class ImportReport:
    """What an import did. Every card of the file is counted once: ``added`` (a
    new contact), ``merged`` (matched a contact in the store or earlier in the
    file) or ``skipped``. ``unchanged`` is the part of ``merged`` that brought
    nothing new, so nothing was written for it."""

    source: str
    added: int = 0
    merged: int = 0
    unchanged: int = 0
    skipped: list[Skip] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the status bar / CLI, e.g.
        ``imported contacts.vcf: 120 added, 3 merged, 2 skipped``."""
        line = (
            f"imported {Path(self.source).name}: {self.added} added, "
            f"{self.merged} merged, {len(self.skipped)} skipped"
        )
        if self.unchanged:
            line += f" ({self.unchanged} already up to date)"
        return line

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``--json`` output); skips as dicts with their text."""
        return {
            "source": self.source,
            "added": self.added,
            "merged": self.merged,
            "unchanged": self.unchanged,
            "skipped": [{**asdict(skip), "message": str(skip)} for skip in self.skipped],
            "warnings": list(self.warnings),
        }


# --------------------------------------------------------------------------- merging


def _no_email_key(contact: Contact) -> tuple[str, frozenset[str]]:
    return (fold_key(contact.name), frozenset(phone_key(p) for p in contact.phones))


def _union_phones(into: list[str], extra: list[str]) -> bool:
    known = {phone_key(p) for p in into}
    changed = False
    for phone in extra:
        key = phone_key(phone)
        if key not in known:
            known.add(key)
            into.append(phone)
            changed = True
    return changed


class _Merger:
    """In-memory index of the store plus this import's pending writes."""

    def __init__(self, existing: list[Contact], report: ImportReport) -> None:
        self.report = report
        self.current: dict[str, Contact] = {c.id: c for c in existing}
        self.owner: dict[str, str] = {}  # normalized e-mail → contact id
        self.by_key: dict[tuple[str, frozenset[str]], str] = {}  # no-e-mail contacts
        self.dirty: dict[str, Contact] = {}  # id → contact to write (insertion order)
        for contact in existing:
            self._index(contact)

    def _index(self, contact: Contact) -> None:
        for address in contact.emails:
            self.owner.setdefault(normalize_email(address), contact.id)
        if not contact.emails:
            self.by_key.setdefault(_no_email_key(contact), contact.id)

    def _target(self, card: Contact) -> str | None:
        for address in card.emails:
            found = self.owner.get(normalize_email(address))
            if found is not None:
                return found
        if not card.emails:
            return self.by_key.get(_no_email_key(card))
        return None

    def take(self, card: Contact) -> None:
        """Add ``card`` as a new contact or merge it into its match (never mutated)."""
        target_id = self._target(card)
        if target_id is None:
            self.current[card.id] = card
            self.dirty[card.id] = card
            self._index(card)
            self.report.added += 1
            return
        target = self.current[target_id]
        merged = target.copy()
        changed = False
        for address in card.emails:
            owner = self.owner.get(normalize_email(address))
            if owner is None:
                merged.emails.append(address)
                self.owner[normalize_email(address)] = target_id
                changed = True
            elif owner != target_id:
                self.report.warnings.append(
                    f"{self.report.source}: {address} already belongs to "
                    f"{self.current[owner].name!r}; not added to {target.name!r}"
                )
        changed |= _union_phones(merged.phones, card.phones)
        if not merged.notes.strip() and card.notes.strip():
            merged.notes = card.notes
            changed = True
        if card.photo is not None and merged.photo is None and not merged.photo_path:
            merged.photo = card.photo
            changed = True
        for flag in ("favourite", "blocked"):
            if getattr(card, flag) and not getattr(merged, flag):
                setattr(merged, flag, True)
                changed = True
        self.report.merged += 1
        if not changed:
            self.report.unchanged += 1
            return
        merged.updated = time.time()
        self.current[target_id] = merged
        self.dirty[target_id] = merged


def merge_into(
    store: ContactStore, parsed: ParseResult, progress: Progress | None = None
) -> ImportReport:
    """Merge parsed contacts into ``store`` (see the module docstring for the rules).

    One :meth:`~ContactStore.batch`, one :meth:`~ContactStore.save_many` (skipped
    when nothing changed). If ``save_many`` raises, nothing is written.
    """
    report = ImportReport(
        source=parsed.source, skipped=list(parsed.skipped), warnings=list(parsed.warnings)
    )
    with store.batch():
        merger = _Merger(store.all(), report)
        total = len(parsed.contacts)
        for done, card in enumerate(parsed.contacts, 1):
            merger.take(card)
            if progress is not None:
                progress("merging", done, total)
        if merger.dirty:
            store.save_many(list(merger.dirty.values()))
    return report


# --------------------------------------------------------------------------- files


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ContactError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _import_format(path: Path, data: bytes, fmt: str | None) -> str:
    if fmt is not None:
        canonical = FORMATS.get(fmt.lower())
        if canonical is None:
            raise ContactError(f"{path}: unknown import format {fmt!r} (expected vcard or csv)")
        return canonical
    by_extension = _EXTENSIONS.get(path.suffix.lower())
    if by_extension:
        return by_extension
    head = decode_text(data[:65536], source=str(path))
    if _VCARD_SNIFF.search(head):
        return "vcard"
    first_line = head.lstrip().split("\n", 1)[0].casefold()
    if "," in first_line and ("e-mail 1 - value" in first_line or "name" in first_line):
        return "csv"
    raise ContactError(
        f"{path}: unknown contacts format (expected a vCard .vcf or a Google Contacts .csv)"
    )


def parse_file(
    path: Path, *, fmt: str | None = None, progress: Progress | None = None
) -> ParseResult:
    """Read and parse a contacts file without touching any store (for previews)."""
    path = Path(path)
    data = _read(path)
    kind = _import_format(path, data, fmt)
    if kind == "vcard":
        return parse_vcards(data, source=str(path), base_dir=path.parent, progress=progress)
    return parse_google_csv(data, source=str(path))


def import_file(
    store: ContactStore, path: Path, *, fmt: str | None = None, progress: Progress | None = None
) -> ImportReport:
    """Import a .vcf/.vcard/.csv file into ``store``.

    The format comes from ``fmt`` ("vcard"/"vcf" or "csv"/"google"), else the
    extension, else the content. Relative PHOTO paths resolve against the file's
    folder. Unreadable file or unknown format: :class:`ContactError` naming it.
    ``progress(phase, done, total)`` follows a long import ("reading", "merging").
    """
    return merge_into(store, parse_file(path, fmt=fmt, progress=progress), progress)


def _export(store: ContactStore, fmt: str, vcard_version: str) -> tuple[str, int]:
    kind = FORMATS.get(fmt.lower())
    if kind is None:
        raise ContactError(f"unknown export format {fmt!r} (expected vcard or csv)")
    if kind == "vcard" and vcard_version not in VCARD_VERSIONS:
        raise ContactError(f"unknown vCard version {vcard_version!r} (expected 3.0 or 4.0)")
    contacts = store.all()
    if kind == "csv":
        return export_google_csv(contacts), len(contacts)
    return export_vcards(contacts, store.photo_bytes, version=vcard_version), len(contacts)


def export_text(store: ContactStore, fmt: str = "vcard", vcard_version: str = "3.0") -> str:
    """Every contact (blocked ones too) as vCard or Google CSV text.

    ``fmt``: "vcard"/"vcf" (``vcard_version`` "3.0", the most widely read, or
    "4.0") or "csv"/"google" (Google's CSV carries no photos).
    """
    return _export(store, fmt, vcard_version)[0]


def export_file(
    store: ContactStore, path: Path, fmt: str | None = None, *, vcard_version: str = "3.0"
) -> int:
    """Write :func:`export_text` to ``path`` atomically (a private 0600 file when
    new); returns the number of contacts. ``fmt`` defaults from the extension."""
    path = Path(path)
    key = fmt or _EXTENSIONS.get(path.suffix.lower())
    if key is None:
        raise ContactError(
            f"{path}: cannot tell the export format from {path.suffix or 'no extension'!r} "
            "(use .vcf or .csv, or give the format)"
        )
    try:
        text, count = _export(store, key, vcard_version)
    except ContactError as exc:
        raise ContactError(f"{path}: {exc}") from None
    atomic_write_text(path, text)
    return count
