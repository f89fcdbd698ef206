"""Atomic file writes: temp file in the same directory, fsync, rename.

A reader (or a crash) only ever sees the old file or the new one, never a
half-written one. The directory is fsynced too so the rename itself survives
a power cut.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from hello_tui.util.private import private_dir


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically (temp file + fsync + rename).

    Files are private by default (0600): contacts and config never need to be
    readable by other users of the machine.
    """
    target = Path(path)
    private_dir(target.parent)  # missing folders are created 0700
    if target.exists():
        # Keep the permissions the user chose for an existing file.
        mode = target.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, mode: int = 0o600) -> None:
    """Text flavour of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
