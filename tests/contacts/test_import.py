"""import_file / merge_into / export_file against both real backends."""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from hello_tui.contacts.importer import (
    ImportReport,
    export_file,
    export_text,
    import_file,
    merge_into,
)
from hello_tui.contacts.model import Contact, ContactError
from hello_tui.contacts.sqlite_store import SqliteContactStore
from hello_tui.contacts.store import ContactStore
from hello_tui.contacts.toml_store import TomlContactStore
from hello_tui.contacts.vcard import ParseResult, parse_vcards

DATA = Path(__file__).resolve().parent.parent / "data" / "contacts"
JPEG = (DATA / "tiny.jpg").read_bytes()
PNG = (DATA / "tiny.png").read_bytes()


class CountingToml(TomlContactStore):
    """The real TOML store, counting save_many calls (the one-write promise)."""

    save_calls = 0

    def save_many(self, contacts: Iterable[Contact]) -> None:
        self.save_calls += 1
        super().save_many(contacts)


class CountingSqlite(SqliteContactStore):
    save_calls = 0

    def save_many(self, contacts: Iterable[Contact]) -> None:
        self.save_calls += 1
        super().save_many(contacts)


@pytest.fixture(params=["toml", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContactStore]:
    if request.param == "toml":
        opened: ContactStore = CountingToml(tmp_path / "store" / "contacts.toml")
    else:
        (tmp_path / "store").mkdir()
        opened = CountingSqlite(tmp_path / "store" / "contacts.db")
    with opened:
        yield opened


def vcf(*cards: list[str]) -> str:
    return "".join(
        "\r\n".join(["BEGIN:VCARD", "VERSION:3.0", *props, "END:VCARD"]) + "\r\n" for props in cards
    )


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def by_name(store: ContactStore) -> dict[str, Contact]:
    return {c.name: c for c in store.all()}


# --------------------------------------------------------------------------- import


def test_import_counts_and_summary(store: ContactStore, tmp_path: Path) -> None:
    path = write(
        tmp_path / "contacts.vcf",
        vcf(
            ["FN:Ada", "EMAIL:ada@example.org"],
            ["FN:Grace", "EMAIL:grace@example.org", "TEL:+1 555 0100"],
            ["NOTE:no name"],
            ["FN:Ada Again", "EMAIL:ADA@example.org", "TEL:+44 20 0000"],
        ),
    )
    report = import_file(store, path)
    assert (report.added, report.merged, report.unchanged) == (2, 1, 0)
    assert [s.index for s in report.skipped] == [3]
    assert report.summary() == "imported contacts.vcf: 2 added, 1 merged, 1 skipped"
    assert store.count() == 2
    assert store.save_calls == 1  # type: ignore[attr-defined]


def test_duplicates_within_the_file_are_merged(store: ContactStore, tmp_path: Path) -> None:
    photo = base64.b64encode(JPEG).decode()
    path = write(
        tmp_path / "dups.vcf",
        vcf(
            ["FN:Élodie Martin", "EMAIL:elodie@example.org", "TEL:+33 6 12 34 56 78"],
            [
                "FN:E. Martin",
                "EMAIL:Elodie@Example.org",
                "EMAIL:elodie@work.example",
                "TEL:+33612345678",
                "TEL:+33 1 00 00 00 00",
                "NOTE:met at FOSDEM",
                f"PHOTO;ENCODING=b;TYPE=JPEG:{photo}",
                "CATEGORIES:starred",
            ],
            ["FN:Third Copy", "EMAIL:elodie@work.example", "NOTE:ignored: notes already set"],
        ),
    )
    report = import_file(store, path)
    assert (report.added, report.merged, report.unchanged) == (1, 2, 1)
    (elodie,) = store.all()
    assert elodie.name == "Élodie Martin"  # the first card's name is kept
    assert elodie.emails == ["elodie@example.org", "elodie@work.example"]
    assert elodie.phones == ["+33 6 12 34 56 78", "+33 1 00 00 00 00"]
    assert elodie.notes == "met at FOSDEM"
    assert elodie.favourite is True
    assert store.photo_bytes(elodie) == JPEG


def test_duplicates_against_the_store_are_merged(store: ContactStore, tmp_path: Path) -> None:
    existing = store.add(
        Contact(name="Ada Lovelace", emails=["ada@example.org"], phones=["1"], notes="mine")
    )
    bare = store.add(Contact(name="Grace Hopper", emails=["grace@example.org"], photo=PNG))
    path = write(
        tmp_path / "in.vcf",
        vcf(
            ["FN:Countess", "EMAIL:ADA@EXAMPLE.ORG", "TEL:2", "NOTE:theirs", "X-HELLO-FAVORITE:1"],
            [
                "FN:Amazing Grace",
                "EMAIL:grace@example.org",
                "NOTE:filled in",
                f"PHOTO;ENCODING=b;TYPE=JPEG:{base64.b64encode(JPEG).decode()}",
            ],
            ["FN:New Person", "EMAIL:new@example.org"],
        ),
    )
    report = import_file(store, path)
    assert (report.added, report.merged, report.unchanged) == (1, 2, 0)
    assert store.count() == 3
    ada = store.get(existing.id)
    assert (ada.name, ada.emails, ada.phones, ada.notes, ada.favourite) == (
        "Ada Lovelace",
        ["ada@example.org"],
        ["1", "2"],
        "mine",  # existing notes are never overwritten
        True,
    )
    grace = store.get(bare.id)
    assert grace.name == "Grace Hopper"
    assert grace.notes == "filled in"
    assert store.photo_bytes(grace) == PNG  # an existing photo is kept


def test_reimporting_the_same_file_changes_nothing(store: ContactStore, tmp_path: Path) -> None:
    path = write(
        tmp_path / "same.vcf",
        vcf(["FN:A", "EMAIL:a@example.org"], ["FN:B", "TEL:123"], ["FN:C", "EMAIL:c@example.org"]),
    )
    import_file(store, path)
    before = {c.id: (c.name, c.emails, c.phones, c.updated) for c in store.all()}
    report = import_file(store, path)
    assert (report.added, report.merged, report.unchanged) == (0, 3, 3)
    assert report.summary() == (
        "imported same.vcf: 0 added, 3 merged, 0 skipped (3 already up to date)"
    )
    assert {c.id: (c.name, c.emails, c.phones, c.updated) for c in store.all()} == before
    assert store.save_calls == 1  # type: ignore[attr-defined]  # nothing to write the 2nd time


def test_contacts_without_email_dedupe_on_folded_name_and_phones(
    store: ContactStore, tmp_path: Path
) -> None:
    store.add(Contact(name="Élodie  Martin", phones=["+33 6 12 34 56 78"]))
    path = write(
        tmp_path / "noemail.vcf",
        vcf(
            ["FN:ELODIE MARTIN", "TEL:+33612345678", "NOTE:same person"],
            ["FN:Elodie Martin", "TEL:+33 1 99"],  # other phone: a different entry
            ["FN:Plumber"],
            ["FN:plumber", "NOTE:same as the one above"],
        ),
    )
    report = import_file(store, path)
    assert (report.added, report.merged) == (2, 2)
    contacts = store.all()
    assert len(contacts) == 3
    merged = [c for c in contacts if c.phones == ["+33 6 12 34 56 78"]]
    assert merged[0].name == "Élodie  Martin" and merged[0].notes == "same person"
    assert [c.notes for c in contacts if c.name == "Plumber"] == ["same as the one above"]


def test_an_address_owned_by_another_contact_is_not_taken(
    store: ContactStore, tmp_path: Path
) -> None:
    store.add(Contact(name="Alice", emails=["alice@example.org"]))
    store.add(Contact(name="Bob", emails=["bob@example.org"]))
    path = write(
        tmp_path / "x.vcf", vcf(["FN:Both", "EMAIL:alice@example.org", "EMAIL:bob@example.org"])
    )
    report = import_file(store, path)
    assert (report.added, report.merged, report.unchanged) == (0, 1, 1)
    assert any("bob@example.org already belongs to 'Bob'" in w for w in report.warnings)
    assert by_name(store)["Alice"].emails == ["alice@example.org"]
    assert store.find_by_email("bob@example.org").name == "Bob"  # type: ignore[union-attr]


def test_broken_card_in_the_middle(store: ContactStore, tmp_path: Path) -> None:
    text = (
        vcf(["FN:One", "EMAIL:one@example.org"])
        + "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Broken\r\n"
        + vcf(["FN:Two", "EMAIL:two@example.org"])
    )
    report = import_file(store, write(tmp_path / "b.vcf", text))
    assert sorted(by_name(store)) == ["One", "Two"]
    assert [str(s) for s in report.skipped] == ["card 2 (line 6) 'Broken': missing END:VCARD"]


def test_ten_thousand_cards_are_one_write(store: ContactStore, tmp_path: Path) -> None:
    cards = [[f"FN:Person {i}", f"EMAIL:p{i % 9000}@example.org"] for i in range(10_000)]
    report = import_file(store, write(tmp_path / "big.vcf", vcf(*cards)))
    assert (report.added, report.merged, report.unchanged) == (9000, 1000, 1000)
    assert store.count() == 9000
    assert store.save_calls == 1  # type: ignore[attr-defined]


def test_merge_into_takes_a_parse_result(store: ContactStore) -> None:
    parsed = parse_vcards(vcf(["FN:Direct", "EMAIL:d@example.org"]), source="mem.vcf")
    report = merge_into(store, parsed)
    assert isinstance(report, ImportReport)
    assert report.summary() == "imported mem.vcf: 1 added, 0 merged, 0 skipped"
    empty = merge_into(store, ParseResult(source="nothing.vcf"))
    assert (empty.added, store.count()) == (0, 1)
    assert store.save_calls == 1  # type: ignore[attr-defined]  # nothing to save: no write


# --------------------------------------------------------------------------- formats


def test_format_from_extension_content_or_argument(store: ContactStore, tmp_path: Path) -> None:
    card = vcf(["FN:Vee", "EMAIL:v@example.org"])
    csv_text = "First Name,Last Name,E-mail 1 - Value\r\nCee,Ess,c@example.org\r\n"
    assert import_file(store, write(tmp_path / "a.vcard", card)).added == 1
    assert import_file(store, write(tmp_path / "sniffed.txt", csv_text)).added == 1
    assert (
        import_file(store, write(tmp_path / "sniffed.dat", card.replace("Vee", "V"))).unchanged == 1
    )
    forced = write(tmp_path / "export.data", csv_text.replace("Cee", "Dee").replace("c@", "d@"))
    assert import_file(store, forced, fmt="csv").added == 1
    assert sorted(by_name(store)) == ["Cee Ess", "Dee Ess", "Vee"]


def test_photo_relative_to_the_vcard_file(store: ContactStore, tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "ada.png").write_bytes(PNG)
    path = write(tmp_path / "with-photo.vcf", vcf(["FN:Ada", "PHOTO;VALUE=uri:pics/ada.png"]))
    assert import_file(store, path).added == 1
    assert store.photo_bytes(store.all()[0]) == PNG


@pytest.mark.parametrize(
    ("name", "content", "fmt", "message"),
    [
        ("missing.vcf", None, None, "cannot read"),
        ("garbage.vcf", b"hello\nworld\n", None, "no vCard found"),
        ("garbage.bin", b"\x00\x01\x02 random", None, "unknown contacts format"),
        ("table.csv", b"Date,Amount\n2024,1\n", None, "not a Google Contacts CSV"),
        ("ok.vcf", b"BEGIN:VCARD\nFN:x\nEND:VCARD\n", "ldif", "unknown import format 'ldif'"),
    ],
)
def test_unreadable_or_unknown_files_name_the_file(
    store: ContactStore,
    tmp_path: Path,
    name: str,
    content: bytes | None,
    fmt: str | None,
    message: str,
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ContactError) as caught:
        import_file(store, path, fmt=fmt)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert store.count() == 0


def test_a_directory_is_an_unreadable_file(store: ContactStore, tmp_path: Path) -> None:
    with pytest.raises(ContactError, match="cannot read"):
        import_file(store, tmp_path)


# --------------------------------------------------------------------------- export


def sample(store: ContactStore) -> None:
    store.save_many(
        [
            Contact(
                name="Élodie Martin",
                emails=["e@example.org", "e2@example.org"],
                phones=["+33 6 12 34 56 78", "+33 1 00"],
                notes="Notes, with; all\nthe \\ tricky bits — ✓",
                photo=JPEG,
                favourite=True,
            ),
            Contact(name="Blocked Guy", emails=["spam@example.org"], blocked=True),
            Contact(name="Png", phones=["42"], photo=PNG),
        ]
    )


def essentials(store: ContactStore, *, photos: bool = True) -> list[tuple[object, ...]]:
    return sorted(
        (
            c.name,
            c.emails,
            c.phones,
            c.notes,
            c.favourite,
            c.blocked,
            store.photo_bytes(c) if photos else None,
        )
        for c in store.all()
    )


@pytest.mark.parametrize(
    ("filename", "version", "photos"),
    [("out.vcf", "3.0", True), ("out.vcard", "4.0", True), ("out.csv", "3.0", False)],
)
def test_export_then_import_into_a_fresh_store_loses_nothing(
    store: ContactStore, tmp_path: Path, filename: str, version: str, photos: bool
) -> None:
    sample(store)
    out = tmp_path / filename
    assert export_file(store, out, vcard_version=version) == 3
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # contacts are private
    text = out.read_text(encoding="utf-8")
    if filename.endswith("csv"):
        assert text.startswith("First Name,Middle Name,Last Name,")
    else:
        assert text.count(f"VERSION:{version}") == 3
    with TomlContactStore(tmp_path / "fresh" / "contacts.toml") as fresh:
        report = import_file(fresh, out)
        assert (report.added, report.skipped, report.warnings) == (3, [], [])
        assert essentials(fresh, photos=photos) == essentials(store, photos=photos)


def test_export_unknown_format_names_the_file(store: ContactStore, tmp_path: Path) -> None:
    with pytest.raises(ContactError, match=r"out\.ldif: cannot tell the export format"):
        export_file(store, tmp_path / "out.ldif")
    with pytest.raises(ContactError, match=r"out\.ldif: unknown export format 'ldif'"):
        export_file(store, tmp_path / "out.ldif", "ldif")
    with pytest.raises(ContactError, match=r"out\.vcf: unknown vCard version '2\.1'"):
        export_file(store, tmp_path / "out.vcf", vcard_version="2.1")
    assert not (tmp_path / "out.ldif").exists() and not (tmp_path / "out.vcf").exists()


def test_export_text_and_report_dict(store: ContactStore, tmp_path: Path) -> None:
    sample(store)
    assert export_text(store, "vcard", "4.0").count("BEGIN:VCARD") == 3
    assert export_text(store, "csv").count("\r\n") == 4  # header + 3 rows
    path = write(tmp_path / "r.vcf", vcf(["FN:X", "EMAIL:e@example.org"], ["NOTE:nameless"]))
    report = import_file(store, path).to_dict()
    assert (report["added"], report["merged"], report["unchanged"]) == (0, 1, 1)
    assert report["skipped"] == [
        {
            "index": 2,
            "reason": "no name and no e-mail",
            "line": 6,
            "name": None,
            "kind": "card",
            "message": "card 2 (line 6): no name and no e-mail",
        }
    ]
