"""vCard reading edge by edge, with fixed expected values: the unreadable-line
recovery loop, the vCard 2.1 unindented-base64 state, photo sizes, base64
padding and the lengths at which warnings cut what they quote."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hello_tui.contacts.vcard import MAX_PHOTO_BYTES, parse_vcards, valid_email
from hello_tui.contacts.vcard import _fold as fold

PNG8 = b"\x89PNG\r\n\x1a\n"


def png(size: int) -> bytes:
    """A PNG signature padded with zero bytes to ``size`` bytes."""
    return PNG8 + bytes(size - len(PNG8))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _card(*lines: str, version: str = "3.0") -> str:
    return "\r\n".join(["BEGIN:VCARD", f"VERSION:{version}", *lines, "END:VCARD", ""])


def _one(text: str, base_dir: Path | None = None):  # type: ignore[no-untyped-def]
    result = parse_vcards(text, source="x.vcf", base_dir=base_dir)
    assert not result.skipped, result.skipped
    (contact,) = result.contacts
    return contact, result.warnings


# ------------------------------------------------------------ unreadable lines


def _bad(n: int) -> list[str]:
    return [f"bad{i:02}" for i in range(1, n + 1)]  # no colon: vobject cannot read them


def test_twenty_unreadable_lines_are_dropped_one_by_one() -> None:
    contact, warnings = _one(_card("FN:A", *_bad(20)))
    assert contact.name == "A"
    assert len(warnings) == 20
    assert warnings[0] == "x.vcf: card 1 'A': line 4: unreadable line ignored: 'bad01'"
    assert warnings[19] == "x.vcf: card 1 'A': line 23: unreadable line ignored: 'bad20'"


def test_a_continuation_line_with_nothing_before_it_is_dropped_not_the_card() -> None:
    text = "\r\n".join(["BEGIN:VCARD", " stray", "VERSION:3.0", "FN:A", "END:VCARD", ""])
    contact, warnings = _one(text)
    assert contact.name == "A"
    assert warnings == ["x.vcf: card 1 'A': line 2: unreadable line ignored: ' stray'"]


def test_a_long_leading_continuation_is_quoted_cut_at_60() -> None:
    stray = " " + "y" * 70
    text = "\r\n".join(["BEGIN:VCARD", stray, "VERSION:3.0", "FN:A", "END:VCARD", ""])
    _contact, warnings = _one(text)
    assert warnings == [f"x.vcf: card 1 'A': line 2: unreadable line ignored: {' ' + 'y' * 59!r}"]


def test_twenty_one_unreadable_lines_skip_the_card() -> None:
    result = parse_vcards(_card("FN:A", *_bad(21)), source="x.vcf")
    assert result.contacts == []
    (skip,) = result.skipped
    assert skip.reason == "unreadable card (more than 20 unreadable lines)"


@pytest.mark.parametrize(
    ("lines", "name", "notes", "phones", "warning"),
    [
        # the first line of the body (index 0) is recoverable
        (["garbage", "FN:A"], "A", "", [], "line 2: unreadable line ignored: 'garbage'"),
        # the last line of the body: no continuation lines to look at
        (["FN:A", "garbage"], "A", "", [], "line 3: unreadable line ignored: 'garbage'"),
        # a bad line takes its folded continuation with it, and nothing more
        (
            ["FN:A", "NOTE:keep", "garbage", " more", "TEL:1"],
            "A", "keep", ["1"], "line 4: unreadable line ignored: 'garbage'",
        ),
        # the quoted line is cut at 60 characters
        (["FN:A", "g" * 61], "A", "", [], f"line 3: unreadable line ignored: '{'g' * 60}'"),
    ],
)  # fmt: skip
def test_an_unreadable_line_is_dropped(
    lines: list[str], name: str, notes: str, phones: list[str], warning: str
) -> None:
    contact, warnings = _one("BEGIN:VCARD\r\n" + "\r\n".join(lines) + "\r\nEND:VCARD\r\n")
    assert (contact.name, contact.notes, contact.phones) == (name, notes, phones)
    assert warnings == [f"x.vcf: card 1 'A': {warning}"]


@pytest.mark.parametrize(
    ("lines", "reason"),
    [
        # vobject reports the line after the body (its END): not a line to drop
        (["FN:A", "BEGIN:X"], "unreadable card (At line 5: X component wasn't closed)"),
        (
            ["FN:A", "NOTE;CHARSET=bogus;ENCODING=QUOTED-PRINTABLE:=41"],
            "unreadable card (unknown encoding: bogus)",
        ),
    ],
)
def test_an_unreadable_card_says_why(lines: list[str], reason: str) -> None:
    result = parse_vcards(_card(*lines), source="x.vcf")
    assert result.contacts == []
    assert [s.reason for s in result.skipped] == [reason]


def test_a_broken_card_is_named_from_its_fn_with_colons() -> None:
    (skip,) = parse_vcards("BEGIN:VCARD\r\nFN:Dr: Who\r\n", source="x.vcf").skipped
    assert skip.name == "Dr: Who"


# ------------------------------------------------------------ vCard 2.1 base64 state

PHOTO24 = png(24)
ENC24 = b64(PHOTO24)  # 32 characters, no padding


@pytest.mark.parametrize(
    "lines",
    [
        # 2.1: the BASE64 singleton; continuation lines not indented
        ["PHOTO;PNG;BASE64:" + ENC24[:8], ENC24[8:16], ENC24[16:]],
        # ENCODING=B alone (no BASE64 word) starts the state too
        ["PHOTO;ENCODING=B:" + ENC24[:8], ENC24[8:16], ENC24[16:]],
        # an indented continuation line keeps the state
        ["PHOTO;ENCODING=BASE64:" + ENC24[:8], " " + ENC24[8:16], ENC24[16:]],
    ],
)
def test_unindented_base64_lines_continue_the_photo(lines: list[str]) -> None:
    contact, warnings = _one(_card("FN:A", *lines, version="2.1"))
    assert (contact.photo, warnings) == (PHOTO24, [])


def test_a_blank_line_ends_the_base64_state() -> None:
    text = _card("FN:A", "PHOTO;ENCODING=BASE64:" + ENC24[:16], ENC24[16:], "", "ABCD")
    contact, warnings = _one(text)
    assert contact.photo == PHOTO24
    assert warnings == ["x.vcf: card 1 'A': line 7: unreadable line ignored: 'ABCD'"]


def test_base64_in_a_value_does_not_start_the_state() -> None:
    contact, warnings = _one(_card("FN:A", "NOTE:base64", "ABCD"))
    assert contact.notes == "base64"
    assert warnings == ["x.vcf: card 1 'A': line 5: unreadable line ignored: 'ABCD'"]


# ------------------------------------------------------------ names, escapes, first wins


@pytest.mark.parametrize(
    ("lines", "name"),
    [
        (["FN:Ann", "FN:Bob"], "Ann"),
        (["FN:", "FN:Bob"], "Bob"),
        (["N:Lee;Ann", "N:Ray;Bo"], "Ann Lee"),
        (["N:;;;;", "N:Ray;Bo"], "Bo Ray"),
        (["ORG:Acme", "ORG:Beta"], "Acme"),
        (["ORG:;Unit", "ORG:Beta"], "Beta"),
        (["EMAIL:a@x.org", "EMAIL:b@x.org"], "a@x.org"),
        (["N:Lee;Ann;;;;extra"], "Ann Lee"),  # a sixth component is ignored
        ([r"N:O\,Brien;Pat"], "Pat O,Brien"),  # an escaped comma is not a list separator
        ([r"N:O\;Brien;Pat"], "Pat O;Brien"),  # an escaped semicolon is not a component separator
        ([r"ORG:R\;D;Unit"], "R;D"),
    ],
)
def test_the_first_usable_name_wins(lines: list[str], name: str) -> None:
    assert _one(_card(*lines))[0].name == name


def test_valid_email_is_a_bool() -> None:
    assert valid_email("a@x.org") is True
    assert valid_email("not an address") is False


# ------------------------------------------------------------ photos


def test_the_first_readable_photo_wins() -> None:
    jpeg = b"\xff\xd8\xff" + bytes(9)
    first, _ = _one(
        _card("FN:A", "PHOTO;ENCODING=b:" + b64(PHOTO24), "PHOTO;ENCODING=b:" + b64(jpeg))
    )
    second, _ = _one(_card("FN:A", "PHOTO:http://x.org/p.png", "PHOTO;ENCODING=b:" + b64(jpeg)))
    assert (first.photo, second.photo) == (PHOTO24, jpeg)


@pytest.mark.parametrize(("size", "kept"), [(MAX_PHOTO_BYTES, True), (MAX_PHOTO_BYTES + 1, False)])
def test_inline_photo_size_bound(size: int, kept: bool) -> None:
    contact, warnings = _one(_card("FN:A", "PHOTO;ENCODING=b:" + b64(png(size))))
    assert (contact.photo is not None, warnings) == (
        (True, []) if kept else (False, ["x.vcf: card 1 'A': photo larger than 10 MiB dropped"])
    )


@pytest.mark.parametrize(("size", "kept"), [(MAX_PHOTO_BYTES, True), (MAX_PHOTO_BYTES + 1, False)])
def test_photo_file_size_bound(tmp_path: Path, size: int, kept: bool) -> None:
    (tmp_path / "p.png").write_bytes(png(size))
    contact, warnings = _one(_card("FN:A", "PHOTO:p.png"), base_dir=tmp_path)
    assert (contact.photo is not None, warnings) == (
        (True, [])
        if kept
        else (False, ["x.vcf: card 1 'A': photo file 'p.png' is too large; dropped"])
    )


# base64 of png(191) is 255 characters, of png(192) 256: inline data without an
# ENCODING parameter is recognised only past 255 characters (else it is a path).
@pytest.mark.parametrize(("size", "chars"), [(191, 255), (192, 256)])
def test_inline_base64_without_encoding_starts_past_255(size: int, chars: int) -> None:
    value = b64(png(size)).rstrip("=")
    assert len(value) == chars
    contact, warnings = _one(_card("FN:A", "PHOTO:" + value))
    if chars == 255:
        shown = value[:120]
        assert contact.photo is None
        assert warnings == [
            f"x.vcf: card 1 'A': relative photo path '{shown}' ignored (no base folder)"
        ]
    else:
        assert (contact.photo, warnings) == (png(size), [])


@pytest.mark.parametrize(
    ("value", "photo"),
    [
        # base64 of png(22) is 30 characters: 2 '=' of padding missing
        ("PHOTO;ENCODING=b:" + b64(png(22)).rstrip("="), png(22)),
        # base64 of png(13) is 18 characters: 2 '=' missing
        ("PHOTO;ENCODING=b:" + b64(png(13)).rstrip("="), png(13)),
        # characters outside the alphabet are skipped, as lenient readers do
        ("PHOTO;ENCODING=b:" + b64(PHOTO24) + "!", PHOTO24),
        # a data: URI without a media type
        ("PHOTO:data:;base64," + b64(PHOTO24), PHOTO24),
    ],
)
def test_inline_photo_decoding(value: str, photo: bytes) -> None:
    contact, warnings = _one(_card("FN:A", value))
    assert (contact.photo, warnings) == (photo, [])


URL81 = "http://x.org/" + "p" * 68
HOST81 = "file://h/" + "p" * 72


@pytest.mark.parametrize(
    ("value", "warning"),
    [
        ("PHOTO:" + URL81, f"photo at {URL81[:80]} not fetched (only local files are read)"),
        ("PHOTO:" + HOST81, f"photo on another host ({HOST81[:80]}) not read"),
        ("PHOTO:" + "r" * 121, f"relative photo path '{'r' * 120}' ignored (no base folder)"),
        ("PHOTO:abcd", "relative photo path 'abcd' ignored (no base folder)"),
        (
            "PHOTO:file:///" + "x" * 300,
            f"photo file '/{'x' * 119}' unreadable (File name too long)",
        ),
    ],
)
def test_photo_warnings_quote_a_bounded_length(value: str, warning: str) -> None:
    assert len(URL81) == len(HOST81) == 81
    contact, warnings = _one(_card("FN:A", value))
    assert (contact.photo, warnings) == (None, [f"x.vcf: card 1 'A': {warning}"])


def test_fold_a_non_ascii_line_of_76_octets() -> None:
    assert fold("a" * 74 + "é") == "a" * 74 + "\r\n é"
