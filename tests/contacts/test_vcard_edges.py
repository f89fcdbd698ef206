"""vCard helpers edge by edge, with fixed expected text: name splitting, line
folding at 75 octets, skip messages, escapes, the exact export."""

from __future__ import annotations

import dataclasses

import pytest

from hello_tui.contacts.model import Contact
from hello_tui.contacts.vcard import MAX_PHOTO_BYTES, Skip, export_vcards, parse_vcards, split_name
from hello_tui.contacts.vcard import _fold as fold


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("", ("", "")),
        (" Cher ", ("Cher", "")),
        ("Ann Lee", ("Ann", "Lee")),
        ("Jean  Luc Picard", ("Jean Luc", "Picard")),
    ],
)
def test_split_name(name: str, parts: tuple[str, str]) -> None:
    assert split_name(name) == parts


E = "é"  # two octets in UTF-8


@pytest.mark.parametrize(
    ("line", "pieces"),
    [
        ("a" * 75, ["a" * 75]),
        ("a" * 76, ["a" * 75, "a"]),
        ("a" * 150, ["a" * 75, "a" * 74, "a"]),
        ("a" + E * 37, ["a" + E * 37]),  # 75 octets: fits
        ("a" + E * 38, ["a" + E * 37, E]),  # 77 octets: never split inside a character
        ("a" + E * 75, ["a" + E * 37, E * 37, E]),  # continuation lines hold 74 (1 is the space)
        (E * 40, [E * 37, E * 3]),
    ],
)
def test_fold_at_75_octets(line: str, pieces: list[str]) -> None:
    assert fold(line) == "\r\n ".join(pieces)


@pytest.mark.parametrize(
    ("skip", "text"),
    [
        (Skip(3, "bad"), "card 3: bad"),
        (Skip(3, "bad", line=10), "card 3 (line 10): bad"),
        (Skip(5, "bad", line=5), "card 5 (line 5): bad"),
        (Skip(5, "bad", line=5, kind="row"), "row 5: bad"),  # a CSV row is its line
        (Skip(5, "bad", line=6, kind="row"), "row 5 (line 6): bad"),
        (Skip(1, "bad", name="Ann"), "card 1 'Ann': bad"),
    ],
)
def test_skip_messages(skip: Skip, text: str) -> None:
    assert str(skip) == text


def test_skip_is_a_value() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Skip(1, "x").index = 2  # type: ignore[misc]


def test_photo_bound_is_10_mib() -> None:
    assert MAX_PHOTO_BYTES == 10_485_760


def _card(*lines: str) -> str:
    return "\r\n".join(["BEGIN:VCARD", "VERSION:3.0", *lines, "END:VCARD", ""])


def test_escapes_in_text_values() -> None:
    result = parse_vcards(_card("FN:A\\, B", r"NOTE:a\,b\;c\\d\ne\Nf\q\:"), source="x.vcf")
    contact = result.contacts[0]
    assert contact.name == "A, B"
    assert contact.notes == "a,b;c\\d\ne\nf\\q:"  # an unknown escape keeps its backslash


def test_name_from_n_with_missing_parts_and_comma_lists() -> None:
    cards = (
        _card("N:Lee;Ann") + _card(r"N:Tour;Jean,Luc;;Dr.;Jr.") + _card("N:;;;;", "ORG:Acme;R&D")
    )
    names = [c.name for c in parse_vcards(cards, source="x.vcf").contacts]
    assert names == ["Ann Lee", "Dr. Jean Luc Tour Jr.", "Acme"]


def test_a_broken_card_is_named_from_its_fn_cut_at_80() -> None:
    text = "BEGIN:VCARD\r\nFN:" + "N" * 100 + "\r\n"  # no END
    (skip,) = parse_vcards(text, source="x.vcf").skipped
    assert (skip.name, skip.reason, skip.line) == ("N" * 80, "missing END:VCARD", 1)


def test_stray_text_between_cards_is_one_warning_per_run() -> None:
    text = "junk\r\n" + _card("FN:A") + "more\r\nstill\r\n" + _card("FN:B")
    result = parse_vcards(text, source="x.vcf")
    assert result.warnings == [
        "x.vcf: line 1: text outside any vCard ignored",
        "x.vcf: lines 6-7: text outside any vCard ignored",
    ]


def test_progress_counts_cards() -> None:
    seen: list[tuple[str, int, int]] = []
    parse_vcards(_card("FN:A") + _card("FN:B"), source="x.vcf", progress=lambda *a: seen.append(a))
    assert seen == [("reading", 1, 2), ("reading", 2, 2)]


EXPORT_3 = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:id1\r\nFN:Ann Lee\r\nN:Lee;Ann;;;\r\n"
    "EMAIL;TYPE=INTERNET:a@x.org\r\nTEL:+1 555\r\nNOTE:a\\, b\\; c\\nd\r\n"
    "X-HELLO-FAVORITE:TRUE\r\nEND:VCARD\r\n"
)
EXPORT_4 = (
    "BEGIN:VCARD\r\nVERSION:4.0\r\nUID;VALUE=text:id2\r\nFN:Cher\r\nN:;Cher;;;\r\n"
    "EMAIL:c@x.org\r\nX-HELLO-BLOCKED:TRUE\r\nEND:VCARD\r\n"
)


def test_export_text_is_exact() -> None:
    ann = Contact(name="Ann Lee", emails=["a@x.org"], phones=["+1 555"], id="id1",
                  notes="a, b; c\nd", favourite=True)  # fmt: skip
    cher = Contact(name="Cher", emails=["c@x.org"], id="id2", blocked=True)
    assert export_vcards([ann], lambda c: None) == EXPORT_3
    assert export_vcards([cher], lambda c: None, version="4.0") == EXPORT_4
    with pytest.raises(ValueError, match=r"unsupported vCard version '2\.1'"):
        export_vcards([ann], lambda c: None, version="2.1")


PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)
JPEG = b"\xff\xd8\xff" + bytes(8)


@pytest.mark.parametrize(
    ("version", "photo", "line"),
    [
        ("3.0", PNG, "PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAAAAAAAAA=="),
        ("3.0", JPEG, "PHOTO;ENCODING=b;TYPE=JPEG:/9j/AAAAAAAAAAA="),
        ("4.0", PNG, "PHOTO:data:image/png;base64,iVBORw0KGgoAAAAAAAAAAA=="),
        ("3.0", b"not an image", None),
    ],
)
def test_export_photo_line(version: str, photo: bytes, line: str | None) -> None:
    text = export_vcards([Contact(name="A")], lambda c: photo, version=version)
    photo_lines = [x for x in text.split("\r\n") if x.startswith("PHOTO")]
    assert photo_lines == ([line] if line else [])
