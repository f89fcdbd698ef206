"""Private places on disk: what hello-tui creates is for its user alone.

Directories are created 0700 and files 0600 regardless of the umask (the
privacy page promises it: contacts, history and keys are nobody else's
business on a shared machine). An existing directory is tightened only when
it is the app's own (``tighten=True``); a folder the user chose for an export
keeps the mode the user gave it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: str | os.PathLike[str], *, tighten: bool = False) -> Path:
    """Create ``path`` and any missing parents with mode 0700; with
    ``tighten``, also take group and other permissions off ``path`` itself if
    it already existed (only if this user owns it)."""
    target = Path(path)
    missing: list[Path] = []
    for p in (target, *target.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it first
            p.mkdir(mode=DIR_MODE)
        os.chmod(p, DIR_MODE)  # mkdir's mode is filtered by the umask
    if tighten and not missing:
        info = target.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(target, stat.S_IMODE(info.st_mode) & ~0o077)
    return target


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty with mode 0600 if it does not exist (before a
    library such as SQLite opens it with the umask's mode)."""
    target = Path(path)
    private_dir(target.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    return target
