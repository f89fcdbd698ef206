"""Google Contacts CSV parsing and export."""

from __future__ import annotations

import csv
import io

import pytest

from hello_tui.contacts.csv_google import GOOGLE_HEADER, export_google_csv, parse_google_csv
from hello_tui.contacts.model import Contact, ContactError

CURRENT_HEADER = [
    *GOOGLE_HEADER,
    "E-mail 1 - Label",
    "E-mail 1 - Value",
    "E-mail 2 - Label",
    "E-mail 2 - Value",
    "Phone 1 - Label",
    "Phone 1 - Value",
    "Address 1 - Label",
    "Address 1 - Formatted",
]

OLD_HEADER = [
    "Name",
    "Given Name",
    "Additional Name",
    "Family Name",
    "Nickname",
    "Notes",
    "Group Membership",
    "E-mail 1 - Type",
    "E-mail 1 - Value",
    "E-mail 2 - Type",
    "E-mail 2 - Value",
    "Phone 1 - Type",
    "Phone 1 - Value",
    "Organization 1 - Name",
]


def make_csv(header: list[str], rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        assert set(row) <= set(header), set(row) - set(header)
        writer.writerow([row.get(column, "") for column in header])
    return buffer.getvalue()


def parse(data: str | bytes):
    return parse_google_csv(data, source="google.csv")


def test_current_format_with_multi_value_cells_and_labels() -> None:
    text = make_csv(
        CURRENT_HEADER,
        [
            {
                "First Name": "Ada",
                "Middle Name": "King",
                "Last Name": "Lovelace",
                "Notes": 'Line 1, with comma\r\nLine 2; "quoted"',
                "Labels": "* myContacts ::: * starred",
                "E-mail 1 - Label": "* Home ::: Work",
                "E-mail 1 - Value": "ada@example.org ::: ada@work.example",
                "E-mail 2 - Value": "ADA@example.org ::: third@example.org",
                "Phone 1 - Label": "Mobile",
                "Phone 1 - Value": "+44 20 7946 0000 ::: +44 20 7946 0001",
                "Address 1 - Formatted": "12 St James's Square\nLondon",
            },
            {"First Name": "Grace", "Last Name": "Hopper", "E-mail 1 - Value": "g@example.org"},
        ],
    )
    result = parse(text)
    assert result.skipped == []
    ada, grace = result.contacts
    assert ada.name == "Ada King Lovelace"
    assert ada.emails == ["ada@example.org", "ada@work.example", "third@example.org"]
    assert ada.phones == ["+44 20 7946 0000", "+44 20 7946 0001"]
    assert ada.notes == 'Line 1, with comma\nLine 2; "quoted"'
    assert ada.favourite is True and ada.blocked is False
    assert (grace.name, grace.emails, grace.favourite) == ("Grace Hopper", ["g@example.org"], False)


def test_old_format_header() -> None:
    text = make_csv(
        OLD_HEADER,
        [
            {
                "Name": "Marie Curie",
                "Given Name": "Marie",
                "Family Name": "Curie",
                "Group Membership": "* My Contacts ::: * Starred",
                "E-mail 1 - Type": "* Home",
                "E-mail 1 - Value": "marie@example.org",
                "E-mail 2 - Type": "Work",
                "E-mail 2 - Value": "curie@institut.example",
                "Phone 1 - Value": "+33 1 00 00 00 00",
            },
            {"Given Name": "Pierre", "Family Name": "Curie", "E-mail 1 - Value": "p@example.org"},
            {"Organization 1 - Name": "Institut Radium", "Phone 1 - Value": "+33 1 11"},
        ],
    )
    marie, pierre, institut = parse(text).contacts
    assert marie.name == "Marie Curie"
    assert marie.emails == ["marie@example.org", "curie@institut.example"]
    assert marie.phones == ["+33 1 00 00 00 00"]
    assert marie.favourite is True
    assert pierre.name == "Pierre Curie"
    assert institut.name == "Institut Radium"


def test_outlook_flavour_that_google_also_exports() -> None:
    header = ["First Name", "Last Name", "E-mail Address", "E-mail 2 Address", "Mobile Phone"]
    header += ["Home Phone", "Home Phone 2", "Notes", "Categories"]
    text = make_csv(
        header,
        [
            {
                "First Name": "Olga",
                "Last Name": "Outlook",
                "E-mail Address": "olga@example.org",
                "E-mail 2 Address": "o2@example.org",
                "Mobile Phone": "+1 555 0101",
                "Home Phone 2": "+1 555 0102",
                "Categories": "myContacts;starred",
            }
        ],
    )
    (olga,) = parse(text).contacts
    assert olga.name == "Olga Outlook"
    assert olga.emails == ["olga@example.org", "o2@example.org"]
    assert olga.phones == ["+1 555 0101", "+1 555 0102"]
    assert olga.favourite is True


def test_rows_without_name_or_email_are_skipped_with_row_numbers() -> None:
    text = make_csv(
        CURRENT_HEADER,
        [
            {"First Name": "Ok"},  # row 2
            {"Phone 1 - Value": "+1 555 0100", "Notes": "nameless"},  # row 3
            {},  # row 4: empty, ignored silently
            {"E-mail 1 - Value": "only@example.org"},  # row 5: named after the e-mail
            {"Notes": "bad address", "E-mail 1 - Value": "not-an-address"},  # row 6
        ],
    )
    result = parse(text)
    assert [c.name for c in result.contacts] == ["Ok", "only@example.org"]
    assert [(s.index, s.reason, s.kind) for s in result.skipped] == [
        (3, "no name and no e-mail", "row"),
        (6, "no name and no e-mail", "row"),
    ]
    assert str(result.skipped[0]) == "row 3: no name and no e-mail"


def test_unrecognised_header_names_the_file() -> None:
    with pytest.raises(ContactError, match=r"^google\.csv: not a Google Contacts CSV"):
        parse("Date,Amount,Payee\n2024-01-01,12.50,Bakery\n")


def test_malformed_csv_names_the_file() -> None:
    with pytest.raises(ContactError, match=r"^google\.csv: line \d+: malformed CSV"):
        # A cell beyond the csv module's 128 KiB field limit: corrupt, not a contact.
        parse("First Name,Notes\nAda," + "x" * 200_000 + "\n")


def test_empty_file_is_an_empty_result() -> None:
    result = parse(b"")
    assert result.contacts == [] and result.skipped == []


@pytest.mark.parametrize(
    ("encoding", "prefix"),
    [("utf-8", b"\xef\xbb\xbf"), ("utf-16", b""), ("cp1252", b""), ("latin-1", b"")],
)
def test_encodings(encoding: str, prefix: bytes) -> None:
    text = make_csv(CURRENT_HEADER, [{"First Name": "Zoë", "Last Name": "Müller", "Notes": "ñ"}])
    result = parse(prefix + text.encode(encoding))
    (contact,) = result.contacts
    assert (contact.name, contact.notes) == ("Zoë Müller", "ñ")
    assert any("not valid UTF-8" in w for w in result.warnings) == (
        encoding in ("cp1252", "latin-1")
    )


def test_photo_links_are_not_fetched() -> None:
    text = make_csv(
        CURRENT_HEADER,
        [{"First Name": "Pic", "Photo": "https://lh3.googleusercontent.com/abc"}],
    )
    result = parse(text)
    assert result.contacts[0].photo is None
    assert result.warnings == ["google.csv: 1 photo link(s) not downloaded (contacts stay local)"]


def test_round_trip_loses_nothing_but_photos() -> None:
    contacts = [
        Contact(
            name="Élodie Martin",
            emails=["e@example.org", "e2@example.org", "e3@example.org"],
            phones=["+33 6 12 34 56 78"],
            notes='Multi\nline, "quoted"; semi ::: not a separator',
            favourite=True,
            photo=b"\x89PNG\r\n\x1a\n...",
        ),
        Contact(name="Cher", phones=["1", "2", "3", "4"], blocked=True),
        Contact(name="Jean-Luc de la Tour", favourite=True, blocked=True),
    ]
    text = export_google_csv(contacts)
    header = next(csv.reader(io.StringIO(text)))
    assert header[: len(GOOGLE_HEADER)] == list(GOOGLE_HEADER)
    assert "E-mail 3 - Value" in header and "Phone 4 - Value" in header
    rows = list(csv.reader(io.StringIO(text, newline="")))
    first_row = dict(zip(header, rows[1], strict=True))
    assert (first_row["First Name"], first_row["Last Name"]) == ("Élodie", "Martin")
    assert first_row["File As"] == "Élodie Martin"
    assert first_row["Labels"] == "* starred"
    result = parse(text.encode("utf-8"))
    assert result.skipped == [] and result.warnings == []
    got = [(c.name, c.emails, c.phones, c.notes, c.favourite, c.blocked) for c in result.contacts]
    want = [(c.name, c.emails, c.phones, c.notes, c.favourite, c.blocked) for c in contacts]
    assert got == want
    assert all(c.photo is None for c in result.contacts)


def test_export_of_nothing_is_just_a_header() -> None:
    text = export_google_csv([])
    assert text.count("\r\n") == 1
    assert text.startswith("First Name,Middle Name,Last Name,")
    assert parse(text).contacts == []


PAIRS_1 = ["E-mail 1 - Label", "E-mail 1 - Value", "Phone 1 - Label", "Phone 1 - Value"]


@pytest.mark.parametrize(
    ("contacts", "pairs"),
    [
        ([], PAIRS_1),  # nothing: still one pair of each, a template to fill in
        ([Contact(name="Ann")], PAIRS_1),
        (
            [Contact(name="Ann", emails=["a@x.org", "b@x.org"], phones=["1", "2", "3"])],
            ["E-mail 1 - Label", "E-mail 1 - Value", "E-mail 2 - Label", "E-mail 2 - Value",
             "Phone 1 - Label", "Phone 1 - Value", "Phone 2 - Label", "Phone 2 - Value",
             "Phone 3 - Label", "Phone 3 - Value"],
        ),
    ],
)  # fmt: skip
def test_export_header_has_a_pair_per_value_of_the_fullest_contact(
    contacts: list[Contact], pairs: list[str]
) -> None:
    header = next(csv.reader(io.StringIO(export_google_csv(contacts))))
    assert header == [*GOOGLE_HEADER, *pairs]


def test_a_short_row_reads_its_missing_cells_as_empty() -> None:
    result = parse("Name,E-mail 1 - Value,Notes\r\nAnn\r\nBob,b@x.org\r\n")
    assert [(c.name, c.emails, c.notes) for c in result.contacts] == [
        ("Ann", [], ""),
        ("Bob", ["b@x.org"], ""),
    ]


def test_no_name_takes_the_first_address() -> None:
    result = parse("Name,E-mail 1 - Value\r\n,first@x.org ::: second@x.org\r\n")
    assert [(c.name, c.emails) for c in result.contacts] == [
        ("first@x.org", ["first@x.org", "second@x.org"])
    ]


@pytest.mark.parametrize(
    ("header", "emails"),
    [
        # Outlook's unnumbered column is number 1, wherever it stands...
        ("Name,E-mail 2 Address,E-mail Address", ["b@x.org", "a@x.org"]),
        ("Name,E-mail Address,E-mail 2 Address", ["a@x.org", "b@x.org"]),
        # ...so it ties with an explicit 1: column order
        ("Name,E-mail 1 Address,E-mail Address", ["a@x.org", "b@x.org"]),
    ],
)
def test_outlook_email_columns_in_number_order(header: str, emails: list[str]) -> None:
    assert parse(f"{header}\r\nAnn,a@x.org,b@x.org\r\n").contacts[0].emails == emails
