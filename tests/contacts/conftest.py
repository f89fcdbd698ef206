"""One fixture, two backends: every store test runs against TOML and SQLite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hello_tui.contacts import ContactStore, open_store

BACKENDS = ("toml", "sqlite")
FILE_NAMES = {"toml": "contacts.toml", "sqlite": "contacts.sqlite3"}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_path(tmp_path: Path, backend: str) -> Path:
    return tmp_path / FILE_NAMES[backend]


@pytest.fixture
def store(backend: str, store_path: Path) -> Iterator[ContactStore]:
    with open_store(backend, store_path) as opened:
        yield opened


@pytest.fixture
def reopen(backend: str, store_path: Path) -> Iterator[Callable[[], ContactStore]]:
    """Open the same file again as a fresh store object (another "process")."""
    opened: list[ContactStore] = []

    def open_again() -> ContactStore:
        opened.append(open_store(backend, store_path))
        return opened[-1]

    yield open_again
    for other in opened:
        other.close()
