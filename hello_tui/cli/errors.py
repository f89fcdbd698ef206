"""Turn every expected failure into one line on stderr and exit code 1."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable

from hello_tui.util.display import printable


class CliError(Exception):
    """A user-facing error: the message is printed as is."""


def run_handler(call: Callable[[], int | None]) -> int:
    """Run a command handler, mapping known errors to ``hello-tui: error: ...``."""
    from hello_tui.config.loader import ConfigError
    from hello_tui.config.paths import ProfileError
    from hello_tui.contacts.model import ContactError, ContactNotFound
    from hello_tui.history.store import HistoryError
    from hello_tui.signaling.errors import SignalingClientError
    from hello_tui.util.locking import LockTimeout

    try:
        return call() or 0
    except BrokenPipeError:
        return _reader_went_away()
    except (
        CliError,
        ConfigError,
        ProfileError,
        ContactError,
        ContactNotFound,
        HistoryError,
        LockTimeout,
        SignalingClientError,
    ) as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except KeyboardInterrupt:
        return 130


def _reader_went_away() -> int:
    """``hello-tui contacts list | head``: the reader stopped reading. Say
    nothing (like other Unix tools) and exit 141, what a shell reports for a
    command stopped by SIGPIPE. Standard output is pointed at /dev/null so the
    interpreter's last flush does not complain either."""
    import os

    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 141


def _fail(message: str) -> int:
    # Keep it to one line even if a library put newlines in its message.
    line = printable(" ".join(message.split()))
    with contextlib.suppress(BrokenPipeError):
        print(f"hello-tui: error: {line}", file=sys.stderr)
    return 1
