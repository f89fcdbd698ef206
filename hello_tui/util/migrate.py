"""Move a file an older version kept elsewhere, once (call history: data → state dir).

An SQLite database in WAL mode is up to three files; the side files move
first and the database last, so an interrupted move resumes on the next run
(the database still in the old place means "not done yet") and the new place
never holds a database without its journal.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def move_sqlite_once(old: Path, new: Path) -> bool:
    """Move ``old`` (and its -wal/-shm) to ``new`` unless ``new`` exists; True if moved."""
    if not old.exists() or new.exists():
        return False
    new.parent.mkdir(parents=True, exist_ok=True)
    for suffix in SQLITE_SIDE_FILES:
        side = old.with_name(old.name + suffix)
        if side.exists():
            _move(side, new.with_name(new.name + suffix))
    _move(old, new)
    return True


def _move(src: Path, dst: Path) -> None:
    try:
        os.replace(src, dst)  # same file system: atomic
    except OSError:
        # Another file system: copy beside the target, then rename into place.
        tmp = dst.with_name(f".{dst.name}.moving")
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
        with contextlib.suppress(FileNotFoundError):
            src.unlink()
