"""vCard parsing and export: real text in, contacts out (no store involved)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hello_tui.contacts.model import Contact, ContactError
from hello_tui.contacts.vcard import Skip, export_vcards, parse_vcards

DATA = Path(__file__).resolve().parent.parent / "data" / "contacts"
JPEG = (DATA / "tiny.jpg").read_bytes()
PNG = (DATA / "tiny.png").read_bytes()
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def vcf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


def card(*props: str, version: str = "3.0") -> str:
    return vcf("BEGIN:VCARD", f"VERSION:{version}", *props, "END:VCARD")


def parse(text: str | bytes, base_dir: Path | None = None):
    return parse_vcards(text, source="test.vcf", base_dir=base_dir)


def folded(line: str, width: int = 20) -> str:
    """Fold ``line`` every ``width`` characters, as a vCard writer would."""
    return "\r\n ".join(line[i : i + width] for i in range(0, len(line), width))


# --------------------------------------------------------------------------- basics


def test_several_cards_with_all_simple_fields() -> None:
    text = (
        card(
            "FN:Ada Lovelace",
            "N:Lovelace;Ada;;;",
            "EMAIL;TYPE=INTERNET,HOME:ada@example.org",
            "EMAIL;TYPE=WORK:ada@work.example",
            "TEL;TYPE=CELL:+44 20 7946 0000",
            "TEL;TYPE=HOME:+44 20 7946 0001",
            "NOTE:Analyst\\, poet\\; first programmer\\nLondon",
        )
        + card("FN:Grace Hopper", "EMAIL:grace@example.org")
        + card("FN:Alan Turing", "TEL:+44 161 000")
    )
    result = parse(text)
    assert result.skipped == []
    assert [c.name for c in result.contacts] == ["Ada Lovelace", "Grace Hopper", "Alan Turing"]
    ada = result.contacts[0]
    assert ada.emails == ["ada@example.org", "ada@work.example"]
    assert ada.phones == ["+44 20 7946 0000", "+44 20 7946 0001"]
    assert ada.notes == "Analyst, poet; first programmer\nLondon"
    assert result.contacts[2].emails == []
    assert result.contacts[2].phones == ["+44 161 000"]


def test_folded_lines_are_unfolded_including_multibyte_text() -> None:
    note = "Rendez-vous à la gare de Lyon, près du café — ne pas oublier les clés"
    text = card(
        folded("FN:Élodie Martin-Dupont de la Tour", 9),
        folded("NOTE:" + note.replace(",", "\\,"), 7),
    )
    (contact,) = parse(text.encode("utf-8")).contacts
    assert contact.name == "Élodie Martin-Dupont de la Tour"
    assert contact.notes == note


def test_vcard_4_properties_and_uri_values() -> None:
    text = card(
        "FN:Bob Example",
        "EMAIL;TYPE=work;PREF=1:mailto:bob@example.org",
        'TEL;VALUE=uri;TYPE="voice,cell":tel:+1-555-555-0100',
        "NOTE:written by a sloppy exporter, with a raw comma",
        version="4.0",
    )
    (bob,) = parse(text).contacts
    assert bob.emails == ["bob@example.org"]
    assert bob.phones == ["+1-555-555-0100"]
    # vobject's 3.0 behaviour would cut this at the comma; we keep it whole.
    assert bob.notes == "written by a sloppy exporter, with a raw comma"


def test_name_fallbacks_fn_then_n_then_org_then_email() -> None:
    text = (
        card("FN:  ", "N:Curie;Marie;Salomea,Skłodowska;Dr.;", "EMAIL:m@example.org")
        + card("ORG:Acme Corp;Research", "EMAIL:info@acme.example")
        + card("EMAIL:nobody@example.org")
    )
    names = [c.name for c in parse(text).contacts]
    assert names == ["Dr. Marie Salomea Skłodowska Curie", "Acme Corp", "nobody@example.org"]


def test_apple_style_grouped_properties() -> None:
    text = card(
        "FN:Grouped",
        "item1.EMAIL;type=INTERNET;type=pref:g@example.org",
        "item1.X-ABLabel:_$!<Other>!$_",
        "item2.TEL:+33 1 00 00 00 00",
    )
    (contact,) = parse(text).contacts
    assert contact.emails == ["g@example.org"]
    assert contact.phones == ["+33 1 00 00 00 00"]


def test_duplicate_values_within_a_card_are_dropped_and_bad_emails_warned() -> None:
    text = card(
        "FN:Dup",
        "EMAIL:dup@example.org",
        "EMAIL:DUP@Example.org",
        "EMAIL:not an address",
        "TEL:+33 6 12 34 56 78",
        "TEL:+33612345678",
    )
    result = parse(text)
    (contact,) = result.contacts
    assert contact.emails == ["dup@example.org"]
    assert contact.phones == ["+33 6 12 34 56 78"]
    assert any("'not an address'" in w and "card 1 'Dup'" in w for w in result.warnings)


def test_favourite_and_blocked_flags() -> None:
    text = (
        card("FN:Starred", "CATEGORIES:friends,Starred")
        + card("FN:Fav", "X-HELLO-FAVORITE:TRUE")
        + card("FN:Blocked", "X-HELLO-BLOCKED:true")
        + card("FN:Plain", "CATEGORIES:work", "X-HELLO-FAVORITE:false")
    )
    flags = {c.name: (c.favourite, c.blocked) for c in parse(text).contacts}
    assert flags == {
        "Starred": (True, False),
        "Fav": (True, False),
        "Blocked": (False, True),
        "Plain": (False, False),
    }


# --------------------------------------------------------------------------- photos


def test_inline_photo_vcard3_base64_folded() -> None:
    b64 = base64.b64encode(JPEG).decode()
    (contact,) = parse(card("FN:Pic", folded("PHOTO;ENCODING=b;TYPE=JPEG:" + b64, 74))).contacts
    assert contact.photo == JPEG


def test_inline_photo_vcard21_base64_singleton_params() -> None:
    b64 = base64.b64encode(PNG).decode()
    text = card("FN:Old Phone", "PHOTO;PNG;ENCODING=BASE64:", "  " + b64, "", version="2.1")
    (contact,) = parse(text).contacts
    assert contact.photo == PNG


def test_inline_photo_vcard21_unindented_base64_lines() -> None:
    b64 = base64.b64encode(JPEG).decode()
    chunks = [b64[i : i + 60] for i in range(0, len(b64), 60)]
    text = card(
        "FN:Nokia", "PHOTO;ENCODING=BASE64;TYPE=JPEG:", *chunks, "", "TEL:+358 1", version="2.1"
    )
    (contact,) = parse(text).contacts
    assert contact.photo == JPEG
    assert contact.phones == ["+358 1"]


def test_contact_groups_are_skipped() -> None:
    text = card("FN:Friends", "KIND:group", "MEMBER:urn:uuid:1234", version="4.0") + card(
        "FN:Apple Group", "X-ADDRESSBOOKSERVER-KIND:group"
    )
    result = parse(text)
    assert result.contacts == []
    assert [(s.index, s.name, s.reason) for s in result.skipped] == [
        (1, "Friends", "a contact group, not a contact"),
        (2, "Apple Group", "a contact group, not a contact"),
    ]


def test_inline_photo_vcard4_data_uri() -> None:
    b64 = base64.b64encode(PNG).decode()
    text = card("FN:Pic4", folded(f"PHOTO:data:image/png;base64,{b64}", 30), version="4.0")
    (contact,) = parse(text).contacts
    assert contact.photo == PNG


def test_inline_photo_missing_its_encoding_parameter() -> None:
    b64 = base64.b64encode(JPEG).decode()
    (contact,) = parse(card("FN:Sloppy", folded("PHOTO;TYPE=JPEG:" + b64, 70))).contacts
    assert contact.photo == JPEG


def test_photo_from_file_uri_and_relative_path(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "ada face.jpg").write_bytes(JPEG)
    (tmp_path / "grace.png").write_bytes(PNG)
    uri = (tmp_path / "pics" / "ada face.jpg").as_uri()  # percent-encodes the space
    text = card("FN:Ada", f"PHOTO;VALUE=uri:{uri}") + card("FN:Grace", "PHOTO;VALUE=uri:grace.png")
    ada, grace = parse(text, base_dir=tmp_path).contacts
    assert ada.photo == JPEG
    assert grace.photo == PNG


def test_missing_photo_file_and_relative_path_without_base_dir_warn(tmp_path: Path) -> None:
    text = card("FN:Gone", "PHOTO;VALUE=uri:nothere.jpg")
    result = parse(text, base_dir=tmp_path)
    assert result.contacts[0].photo is None
    assert any("not found" in w for w in result.warnings)
    result = parse(text, base_dir=None)
    assert result.contacts[0].photo is None
    assert any("no base folder" in w for w in result.warnings)


def test_remote_photo_is_never_fetched() -> None:
    text = card("FN:Remote", "PHOTO;VALUE=uri:https://example.org/face.jpg", version="4.0")
    result = parse(text)
    assert result.contacts[0].name == "Remote"
    assert result.contacts[0].photo is None
    assert any("not fetched" in w and "https://example.org/face.jpg" in w for w in result.warnings)


def test_non_image_photo_is_dropped_but_contact_kept(tmp_path: Path) -> None:
    (tmp_path / "doc.png").write_bytes(b"%PDF-1.4 not an image")
    text = card("FN:Gif", "PHOTO;ENCODING=b;TYPE=GIF:" + base64.b64encode(GIF).decode()) + card(
        "FN:Pdf", "PHOTO;VALUE=uri:doc.png"
    )
    result = parse(text, base_dir=tmp_path)
    assert [(c.name, c.photo) for c in result.contacts] == [("Gif", None), ("Pdf", None)]
    dropped = [w for w in result.warnings if "not a PNG or JPEG" in w]
    assert len(dropped) == 2
    assert "card 1 'Gif'" in dropped[0]


# --------------------------------------------------------------------------- encodings


def test_latin1_file_is_decoded() -> None:
    data = card("FN:Élodie Müller", "NOTE:Straße ñ", "EMAIL:elodie@example.org").encode("latin-1")
    result = parse(data)
    (contact,) = result.contacts
    assert contact.name == "Élodie Müller"
    assert contact.notes == "Straße ñ"
    assert any("not valid UTF-8" in w for w in result.warnings)


def test_cp1252_specific_characters() -> None:
    data = card("FN:Zoë “Quotes”", "NOTE:costs 5 €").encode("cp1252")
    (contact,) = parse(data).contacts
    assert contact.name == "Zoë “Quotes”"
    assert contact.notes == "costs 5 €"


def test_utf8_bom_and_utf16() -> None:
    text = card("FN:Bom Ñame", "EMAIL:bom@example.org")
    assert parse(b"\xef\xbb\xbf" + text.encode()).contacts[0].name == "Bom Ñame"
    assert parse(text.encode("utf-16")).contacts[0].name == "Bom Ñame"


def test_quoted_printable_vcard21() -> None:
    text = vcf(
        "BEGIN:VCARD",
        "VERSION:2.1",
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=C3=BCrgen;;;",
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:J=C3=BCrgen M=C3=BCller",
        "NOTE;ENCODING=QUOTED-PRINTABLE;CHARSET=ISO-8859-1:Gr=FC=DFe aus K=F6ln,=0D=0Azweite =",
        "Zeile",
        "TEL;CELL:+49 30 123456",
        "EMAIL;INTERNET:juergen@example.de",
        "END:VCARD",
    )
    (contact,) = parse(text).contacts
    assert contact.name == "Jürgen Müller"
    assert contact.notes == "Grüße aus Köln,\nzweite Zeile"
    assert contact.phones == ["+49 30 123456"]
    assert contact.emails == ["juergen@example.de"]


# --------------------------------------------------------------------------- broken input


def test_broken_cards_are_skipped_with_reasons_and_others_imported() -> None:
    text = (
        card("FN:First", "EMAIL:first@example.org")  # lines 1-5
        + vcf("BEGIN:VCARD", "VERSION:3.0", "FN:Truncated", "EMAIL:t@example.org")  # 6-9
        + card("FN:Third", "EMAIL:third@example.org")  # 10-14
        + card("TEL:+1 555 0100", "NOTE:nameless")  # 15-19
        + card("FN:Fifth", "this line is garbage", "EMAIL:fifth@example.org")  # 20-25
        + card("FN:Sixth", "NOTE;CHARSET=NO-SUCH-CHARSET;ENCODING=QUOTED-PRINTABLE:=41")
        + card("FN:Last", "EMAIL:last@example.org")
    )
    result = parse(text)
    assert [c.name for c in result.contacts] == ["First", "Third", "Fifth", "Last"]
    assert result.contacts[2].emails == ["fifth@example.org"]
    assert any("line 23: unreadable line ignored" in w for w in result.warnings)
    skipped = {s.index: s for s in result.skipped}
    assert set(skipped) == {2, 4, 6}
    assert str(skipped[2]) == "card 2 (line 6) 'Truncated': missing END:VCARD"
    assert skipped[4].reason == "no name and no e-mail"
    assert skipped[4].line == 15
    assert skipped[6].name == "Sixth"
    assert skipped[6].reason.startswith("unreadable card")


def test_missing_end_at_end_of_file() -> None:
    text = card("FN:Ok") + vcf("BEGIN:VCARD", "VERSION:3.0", "FN:Cut off")
    result = parse(text)
    assert [c.name for c in result.contacts] == ["Ok"]
    assert result.skipped == [Skip(2, "missing END:VCARD", line=5, name="Cut off")]


def test_text_between_cards_is_ignored_with_a_warning() -> None:
    text = "junk before\r\n" + card("FN:A") + "more junk\r\n" + card("FN:B")
    result = parse(text)
    assert [c.name for c in result.contacts] == ["A", "B"]
    assert any("line 1: text outside any vCard" in w for w in result.warnings)
    assert any("line 6: text outside any vCard" in w for w in result.warnings)


def test_garbage_file_raises_naming_the_file() -> None:
    with pytest.raises(ContactError, match=r"^test\.vcf: no vCard found"):
        parse(b"\x00\x01 this is not a vcard\nat all\n")


def test_empty_file_is_an_empty_result() -> None:
    result = parse(b"  \r\n")
    assert result.contacts == [] and result.skipped == []


# --------------------------------------------------------------------------- export


def tricky_contacts() -> list[Contact]:
    return [
        Contact(
            name="Élodie Martin-Ñoño 😀",
            emails=["elodie@example.org", "E.Martin@Work.example"],
            phones=["+33 6 12 34 56 78", "0800 123 456"],
            notes="Line one, with comma; and semicolon\nLine two \\ backslash: colon\n  "
            + "long " * 40
            + "€ end  ",
            photo=JPEG,
            favourite=True,
        ),
        Contact(name="Plain", emails=["plain@example.org"], blocked=True),
        Contact(name="Pngface", phones=["12"], photo=PNG),
        Contact(name="Solo"),
    ]


def _essentials(c: Contact) -> tuple[object, ...]:
    return (c.name, c.emails, c.phones, c.notes, c.photo, c.favourite, c.blocked)


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_round_trip_loses_nothing(version: str) -> None:
    contacts = tricky_contacts()
    text = export_vcards(contacts, lambda c: c.photo, version=version)
    assert text.count("BEGIN:VCARD") == 4
    assert f"VERSION:{version}" in text
    result = parse(text.encode("utf-8"))
    assert result.skipped == [] and result.warnings == []
    assert [_essentials(c) for c in result.contacts] == [_essentials(c) for c in contacts]


@pytest.mark.parametrize("version", ["3.0", "4.0"])
def test_export_is_crlf_folded_at_75_octets(version: str) -> None:
    text = export_vcards(tricky_contacts(), lambda c: c.photo, version=version)
    assert text.endswith("END:VCARD\r\n")
    lines = text.split("\r\n")
    assert all("\n" not in line and "\r" not in line for line in lines)
    assert max(len(line.encode("utf-8")) for line in lines) <= 75
    if version == "4.0":
        assert "PHOTO:data:image/jpeg;base64," in text
    else:
        assert "PHOTO;ENCODING=b;TYPE=JPEG:" in text


def test_export_uses_photo_callback_and_rejects_unknown_version() -> None:
    contact = Contact(name="Via Callback", photo_path="/somewhere/face.png")
    text = export_vcards([contact], lambda c: PNG)
    assert parse(text).contacts[0].photo == PNG
    with pytest.raises(ValueError, match=r"2\.1"):
        export_vcards([contact], lambda c: None, version="2.1")
