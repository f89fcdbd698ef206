"""What a session does at start so a call's setup does not: it freezes its start-up
for the cyclic collector (``gc.freeze``), so the young collections a call's setup
triggers walk only what the call allocates, and imports the address book's module
when it has callers to screen and name."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hello_tui.config.paths import resolve_paths
from hello_tui.config.settings import Settings
from hello_tui.contacts.store import open_store
from hello_tui.session import connect
from hello_tui.session.callers import Callers
from hello_tui.session.connect import GC_ENV, Session


@pytest.fixture
def unfrozen(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    gc.unfreeze()
    # A fresh process's start-up (tests/conftest.py ends it for the test process).
    monkeypatch.setattr(connect, "_start_up_over", False)
    yield
    gc.unfreeze()


def _session() -> Session:
    return Session(resolve_paths(), Settings(), audio_in="sine:440", audio_out="null:")


async def test_a_started_session_has_frozen_its_start_up(unfrozen: None) -> None:
    async with _session():
        assert gc.get_freeze_count() > 10_000  # the imports, at least


async def test_the_knob_leaves_the_collector_alone(
    unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GC_ENV, "default")
    async with _session():
        assert gc.get_freeze_count() == 0


async def test_nothing_is_frozen_while_a_call_is_live(unfrozen: None) -> None:
    """A warm-up thread that ends during a call leaves the call's objects to the
    collector: frozen, aiortc's reference cycles would never be freed."""
    session = _session()
    async with session as phone:
        gc.unfreeze()
        live = object()
        phone.live.add(live)  # type: ignore[arg-type]
        session._freeze_start_up()
        assert gc.get_freeze_count() == 0
        phone.live.discard(live)  # type: ignore[arg-type]
        session._freeze_start_up()
        assert gc.get_freeze_count() > 0


async def test_only_the_process_start_up_is_frozen(unfrozen: None) -> None:
    """Once a call has started, or the first session has closed (a TUI that signs in
    again, a test worker's next test), nothing more is frozen: earlier calls'
    uncollected cycles (streams with native threads among them) would stay forever."""
    session = _session()
    async with session as phone:
        gc.unfreeze()
        phone.calls_started = 1  # a call came and went
        session._freeze_start_up()
        assert gc.get_freeze_count() == 0
    connect._start_up_over = False
    async with _session():
        assert gc.get_freeze_count() > 10_000  # a first session's start-up
    gc.unfreeze()
    async with _session():  # the process's second session
        assert gc.get_freeze_count() == 0


async def test_a_session_with_callers_imports_the_address_books_module(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    imported: list[str] = []
    monkeypatch.setattr(connect, "_import_book", imported.append)
    callers = Callers(open_store=lambda: open_store("toml", f"{tmp_path}/contacts.toml"))
    settings = Settings()
    session = Session(resolve_paths(), settings, callers=callers, audio_in="sine:440")
    async with session:
        pass  # closing waits for the warm-up thread
    assert imported == ["hello_tui.contacts.toml_store"]
    imported.clear()
    async with _session():  # no callers (a CLI call): nothing to screen
        pass
    assert imported == []
