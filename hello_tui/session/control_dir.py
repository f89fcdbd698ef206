"""Where control sockets live (session/control.py), and which are alive.

Stdlib and platformdirs only: ``hello-tui ctl`` lists sockets without loading
the call engine.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from pathlib import Path

__all__ = ["live_sockets", "private_runtime_dir", "runtime_dir", "socket_path"]

APP_NAME = "hello-tui"
SOCKET_RE = re.compile(r"^ctl-(\d{1,10})\.sock$")


def runtime_dir() -> Path:
    """Where the sockets live: ``$XDG_RUNTIME_DIR/hello-tui`` when that is a
    directory of this user's, not a symlink, closed to others (what the XDG
    spec promises); else ``run/`` in the user's state directory (all profiles
    share it: a socket is a process's, not a profile's)."""
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg and os.path.isabs(xdg):
        with contextlib.suppress(OSError):
            info = os.lstat(xdg)
            mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            if mine and not info.st_mode & 0o077:
                return Path(xdg) / APP_NAME
    import platformdirs

    return platformdirs.user_state_path(APP_NAME) / "run"


def socket_path(pid: int, where: Path | None = None) -> Path:
    return (where or runtime_dir()) / f"ctl-{pid}.sock"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone's: alive
        return True
    return True


def live_sockets(where: Path | None = None) -> list[tuple[int, Path]]:
    """``(pid, path)`` of each control socket whose process is alive, by pid; a
    socket whose process is gone is removed on the way (a crash leaves one)."""
    where = where or runtime_dir()
    found: list[tuple[int, Path]] = []
    try:
        names = os.listdir(where)
    except OSError:
        return []
    for name in names:
        match = SOCKET_RE.match(name)
        if match is None:
            continue
        pid, path = int(match.group(1)), where / name
        if _pid_alive(pid):
            found.append((pid, path))
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(found)


def private_runtime_dir(where: Path) -> Path:
    """Create ``where`` 0700 (or tighten it) and refuse one that is not ours."""
    from hello_tui.util.private import private_dir

    private_dir(where, tighten=True)
    info = os.lstat(where)
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise OSError(f"{where}: not a private directory of this user")
    return where
