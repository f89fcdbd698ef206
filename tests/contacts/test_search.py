"""Search keys every contacts backend shares: folding, the haystack, the order."""

from __future__ import annotations

import pytest

from hello_tui.contacts.model import Contact
from hello_tui.contacts.search import (
    KEY_SEPARATOR,
    email_keys,
    fold,
    fold_key,
    haystack,
    matches,
    name_key,
    normalize_query,
    sort_key,
)

FOLDED = [
    ("ELODIE", "elodie"),
    ("Élodie", "elodie"),
    ("straße", "strasse"),  # case-folding first: ß -> ss
    ("ﬁne", "fine"),  # NFKD: the ligature becomes plain letters
    ("Ｂｏｂ", "bob"),  # full-width letters
    ("Zoë  Ño", "zoe  no"),  # fold keeps whitespace as it is
    ("", ""),
]


@pytest.mark.parametrize(("text", "folded"), FOLDED)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


KEYS = [
    ("  Jean   Dupont ", "jean dupont"),
    ("Jean\tDupont\n", "jean dupont"),
    ("  Zoë   Ño ", "zoe no"),
    ("   ", ""),
]


@pytest.mark.parametrize(("text", "key"), KEYS)
def test_fold_key_trims_and_collapses_whitespace(text: str, key: str) -> None:
    assert fold_key(text) == key
    assert normalize_query(text) == key


def test_haystack_is_the_name_then_each_address_one_per_line() -> None:
    contact = Contact(name=" Élodie  Martin", emails=["Elodie@Example.ORG ", "em@x.fr"])
    assert name_key(contact) == "elodie martin"
    assert email_keys(contact.emails) == ["elodie@example.org", "em@x.fr"]
    assert haystack(contact) == "elodie martin\nelodie@example.org\nem@x.fr"
    assert KEY_SEPARATOR == "\n"
    assert haystack(Contact(name="Bob")) == "bob"


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("ÉLODIE", True),
        ("martin", True),
        ("example.org", True),
        ("elodie  martin", True),  # a double space typed by accident
        ("martin elodie", False),  # a match never straddles name and address
        ("org em", False),
        ("", True),  # empty: everything
        ("zoe", False),
    ],
)
def test_matches(query: str, found: bool) -> None:
    contact = Contact(name="Élodie Martin", emails=["elodie@example.org", "em@x.fr"])
    assert matches(normalize_query(query), haystack(contact)) is found


def test_sort_key_favourites_first_then_name_then_id() -> None:
    a = Contact(name="zed", id="1", favourite=True)
    b = Contact(name="Ann", id="3")
    c = Contact(name="ann", id="2")
    assert sort_key(a) == (False, "zed", "1")
    assert sort_key(b) == (True, "ann", "3")
    assert [x.id for x in sorted([b, c, a], key=sort_key)] == ["1", "2", "3"]
