"""The contract of every contacts backend (run against TOML and SQLite), plus the
file-format guarantees specific to each."""

from __future__ import annotations

import multiprocessing
import random
import sqlite3
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from hello_tui.contacts import Contact, ContactError, ContactNotFound, ContactStore, open_store
from hello_tui.contacts.search import fold, sort_key
from hello_tui.contacts.sqlite_store import SCHEMA_VERSION, SqliteContactStore
from hello_tui.contacts.toml_store import TomlContactStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(64, 128))

Reopen = Callable[[], ContactStore]


def names(contacts: list[Contact]) -> list[str]:
    return [c.name for c in contacts]


# -- search keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Élodie", "elodie"),
        ("ÉLODIE", "elodie"),
        ("Straße", "strasse"),
        ("Zoë Łukasz", "zoe łukasz"),  # Ł has no decomposition: kept, lower-cased
        ("ﬁnn", "finn"),
        ("İpek", "ipek"),
        ("plain ascii", "plain ascii"),
    ],
)
def test_fold_ignores_case_and_accents(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_sort_key_favourites_then_folded_name_then_id() -> None:
    contacts = [
        Contact(name="zoë", id="a"),
        Contact(name="Émile", id="b"),
        Contact(name="Bob", id="c", favourite=True),
        Contact(name="emile", id="0"),
    ]
    assert [c.id for c in sorted(contacts, key=sort_key)] == ["c", "0", "b", "a"]


# -- basic CRUD -----------------------------------------------------------------------------


def test_add_then_get_returns_the_stored_contact(store: ContactStore) -> None:
    added = store.add(
        Contact(
            name="  Ada Lovelace ",
            emails=["ada@example.org"],
            phones=["+44 20 7946 0000"],
            notes="first line\nsecond line",
        )
    )
    assert added.name == "Ada Lovelace"  # trimmed
    got = store.get(added.id)
    assert got.name == "Ada Lovelace"
    assert got.emails == ["ada@example.org"]
    assert got.phones == ["+44 20 7946 0000"]
    assert got.notes == "first line\nsecond line"
    assert (got.favourite, got.blocked) == (False, False)
    assert store.count() == 1
    assert names(store.all()) == ["Ada Lovelace"]


def test_returned_contacts_are_copies(store: ContactStore) -> None:
    added = store.add(Contact(name="Ada", emails=["ada@example.org"]))
    store.get(added.id).emails.append("mutated@example.org")
    store.all()[0].emails.clear()
    assert store.get(added.id).emails == ["ada@example.org"]


def test_missing_ids_raise_contact_not_found(store: ContactStore) -> None:
    with pytest.raises(ContactNotFound):
        store.get("nope")
    with pytest.raises(ContactNotFound):
        store.delete("nope")
    with pytest.raises(ContactNotFound):
        store.update(Contact(name="Ghost", id="nope"))
    assert store.count() == 0


def test_add_rejects_an_existing_id(store: ContactStore) -> None:
    first = store.add(Contact(name="Ada"))
    with pytest.raises(ContactError, match="already exists"):
        store.add(Contact(name="Other", id=first.id))
    assert names(store.all()) == ["Ada"]


def test_update_replaces_and_bumps_updated(store: ContactStore) -> None:
    added = store.add(Contact(name="Ada", created=1_600_000_000.0, updated=1_600_000_000.0))
    before = time.time()
    store.update(added.copy(name="Ada King", emails=["ada@example.org"]))
    got = store.get(added.id)
    assert got.name == "Ada King"
    assert got.emails == ["ada@example.org"]
    assert got.created == pytest.approx(1_600_000_000.0)
    assert got.updated >= before - 1  # the TOML file keeps whole seconds
    assert store.count() == 1


def test_delete_removes_the_contact(store: ContactStore) -> None:
    keep = store.add(Contact(name="Keep"))
    gone = store.add(Contact(name="Gone"))
    store.delete(gone.id)
    with pytest.raises(ContactNotFound):
        store.get(gone.id)
    assert [c.id for c in store.all()] == [keep.id]


@pytest.mark.parametrize(
    ("contact", "message"),
    [
        (Contact(name="Bad", emails=["not-an-address"]), "invalid e-mail"),
        (Contact(name="Bad", emails=["two words@example.org"]), "invalid e-mail"),
        (Contact(name="   "), "non-empty"),
        (Contact(name=""), "non-empty"),
        (Contact(name="Bad", photo=b"GIF89a not allowed"), "not a PNG or JPEG"),
        (Contact(name="Bad", id="../escape"), "invalid contact id"),
    ],
)
def test_invalid_contacts_are_rejected(store: ContactStore, contact: Contact, message: str) -> None:
    with pytest.raises(ContactError, match=message):
        store.add(contact)
    assert store.count() == 0
    good = store.add(Contact(name="Good"))
    bad_update = contact if message == "invalid contact id" else contact.copy(id=good.id)
    with pytest.raises(ContactError, match=message):
        store.update(bad_update)
    assert store.get(good.id).name == "Good"


# -- blocking, favourites, order ------------------------------------------------------------


def test_block_and_unblock(store: ContactStore) -> None:
    spam = store.add(Contact(name="Spammer", emails=["spam@example.org"]))
    store.add(Contact(name="Friend"))
    assert store.set_blocked(spam.id).blocked is True
    assert store.get(spam.id).blocked is True
    assert names(store.all(include_blocked=False)) == ["Friend"]
    assert names(store.all()) == ["Friend", "Spammer"]
    assert store.search("spam", include_blocked=False) == []
    assert names(store.search("spam")) == ["Spammer"]
    store.set_blocked(spam.id, False)
    assert names(store.all(include_blocked=False)) == ["Friend", "Spammer"]


def test_favourites_come_first_then_names_ignoring_accents(store: ContactStore) -> None:
    for name in ["zoë", "Émile", "bob", "Anaïs", "Chloé"]:
        store.add(Contact(name=name))
    assert names(store.all()) == ["Anaïs", "bob", "Chloé", "Émile", "zoë"]
    zoe = next(c for c in store.all() if c.name == "zoë")
    assert store.set_favourite(zoe.id).favourite is True
    assert names(store.all()) == ["zoë", "Anaïs", "bob", "Chloé", "Émile"]
    store.set_favourite(zoe.id, False)
    assert names(store.all())[-1] == "zoë"


# -- search ---------------------------------------------------------------------------------


@pytest.fixture
def people(store: ContactStore) -> dict[str, Contact]:
    rows = [
        Contact(name="Elodie Martin", emails=["e.martin@example.org"]),
        Contact(name="élodie Durand", emails=["ELO.D@Posteo.example"]),
        Contact(name="Marc Dubois", emails=["marc@work.example", "mdubois@home.example"]),
        Contact(name="Zoë Lefèvre", emails=["zoe@example.org"], favourite=True),
        Contact(name="Blocked Elon", emails=["elon@spam.example"], blocked=True),
    ]
    return {c.name: store.add(c) for c in rows}


def test_search_ignores_accents_and_case(store: ContactStore, people: dict[str, Contact]) -> None:
    found = names(store.search("élodie"))
    assert found == ["élodie Durand", "Elodie Martin"]  # "elodie durand" < "elodie martin"
    assert names(store.search("Elodie")) == found
    assert names(store.search("ELODIE")) == found
    assert "élodie Durand" in names(store.search("ELO"))
    assert names(store.search("lefevre")) == ["Zoë Lefèvre"]
    assert names(store.search("ZOË")) == ["Zoë Lefèvre"]


def test_search_orders_favourites_first_then_by_folded_name(
    store: ContactStore, people: dict[str, Contact]
) -> None:
    # "e" is in every contact: the favourite leads, the rest by folded name.
    assert names(store.search("e")) == [
        "Zoë Lefèvre",
        "Blocked Elon",
        "élodie Durand",
        "Elodie Martin",
        "Marc Dubois",  # by e-mail: marc@work.example
    ]
    assert names(store.search("elo")) == ["Blocked Elon", "élodie Durand", "Elodie Martin"]


def test_search_matches_part_of_any_email(store: ContactStore, people: dict[str, Contact]) -> None:
    assert names(store.search("posteo")) == ["élodie Durand"]
    assert names(store.search("home.exa")) == ["Marc Dubois"]  # second address
    assert names(store.search("@example.org")) == ["Zoë Lefèvre", "Elodie Martin"]
    assert names(store.search("e.martin@")) == ["Elodie Martin"]


def test_search_excludes_blocked_on_request(
    store: ContactStore, people: dict[str, Contact]
) -> None:
    assert names(store.search("elon")) == ["Blocked Elon"]
    assert store.search("elon", include_blocked=False) == []
    assert "Blocked Elon" not in names(store.search("e", include_blocked=False))


def test_search_limit_empty_query_and_no_match(
    store: ContactStore, people: dict[str, Contact]
) -> None:
    assert names(store.search("e", limit=2)) == ["Zoë Lefèvre", "Blocked Elon"]
    assert names(store.search("")) == names(store.all())
    assert names(store.search("   ")) == names(store.all())
    assert store.search("xyzzy") == []
    assert store.search("q") == []
    assert store.search('"quoted"') == []  # FTS syntax is not interpreted
    assert store.search("e", limit=0) == []


def test_search_collapses_whitespace(store: ContactStore) -> None:
    store.add(Contact(name="Jean  Dupont"))  # double space typed by accident
    assert names(store.search(" jean dup")) == ["Jean  Dupont"]


def _random_book(n: int, seed: int) -> list[Contact]:
    rng = random.Random(seed)
    first = ["Élodie", "Elodie", "Zoë", "José", "Anaïs", "Marc", "Ana", "Léa", "Noël", "Björn"]
    last = ["Dupont", "Müller", "Lefèvre", "Garcia", "Nuñez", "Öztürk", "Martin", "Le Gall"]
    book = []
    for i in range(n):
        name = f"{rng.choice(first)} {rng.choice(last)}"
        local = fold(name).replace(" ", ".")
        book.append(
            Contact(
                name=name,
                emails=[f"{local}{i}@{rng.choice(['example.org', 'posteo.example'])}"],
                favourite=rng.random() < 0.05,
                blocked=rng.random() < 0.05,
            )
        )
    return book


def test_both_backends_return_identical_search_results(tmp_path: Path) -> None:
    """SQLite's index tricks (order-index walk, trigram index) must not change
    what matches or the order, whatever path a query takes."""
    book = _random_book(2500, seed=7)
    toml = TomlContactStore(tmp_path / "c.toml")
    sqlite = SqliteContactStore(tmp_path / "c.sqlite3")
    toml.save_many(book)
    sqlite.save_many(book)
    queries = ["", "e", "é", "el", "elo", "élodie", "müll", "nuñ", "z", "gall", "@posteo"]
    queries += ["posteo.ex", "anaïs.dupont1", "2499@", "qq", "xyz", "e d", "lea martin"]
    try:
        for query in queries:
            for limit in (1, 50, 5000):
                for blocked in (True, False):
                    want = [c.id for c in toml.search(query, limit=limit, include_blocked=blocked)]
                    got = [c.id for c in sqlite.search(query, limit=limit, include_blocked=blocked)]
                    assert got == want, (query, limit, blocked)
        assert [c.id for c in sqlite.all()] == [c.id for c in toml.all()]
        assert len(toml.search("elodie", limit=5000)) > 50  # the queries are not trivial
    finally:
        sqlite.close()


def test_find_by_email_is_case_insensitive(store: ContactStore, people: dict[str, Contact]) -> None:
    found = store.find_by_email("elo.d@posteo.EXAMPLE")
    assert found is not None and found.name == "élodie Durand"
    second = store.find_by_email("  MDubois@Home.Example ")
    assert second is not None and second.name == "Marc Dubois"
    assert store.find_by_email("nobody@example.org") is None
    assert store.find_by_email("posteo.example") is None  # whole addresses only


# -- photos ---------------------------------------------------------------------------------


def test_photo_bytes_are_stored_and_read_back(store: ContactStore, reopen: Reopen) -> None:
    added = store.add(Contact(name="Pic", photo=PNG))
    assert store.photo_bytes(added) == PNG
    assert store.photo_bytes(store.get(added.id)) == PNG
    assert reopen().photo_bytes(reopen().get(added.id)) == PNG
    plain = store.add(Contact(name="No pic"))
    assert store.photo_bytes(store.get(plain.id)) is None


def test_photo_survives_an_unrelated_update_and_can_be_replaced_or_removed(
    store: ContactStore,
) -> None:
    added = store.add(Contact(name="Pic", photo=PNG))
    store.update(store.get(added.id).copy(notes="edited"))
    assert store.photo_bytes(store.get(added.id)) == PNG
    store.update(store.get(added.id).copy(photo=JPEG, photo_path=None))
    assert store.photo_bytes(store.get(added.id)) == JPEG
    store.update(store.get(added.id).copy(photo=None, photo_path=None))
    assert store.photo_bytes(store.get(added.id)) is None


def test_photo_is_deleted_with_the_contact(
    store: ContactStore, backend: str, store_path: Path
) -> None:
    added = store.add(Contact(name="Pic", photo=JPEG))
    other = store.add(Contact(name="Other pic", photo=PNG))
    store.delete(added.id)
    # Re-using the id must not resurrect the old photo.
    again = store.add(Contact(name="Pic again", id=added.id))
    assert store.photo_bytes(store.get(again.id)) is None
    assert store.photo_bytes(store.get(other.id)) == PNG
    if backend == "toml":
        photos = sorted(p.name for p in (store_path.parent / "photos").iterdir())
        assert photos == [f"{other.id}.png"]
    else:
        db = sqlite3.connect(store_path)
        try:
            assert db.execute("SELECT count(*) FROM contact_photo").fetchone()[0] == 1
        finally:
            db.close()


def test_photo_given_by_path_is_readable(store: ContactStore, tmp_path: Path) -> None:
    source = tmp_path / "elsewhere" / "me.jpg"
    source.parent.mkdir()
    source.write_bytes(JPEG)
    added = store.add(Contact(name="Me", photo_path=str(source)))
    assert store.photo_bytes(store.get(added.id)) == JPEG
    assert source.read_bytes() == JPEG  # the original is left alone


def test_sqlite_copies_a_photo_given_by_path_into_the_database(tmp_path: Path) -> None:
    source = tmp_path / "me.png"
    source.write_bytes(PNG)
    with SqliteContactStore(tmp_path / "contacts.sqlite3") as store:
        added = store.add(Contact(name="Me", photo_path=str(source)))
        source.unlink()
        got = store.get(added.id)
        assert (got.photo, got.photo_path) == (PNG, None)
        assert store.photo_bytes(got) == PNG


def test_toml_photo_files_live_beside_the_contacts_file(tmp_path: Path) -> None:
    store = TomlContactStore(tmp_path / "contacts.toml")
    added = store.add(Contact(name="Pic", photo=PNG))
    png = tmp_path / "photos" / f"{added.id}.png"
    assert png.read_bytes() == PNG
    doc = tomllib.loads((tmp_path / "contacts.toml").read_text("utf-8"))
    assert doc["contact"][0]["photo"] == f"photos/{added.id}.png"  # relative, readable

    store.update(store.get(added.id).copy(photo=JPEG))
    jpg = tmp_path / "photos" / f"{added.id}.jpg"
    assert jpg.read_bytes() == JPEG
    assert not png.exists()

    store.delete(added.id)
    assert not jpg.exists()
    assert list((tmp_path / "photos").iterdir()) == []


def test_toml_keeps_a_photo_path_outside_its_directory(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "me.jpg"
    outside.parent.mkdir()
    outside.write_bytes(JPEG)
    store = TomlContactStore(tmp_path / "book" / "contacts.toml")
    added = store.add(Contact(name="Me", photo_path=str(outside)))
    assert store.photo_bytes(store.get(added.id)) == JPEG
    store.delete(added.id)
    assert outside.exists()  # not ours to delete


# -- bulk, batches, persistence -------------------------------------------------------------


def test_save_many_adds_and_replaces_by_id(store: ContactStore) -> None:
    existing = store.add(Contact(name="Old name"))
    batch = [Contact(name=f"Person {i:03}", emails=[f"p{i}@example.org"]) for i in range(200)]
    store.save_many([*batch, existing.copy(name="New name")])
    assert store.count() == 201
    assert store.get(existing.id).name == "New name"
    found = store.find_by_email("P150@example.org")
    assert found is not None and found.name == "Person 150"


def test_save_many_is_all_or_nothing(store: ContactStore) -> None:
    good = [Contact(name=f"Good {i}") for i in range(5)]
    with pytest.raises(ContactError):
        store.save_many([*good, Contact(name="Bad", emails=["nope"])])
    assert store.count() == 0


def test_save_many_of_ten_thousand(store: ContactStore, reopen: Reopen) -> None:
    store.save_many(
        Contact(name=f"Person {i}", emails=[f"p{i}@example.org"]) for i in range(10_000)
    )
    assert store.count() == 10_000
    assert reopen().count() == 10_000


def test_batch_writes_once_at_the_end(store: ContactStore, reopen: Reopen) -> None:
    with store.batch():
        a = store.add(Contact(name="A"))
        with store.batch():  # nesting is fine
            store.add(Contact(name="B"))
        store.set_favourite(a.id)
        assert store.count() == 2  # visible inside the batch
        assert reopen().count() == 0  # not yet visible outside it
    assert names(reopen().all()) == ["A", "B"]
    assert reopen().get(a.id).favourite is True


def test_a_failed_batch_changes_nothing(store: ContactStore, reopen: Reopen) -> None:
    kept = store.add(Contact(name="Kept"))
    with pytest.raises(RuntimeError), store.batch():
        store.add(Contact(name="Lost"))
        store.delete(kept.id)
        raise RuntimeError("abort")
    assert names(store.all()) == ["Kept"]
    assert names(reopen().all()) == ["Kept"]


def test_contacts_persist_across_reopen(store: ContactStore, reopen: Reopen) -> None:
    added = store.add(
        Contact(
            name="Élodie",
            emails=["elodie@example.org"],
            phones=["+33 1 23 45 67 89"],
            notes='line 1\nline "2"',
            favourite=True,
            blocked=True,
            created=1_700_000_000.0,
            updated=1_700_000_100.0,
        )
    )
    store.close()
    got = reopen().get(added.id)
    assert got.name == "Élodie"
    assert got.emails == ["elodie@example.org"]
    assert got.phones == ["+33 1 23 45 67 89"]
    assert got.notes == 'line 1\nline "2"'
    assert (got.favourite, got.blocked) == (True, True)
    assert (got.created, got.updated) == (1_700_000_000.0, 1_700_000_100.0)


def test_a_second_store_object_sees_changes(store: ContactStore, reopen: Reopen) -> None:
    other = reopen()
    assert other.count() == 0
    added = store.add(Contact(name="Ada"))
    assert names(other.all()) == ["Ada"]
    other.update(other.get(added.id).copy(name="Ada L."))
    assert store.get(added.id).name == "Ada L."
    assert names(store.search("ada")) == ["Ada L."]


def _add_many(backend: str, path: str, worker: int, count: int) -> int:
    """Runs in a child process: add ``count`` contacts one write at a time."""
    with open_store(backend, path) as store:
        for i in range(count):
            store.add(Contact(name=f"Worker {worker} #{i}", emails=[f"w{worker}.{i}@example.org"]))
    return count


def test_concurrent_writers_lose_nothing(backend: str, store_path: Path, reopen: Reopen) -> None:
    ctx = multiprocessing.get_context("spawn")
    jobs = [(backend, str(store_path), worker, 25) for worker in range(4)]
    with ctx.Pool(4) as pool:
        assert pool.starmap_async(_add_many, jobs).get(timeout=120) == [25] * 4
    contacts = reopen().all()
    assert len(contacts) == 100
    assert {c.name for c in contacts} == {f"Worker {w} #{i}" for w in range(4) for i in range(25)}


# -- TOML: a file people edit ---------------------------------------------------------------


def test_toml_file_is_readable_toml_without_default_noise(tmp_path: Path) -> None:
    path = tmp_path / "contacts.toml"
    store = TomlContactStore(path)
    store.add(Contact(name="Plain"))
    store.add(Contact(name="Full", emails=["f@example.org"], favourite=True, notes="hi"))
    doc = tomllib.loads(path.read_text("utf-8"))
    assert doc["version"] == 1
    plain, full = doc["contact"]
    assert set(plain) == {"id", "name", "created"}
    assert full["emails"] == ["f@example.org"]
    assert full["favourite"] is True and "blocked" not in full
    assert full["created"].tzinfo is not None  # RFC 3339 UTC date-times


def test_toml_hand_edited_file_without_ids_loads(tmp_path: Path) -> None:
    path = tmp_path / "contacts.toml"
    path.write_text(
        '[[contact]]\nname = "Ada"\nemails = ["ada@example.org"]\n\n'
        '[[contact]]\nname = "Bob"\ncreated = "2024-01-02T03:04:05Z"\nfavourite = true\n',
        "utf-8",
    )
    store = TomlContactStore(path)
    contacts = store.all()
    assert names(contacts) == ["Bob", "Ada"]
    assert all(len(c.id) == 32 for c in contacts)
    assert contacts[0].created == 1704164645.0
    assert contacts[1].emails == ["ada@example.org"]
    ids = {c.name: c.id for c in contacts}
    store.add(Contact(name="Cy"))  # the next write persists the generated ids
    saved = tomllib.loads(path.read_text("utf-8"))["contact"]
    assert {t["name"]: t["id"] for t in saved[:2]} == ids
    assert {c.name: c.id for c in TomlContactStore(path).all() if c.name != "Cy"} == ids


def test_toml_picks_up_hand_edits_made_while_open(tmp_path: Path) -> None:
    path = tmp_path / "contacts.toml"
    store = TomlContactStore(path)
    store.add(Contact(name="Ada"))
    with path.open("a", encoding="utf-8") as f:
        f.write('\n[[contact]]\nname = "Added by hand"\n')
    assert names(store.all()) == ["Ada", "Added by hand"]
    store.add(Contact(name="Cy"))
    assert names(TomlContactStore(path).all()) == ["Ada", "Added by hand", "Cy"]


BROKEN = 'version = 1\n\n[[contact]]\nname = Ada\nemails = ["ada@example.org"]\n'


def test_toml_syntax_error_names_file_and_line_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "contacts.toml"
    path.write_text(BROKEN, "utf-8")
    before = path.read_bytes()
    store = TomlContactStore(path)
    with pytest.raises(ContactError) as info:
        store.all()
    message = str(info.value)
    assert str(path) in message
    assert "line 4, column 8" in message
    assert "\n" not in message
    with pytest.raises(ContactError):
        store.add(Contact(name="Bob"))
    with pytest.raises(ContactError):
        store.save_many([Contact(name="Cy")])
    assert path.read_bytes() == before
    # Once the user fixes the file, the store works again.
    path.write_text(BROKEN.replace("name = Ada", 'name = "Ada"'), "utf-8")
    store.add(Contact(name="Bob"))
    assert names(store.all()) == ["Ada", "Bob"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[contact]]\nname = "Ada"\nemails = 3\n', ["#1", "'emails'", "list of strings", "int"]),
        ('[[contact]]\nname = "A"\n\n[[contact]]\nname = "B"\nfavourite = "yes"\n', ["#2"]),
        ('[[contact]]\nname = "Ada"\nnickname = "A"\n', ["unknown key 'nickname'"]),
        ('[[contact]]\nemails = ["a@example.org"]\n', ["missing 'name'"]),
        ('[[contact]]\nname = "Ada"\nemails = ["nope"]\n', ["invalid e-mail"]),
        ('[[contact]]\nname = "Ada"\ncreated = "yesterday"\n', ["'created'"]),
        ('[[contact]]\nname = "Ada"\nid = "x/y"\n', ["invalid contact id"]),
        ('[[contact]]\nid = "a"\nname = "A"\n[[contact]]\nid = "a"\nname = "B"\n', ["duplicate"]),
        ("contact = 3\n", ["array of tables"]),
        ('colour = "blue"\n', ["unknown top-level key 'colour'"]),
        ("version = 2\n", ["newer"]),
    ],
)
def test_toml_bad_values_name_file_and_contact(
    tmp_path: Path, body: str, expected: list[str]
) -> None:
    path = tmp_path / "contacts.toml"
    path.write_text(body, "utf-8")
    store = TomlContactStore(path)
    with pytest.raises(ContactError) as info:
        store.add(Contact(name="Bob"))
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert "\n" not in message
    for fragment in expected:
        assert fragment in message
    assert path.read_text("utf-8") == body


def test_toml_error_at_end_of_file_still_gives_a_line(tmp_path: Path) -> None:
    path = tmp_path / "contacts.toml"
    path.write_text('[[contact]]\nname = "Ada"\nemails = ["ada@example.org"\n', "utf-8")
    with pytest.raises(ContactError, match=r"Unclosed array \(at end of document, line 3\)"):
        TomlContactStore(path).all()


def test_toml_type_error_points_at_the_contact_line(tmp_path: Path) -> None:
    path = tmp_path / "contacts.toml"
    path.write_text('version = 1\n\n[[contact]]\nname = "A"\n\n[[contact]]\nname = 7\n', "utf-8")
    with pytest.raises(ContactError, match=r"\[\[contact\]\] #2, line 6: 'name'"):
        TomlContactStore(path).count()


def test_toml_missing_file_is_empty_and_created_on_first_write(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "contacts.toml"
    store = TomlContactStore(path)
    assert store.all() == []
    assert not path.exists()
    store.add(Contact(name="Ada"))
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600


def test_toml_write_leaves_no_temp_files(tmp_path: Path) -> None:
    store = TomlContactStore(tmp_path / "contacts.toml")
    added = store.add(Contact(name="Ada", photo=PNG))
    store.save_many([Contact(name=f"P{i}") for i in range(50)])
    store.update(store.get(added.id).copy(photo=JPEG))
    store.delete(added.id)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "contacts.toml",
        "contacts.toml.lock",
        "photos",
    ]
    assert list((tmp_path / "photos").iterdir()) == []


# -- SQLite ---------------------------------------------------------------------------------


def test_sqlite_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "contacts.sqlite3"
    path.write_bytes(b"name,email\nAda,ada@example.org\n" * 100)
    before = path.read_bytes()
    with pytest.raises(ContactError) as info:
        SqliteContactStore(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)
    with pytest.raises(ContactError):
        open_store("sqlite", path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["contacts.sqlite3"]


def test_sqlite_refuses_someone_elses_database(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE invoices (n INTEGER)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(ContactError, match="invoices"):
        SqliteContactStore(path)
    assert path.read_bytes() == before


def test_sqlite_schema_wal_and_indexed_email_lookup(tmp_path: Path) -> None:
    path = tmp_path / "contacts.sqlite3"
    with SqliteContactStore(path) as store:
        store.add(Contact(name="Ada", emails=["ada@example.org"]))
    assert path.stat().st_mode & 0o777 == 0o600
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = " ".join(
            str(row[-1])
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT seq FROM contact_email WHERE address_key = ?", ("x",)
            )
        )
        assert "contact_email_key" in plan
    finally:
        db.close()


def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "contacts.sqlite3"
    SqliteContactStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ContactError, match="newer"):
        SqliteContactStore(path)
