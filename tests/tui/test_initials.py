"""The two letters drawn for a contact without a photo."""

from __future__ import annotations

import pytest

from hello_tui.tui.widgets.photo import initials


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Alice Martin", "AM"),
        ("Élodie de la Tour", "ÉT"),
        ("alice.martin@example.org", "AM"),  # the person, not the domain
        ("bob@example.org", "BO"),
        ("carol_smith@example.org", "CS"),
        ("Zoë", "ZO"),
        ("", "?"),
        ("@@", "?"),
        ("  ", "?"),
    ],
)
def test_initials(name: str, expected: str) -> None:
    assert initials(name) == expected
