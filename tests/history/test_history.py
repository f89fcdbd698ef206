from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from hello_tui.history import CallRecord, HistoryStore
from hello_tui.history.store import HistoryError


def test_add_and_list_newest_first(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as h:
        h.add(CallRecord("outgoing", "Alice", "answered", start=100.0, duration=61.5))
        h.add(CallRecord("incoming", "Bob", "missed", start=200.0))
        records = h.list()
    assert [r.peer for r in records] == ["Bob", "Alice"]
    assert records[1].duration == 61.5 and records[1].direction == "outgoing"
    assert records[0].id is not None


def test_capped_keeps_newest(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3", max_entries=3) as h:
        for i in range(10):
            h.add(CallRecord("outgoing", f"p{i}", "answered", start=float(i)))
        assert h.count() == 3
        assert [r.peer for r in h.list()] == ["p9", "p8", "p7"]


def test_persists_and_clears(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    with HistoryStore(path) as h:
        h.add(CallRecord("outgoing", "echo", "answered"))
    with HistoryStore(path) as h:
        assert h.count() == 1
        assert h.clear() == 1
        assert h.list() == []


def test_rejects_bad_direction(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as h, pytest.raises(ValueError, match="direction"):
        h.add(CallRecord("sideways", "x", "answered"))  # type: ignore[arg-type]


def test_not_a_database_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match=str(path)):
        HistoryStore(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def _writer(path: str, n: int, tag: str) -> None:
    with HistoryStore(Path(path)) as h:
        for i in range(n):
            h.add(CallRecord("outgoing", f"{tag}{i}", "answered"))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    HistoryStore(path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(path), 30, t)) for t in "abcd"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with HistoryStore(path) as h:
        assert h.count() == 120


def test_a_room_url_is_kept_and_an_older_database_gains_the_column(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)  # the schema before rooms were kept
    db.executescript(
        "CREATE TABLE calls (id INTEGER PRIMARY KEY AUTOINCREMENT, direction TEXT NOT NULL,"
        " peer TEXT NOT NULL, outcome TEXT NOT NULL, start REAL NOT NULL,"
        " duration REAL NOT NULL DEFAULT 0, contact_id TEXT);"
        "INSERT INTO calls (direction, peer, outcome, start)"
        " VALUES ('outgoing', 'old', 'answered', 1);"
    )
    db.close()
    url = "https://h.example/r/abcdefghijklmnop#k=KEY"
    with HistoryStore(path) as store:
        store.add(CallRecord("outgoing", "Drop-in", "answered", start=2, room_url=url))
        new, old = store.list()
        assert new.room_url == url and new.peer == "Drop-in"
        assert old.room_url is None and old.peer == "old"
