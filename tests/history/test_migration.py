"""The call history moves from the data directory to the state directory, once."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from hello_tui.config.paths import resolve_paths
from hello_tui.history.store import CallRecord, HistoryStore
from hello_tui.util.migrate import move_sqlite_once


def _legacy_history(data_dir: Path) -> None:
    """A history an older version left in ``data_dir``, its last call still in the WAL."""
    work = data_dir.parent / "work"
    work.mkdir(parents=True)
    with HistoryStore(work / "history.sqlite3") as store:
        store.add(CallRecord("outgoing", "first", "answered"))
    db = sqlite3.connect(work / "history.sqlite3", isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(
        "INSERT INTO calls (direction, peer, outcome, start)"
        " VALUES ('incoming', 'in-wal', 'missed', 2)"
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):  # copied while open: the WAL is not checkpointed
        shutil.copy(work / f"history.sqlite3{suffix}", data_dir / f"history.sqlite3{suffix}")
    db.close()


def test_history_moves_to_the_state_dir_with_its_wal() -> None:
    paths = resolve_paths(profile="mover")
    _legacy_history(paths.data_dir)
    assert (paths.data_dir / "history.sqlite3-wal").stat().st_size > 0
    new = paths.history_file
    assert new == paths.state_dir / "history.sqlite3"
    assert paths.state_dir.name == "mover" and paths.state_dir != paths.data_dir
    assert not list(paths.data_dir.glob("history.sqlite3*"))
    with HistoryStore(new) as store:
        assert {r.peer for r in store.list()} == {"first", "in-wal"}  # the WAL came along


def test_migration_happens_once_and_never_overwrites(tmp_path: Path) -> None:
    old, new = tmp_path / "data" / "h.sqlite3", tmp_path / "state" / "h.sqlite3"
    assert move_sqlite_once(old, new) is False  # nothing to move
    old.parent.mkdir()
    old.write_bytes(b"old")
    new.parent.mkdir()
    new.write_bytes(b"new")
    assert move_sqlite_once(old, new) is False  # the state dir already has one: keep both
    assert new.read_bytes() == b"new" and old.exists()
    new.unlink()
    (old.parent / "h.sqlite3-wal").write_bytes(b"wal")
    assert move_sqlite_once(old, new) is True
    assert new.read_bytes() == b"old" and (new.parent / "h.sqlite3-wal").read_bytes() == b"wal"
    assert not old.exists() and not (old.parent / "h.sqlite3-wal").exists()


def test_interrupted_move_resumes(tmp_path: Path) -> None:
    old, new = tmp_path / "data" / "h.sqlite3", tmp_path / "state" / "h.sqlite3"
    old.parent.mkdir()
    old.write_bytes(b"db")
    new.parent.mkdir()
    (new.parent / "h.sqlite3-wal").write_bytes(b"wal")  # moved before the interruption
    assert move_sqlite_once(old, new) is True
    assert new.read_bytes() == b"db" and (new.parent / "h.sqlite3-wal").read_bytes() == b"wal"
