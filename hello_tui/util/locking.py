"""An inter-process lock on a side file, so two hello-tui processes never
interleave a read-modify-write of the same store."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hello_tui.util.private import private_dir


class LockTimeout(RuntimeError):
    """Another process held the lock for longer than we were willing to wait."""


@contextmanager
def file_lock(path: str | os.PathLike[str], *, timeout: float = 10.0) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block.

    The lock file is separate from the data file because the data file is
    replaced by rename on every write, which would orphan a lock held on it.
    """
    lock_path = Path(path)
    private_dir(lock_path.parent)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"{lock_path}: another hello-tui process is holding this lock"
                    ) from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
