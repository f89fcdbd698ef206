"""Google Contacts CSV import and export.

Reads both header styles Google has used: the current one ("First Name",
"Middle Name", "Last Name", "E-mail 1 - Label", "E-mail 1 - Value", "Labels", …)
and the older one ("Name", "Given Name", "Family Name", "E-mail 1 - Type",
"Group Membership", …). A cell may hold several values joined by " ::: ".
The "Outlook CSV" flavour Google also offers ("E-mail Address", "Mobile Phone",
"Categories", …) is read too, since users pick either export.

Google's "Photo" column holds a link to Google's servers; links are never
fetched (contacts stay local), so CSV imports come without photos.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable

from hello_tui.contacts.model import Contact, ContactError, normalize_email
from hello_tui.contacts.vcard import (
    ParseResult,
    Skip,
    decode_text,
    split_name,
    unique_phones,
    valid_email,
)

__all__ = ["GOOGLE_HEADER", "export_google_csv", "parse_google_csv"]

# Current Google Contacts export header, up to the repeated E-mail/Phone groups.
GOOGLE_HEADER: tuple[str, ...] = (
    "First Name",
    "Middle Name",
    "Last Name",
    "Phonetic First Name",
    "Phonetic Middle Name",
    "Phonetic Last Name",
    "Name Prefix",
    "Name Suffix",
    "Nickname",
    "File As",
    "Organization Name",
    "Organization Title",
    "Organization Department",
    "Birthday",
    "Notes",
    "Photo",
    "Labels",
)

SEPARATOR = " ::: "
STARRED_LABEL = "* starred"
BLOCKED_LABEL = "hello-blocked"

_NAME_COLUMNS = frozenset({"first name", "last name", "name", "given name", "family name"})
_VALUE_COLUMN_RE = re.compile(r"^(e-mail|phone) (\d+) - value$")
# Outlook CSV: "E-mail Address", "E-mail 2 Address"; "Mobile Phone", "Home Phone 2", …
_OUTLOOK_EMAIL_RE = re.compile(r"^e-mail(?: (\d+))? address$")
_OUTLOOK_PHONE_RE = re.compile(r"^(?:[a-z']+ )*phone(?: (\d+))?$")
_STARRED = frozenset({"* starred", "starred"})


def _split_cell(value: str) -> list[str]:
    return [part.strip() for part in value.split(":::") if part.strip()]


def _clean(value: str) -> str:
    return " ".join(value.split())


class _Row:
    """One data row, read by (case-folded) column name."""

    __slots__ = ("cells", "columns")

    def __init__(self, columns: dict[str, int], cells: list[str]) -> None:
        self.columns = columns
        self.cells = cells

    def get(self, column: str) -> str:
        i = self.columns.get(column)
        return self.at(i) if i is not None else ""

    def at(self, i: int) -> str:
        return self.cells[i] if i < len(self.cells) else ""

    def name(self) -> str:
        """Current-format name parts, then the old "Name", then fallbacks."""
        for group in (
            ("name prefix", "first name", "middle name", "last name", "name suffix"),
            ("name",),
            ("given name", "additional name", "family name"),
            ("file as",),
            ("nickname",),
            ("organization name",),
            ("organization 1 - name",),
        ):
            name = _clean(" ".join(self.get(column) for column in group))
            if name:
                return name
        return ""


def parse_google_csv(data: bytes | str, *, source: str) -> ParseResult:
    """Parse a Google Contacts CSV export.

    Raises :class:`ContactError` naming ``source`` when the header is not a
    Google one or the CSV itself is malformed; a row with neither a name nor an
    e-mail is skipped (``Skip.index`` is the spreadsheet row, header = row 1).
    Fully empty rows are ignored silently.
    """
    result = ParseResult(source=source)
    text = decode_text(data, source=source, warnings=result.warnings)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header: list[str] | None = None
        row_number = 0
        for cells in reader:
            row_number += 1
            if any(cell.strip() for cell in cells):
                header = cells
                break
        if header is None:
            return result  # empty file: nothing to import
        # The first column wins if a name repeats.
        columns = {name.strip().casefold(): i for i, name in reversed(list(enumerate(header)))}
        value_columns: dict[str, list[tuple[int, int]]] = {"e-mail": [], "phone": []}
        for name, i in columns.items():
            match = _VALUE_COLUMN_RE.match(name)
            if match:
                value_columns[match.group(1)].append((int(match.group(2)), i))
            elif match := _OUTLOOK_EMAIL_RE.match(name):
                value_columns["e-mail"].append((int(match.group(1) or 1), i))
            elif _OUTLOOK_PHONE_RE.match(name):
                value_columns["phone"].append((1000 + i, i))  # in column order
        if not (_NAME_COLUMNS & columns.keys() or value_columns["e-mail"]):
            raise ContactError(
                f"{source}: not a Google Contacts CSV (the header has no 'First Name', "
                "'Name' or 'E-mail 1 - Value' column)"
            )
        email_cols = [i for _, i in sorted(value_columns["e-mail"])]
        phone_cols = [i for _, i in sorted(value_columns["phone"])]
        photo_links = 0
        for cells in reader:
            row_number += 1
            if not any(cell.strip() for cell in cells):
                continue
            row = _Row(columns, cells)
            contact, warnings = _row_contact(row, email_cols, phone_cols)
            if contact is None:
                result.skipped.append(
                    Skip(row_number, "no name and no e-mail", line=reader.line_num, kind="row")
                )
                continue
            try:
                result.contacts.append(contact.validate())
            except ContactError as exc:
                result.skipped.append(
                    Skip(row_number, str(exc), line=reader.line_num, name=contact.name, kind="row")
                )
                continue
            result.warnings.extend(
                f"{source}: row {row_number} {contact.name!r}: {w}" for w in warnings
            )
            if row.get("photo").strip():
                photo_links += 1
    except csv.Error as exc:
        raise ContactError(f"{source}: line {reader.line_num}: malformed CSV ({exc})") from None
    if photo_links:
        result.warnings.append(
            f"{source}: {photo_links} photo link(s) not downloaded (contacts stay local)"
        )
    return result


def _row_contact(
    row: _Row, email_cols: list[int], phone_cols: list[int]
) -> tuple[Contact | None, list[str]]:
    """The row's contact (``None`` without name and e-mail) and its warnings."""
    warnings: list[str] = []
    emails: list[str] = []
    seen: set[str] = set()
    for i in email_cols:
        for address in _split_cell(row.at(i)):
            if not valid_email(address):
                warnings.append(f"invalid e-mail address {address!r} dropped")
            elif normalize_email(address) not in seen:
                seen.add(normalize_email(address))
                emails.append(address)
    phones = unique_phones(phone for i in phone_cols for phone in _split_cell(row.at(i)))
    name = row.name() or (emails[0] if emails else "")
    if not name:
        return None, warnings
    labels = row.get("labels") or row.get("group membership") or row.get("categories")
    label_set = {label.casefold() for label in _split_cell(labels.replace(";", ":::"))}
    contact = Contact(
        name=name,
        emails=emails,
        phones=phones,
        notes=row.get("notes").replace("\r\n", "\n"),
        favourite=bool(label_set & _STARRED),
        blocked=BLOCKED_LABEL in label_set,
    )
    return contact, warnings


def export_google_csv(contacts: Iterable[Contact]) -> str:
    """Write contacts in the current Google Contacts CSV format.

    Photos are NOT exported: Google's CSV only carries photo links, and ours
    are local files. Everything else survives :func:`parse_google_csv`: the
    name (split into First/Last Name, and whole in File As), every e-mail and
    phone (one column pair each, as many pairs as the contact with the most
    needs), notes, and favourite/blocked as the labels
    "* starred" / "hello-blocked".
    """
    contacts = list(contacts)
    n_emails = max((len(c.emails) for c in contacts), default=0) or 1
    n_phones = max((len(c.phones) for c in contacts), default=0) or 1
    header = list(GOOGLE_HEADER)
    for i in range(1, n_emails + 1):
        header += [f"E-mail {i} - Label", f"E-mail {i} - Value"]
    for i in range(1, n_phones + 1):
        header += [f"Phone {i} - Label", f"Phone {i} - Value"]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    file_as_at = GOOGLE_HEADER.index("File As")
    notes_at = GOOGLE_HEADER.index("Notes")
    labels_at = GOOGLE_HEADER.index("Labels")
    emails_at = len(GOOGLE_HEADER) + 1  # value column of the first pair
    phones_at = emails_at + 2 * n_emails
    for contact in contacts:
        row = [""] * len(header)
        row[0], row[2] = split_name(contact.name)
        row[file_as_at] = contact.name  # the exact display name, for Google's list
        row[notes_at] = contact.notes
        labels = [STARRED_LABEL] if contact.favourite else []
        if contact.blocked:
            labels.append(BLOCKED_LABEL)
        row[labels_at] = SEPARATOR.join(labels)
        for i, address in enumerate(contact.emails):
            row[emails_at + 2 * i] = address
        for i, phone in enumerate(contact.phones):
            row[phones_at + 2 * i] = phone
        writer.writerow(row)
    return buffer.getvalue()
