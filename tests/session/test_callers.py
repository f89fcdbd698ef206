"""One rule for who a caller is, for both faces: real address books on disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from hello_tui.contacts.model import Contact
from hello_tui.contacts.store import ContactStore, open_store
from hello_tui.session.callers import Callers, find_caller


@pytest.fixture(params=["toml", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ContactStore:
    name = "contacts.toml" if request.param == "toml" else "contacts.db"
    s = open_store(request.param, tmp_path / name)
    s.add(Contact(name="Bob Smith", emails=["bob@example.org"]))
    s.add(Contact(name="Zoë", notes="account name: zoe"))
    s.add(Contact(name="Mallory", emails=["mallory@example.org"], blocked=True))
    return s


def test_a_caller_is_found_by_e_mail_else_by_folded_name(store: ContactStore) -> None:
    assert find_caller(store, "BOB@example.org").name == "Bob Smith"  # type: ignore[union-attr]
    assert find_caller(store, "zoe").name == "Zoë"  # type: ignore[union-attr]
    assert find_caller(store, "bob smith@example.org") is None
    assert find_caller(store, "nobody") is None
    assert find_caller(store, "") is None


def test_blocked_dnd_and_the_allow_list_turn_callers_away_busy(store: ContactStore) -> None:
    dnd = [False]
    callers = Callers(store=store, dnd=lambda: dnd[0])
    assert callers.screen("mallory@example.org") == "busy"
    assert callers.screen("bob@example.org") is None
    assert callers.screen("stranger") is None
    dnd[0] = True
    assert callers.screen("bob@example.org") == "busy"
    only_bob = Callers(store=store, allowed=["Bob@Example.org"])
    assert only_bob.screen("bob@example.org") is None
    assert only_bob.screen("zoe") == "busy"


def test_the_shown_name_is_the_contacts_else_the_account(store: ContactStore) -> None:
    callers = Callers(store=store)
    assert callers.name_of("bob@example.org") == "Bob Smith"
    assert callers.name_of("eve@example.org") == "eve@example.org"


def test_blocking_a_stranger_adds_a_blocked_contact_found_by_the_same_rule(
    store: ContactStore,
) -> None:
    callers = Callers(store=store)
    blocked = callers.block("eve")
    assert blocked.blocked and blocked.notes == "account name: eve"
    assert callers.screen("eve") == "busy"
    assert callers.block("bob@example.org").blocked  # a known contact: marked, not added
    assert len([c for c in store.all() if fold(c.name) == "bob smith"]) == 1


def fold(text: str) -> str:
    from hello_tui.contacts.search import fold_key

    return fold_key(text)


def test_opened_per_lookup_sees_edits_and_an_unusable_book_knows_nobody(tmp_path: Path) -> None:
    path = tmp_path / "contacts.toml"
    callers = Callers(open_store=lambda: open_store("toml", path))
    assert callers.screen("eve@example.org") is None
    other = open_store("toml", path)  # another process blocks eve meanwhile
    other.add(Contact(name="Eve", emails=["eve@example.org"], blocked=True))
    other.close()
    assert callers.screen("eve@example.org") == "busy"
    assert callers.name_of("eve@example.org") == "Eve"
    unusable = Callers(open_store=lambda: open_store("no-such-backend", path))
    assert unusable.contact_for("eve@example.org") is None
    assert unusable.screen("eve@example.org") is None
    assert unusable.name_of("eve@example.org") == "eve@example.org"
