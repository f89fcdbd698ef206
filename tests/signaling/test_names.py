"""The name policy (signaling/names.py): printable, NFKC, bounded, look-alikes folded."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hello_tui.signaling import names
from hello_tui.signaling.names import (
    ASCII_PROTOTYPES,
    MAX_NAME_BYTES,
    MAX_NAME_CHARS,
    BadName,
    check_name,
    confusable,
    fold,
    skeleton,
)

HOSTILE = [
    "a\nb",  # forges a line
    "Your Bank\r\nIncoming call from Mum",
    "\x1b[2J\x1b]0;pwned\x07mum",  # clears the screen, sets the title
    "\u202emum",  # right-to-left override
    "mu\u2066m\u2069",  # isolates
    "m\u200bum",  # zero-width space
    "m\u200dum",  # zero-width joiner
    "\ufeffmum",  # BOM
    "mum\u2028x",  # line separator
    "mum\u2029x",  # paragraph separator
    "\ue000mum",  # private use
    "\U000e0041mum",  # tag character
    "\u3164",  # Hangul filler: looks like nothing
    "mu\ufe0fm",  # variation selector
    "\u0378x",  # unassigned
    " mum",
    "mum ",
    "m  um",
    "m\u00a0\u00a0um",  # NFKC makes these two spaces
    "m\tum",
    "m\u1680um",  # ogham space mark: a space that NFKC keeps
    "e" + "\u0301" * 6,  # a tower of accents (NFKC composes the first)
    "x" * (MAX_NAME_CHARS + 1),
    "\ufdfa" * 5,  # NFKC expands each to 18 characters
    "",
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    with pytest.raises(BadName) as refused:
        check_name(name)
    message = str(refused.value)
    assert message and "\n" not in message and message.isprintable()


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("alice@example.org", "alice@example.org"),
        ("Ａlice", "Alice"),  # fullwidth → ASCII (NFKC)
        ("ﬁona", "fiona"),
        ("Zoë Ünicode", "Zoë Ünicode"),
        ("Zoe\u0308", "Zoë"),  # composed
        ("李小龍", "李小龍"),
        ("[/]", "[/]"),  # markup is text: the faces escape it
        ("[@click=app.quit]x", "[@click=app.quit]x"),
        ("x" * MAX_NAME_CHARS, "x" * MAX_NAME_CHARS),
    ],
)
def test_good_names_are_normalised(name: str, shown: str) -> None:
    assert check_name(name) == shown


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("MUM@example.org", "mum@example.org"),
        ("mum@example.org", "mum@\u0435xample.org"),  # Cyrillic е
        ("mum@example.org", "\u041cUM@example.org"),  # Cyrillic М
        ("mum@example.org", "\u039cum@example.org"),  # Greek Μ
        ("mum@example.org", "rnum@example.org"),  # rn looks like m
        ("alice", "aIice"),  # capital I looks like l
        ("alice", "ALICE"),
        ("bob", "b0b"),
        ("paypal", "\U0001d52d\U0001d4b6y\U0001d561\U0001d552\u2113"),  # mathematical letters
        ("echo", "\u0435cho"),
        ("m\u0430il@example.org", "MAIL@EXAMPLE.ORG"),
    ],
)
def test_look_alikes_fold_together(a: str, b: str) -> None:
    assert confusable(a, b)


@pytest.mark.parametrize(("a", "b"), [("alice", "bob"), ("mum", "mun"), ("zoë", "zoe")])
def test_different_names_stay_apart(a: str, b: str) -> None:
    assert not confusable(a, b)


def test_skeleton_follows_uts39() -> None:
    assert skeleton("p\u0430ypal") == "paypal"  # Cyrillic а
    assert skeleton("\u0410") == "A"
    assert skeleton("m") == "rn"
    assert skeleton("a\u200bb") == "ab"  # default-ignorables are dropped


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_any_text_is_refused_or_clean(name: str) -> None:
    """Whatever comes in, what passes is NFKC, printable, bounded and stable."""
    try:
        shown = check_name(name)
    except BadName as exc:
        assert "\n" not in str(exc)
        return
    assert shown == unicodedata.normalize("NFKC", shown)
    assert shown.isprintable()  # no Cc/Cf/Z* but space: nothing hidden, nothing obeyed
    assert shown == shown.strip() and "  " not in shown
    assert shown != "" and len(shown) <= MAX_NAME_CHARS  # what passed is within the policy
    assert len(shown.encode("utf-8")) <= MAX_NAME_BYTES
    assert check_name(shown) == shown
    assert fold(shown) == fold(name)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_fold_takes_any_text(name: str) -> None:
    folded = fold(name)  # the server folds any `to` a caller sends
    assert fold(unicodedata.normalize("NFKC", name)) == folded
    assert len(folded) <= 18 * 3 * max(len(name), 1)  # bounded expansion


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="ascii"), max_size=60))
def test_fold_ignores_case(name: str) -> None:
    assert fold(name.upper()) == fold(name.lower()) == fold(name)


def test_ascii_prototypes_are_the_files() -> None:
    """The ASCII shortcut is exactly the data file's ASCII entries (a new
    confusables.txt with another ASCII entry fails here, not in production)."""
    table = names._prototypes()
    assert {k: v for k, v in table.items() if k.isascii()} == ASCII_PROTOTYPES


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="ascii"), max_size=40))
def test_ascii_names_fold_as_with_the_whole_table(name: str) -> None:
    """An ASCII name folds the same through the shortcut as through the whole table
    (the server may have loaded it: both ends must agree on every name)."""
    full = names._prototypes()

    def skeleton_full(text: str) -> str:
        nfd = unicodedata.normalize("NFD", text)
        mapped = "".join(full.get(c, c) for c in nfd if not names.ignorable(c))
        return unicodedata.normalize("NFD", mapped)

    text = skeleton_full(unicodedata.normalize("NFKC", name).strip())
    for _ in range(6):
        folded = skeleton_full(skeleton_full(text.upper()).casefold())
        if folded == text:
            break
        text = folded
    assert names.fold.__wrapped__(name) == text


def test_an_ascii_name_does_not_parse_the_table() -> None:
    """A call's names (signature, pins) are ASCII as a rule: folding one never
    pays for parsing the ~10,000-line file (40-150 ms at a first call)."""
    names._prototypes.cache_clear()
    try:
        assert names.fold.__wrapped__("mum@example.org") == "rnurn@exarnple.org"
        assert names._prototypes.cache_info().currsize == 0
    finally:
        names._prototypes.cache_clear()
