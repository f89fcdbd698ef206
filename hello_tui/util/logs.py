"""The client's log: a rotating file in the state directory, redacted.

``setup_logging`` is called once per run by the front end. Records go to
``<state dir>/logs/hello-tui.log`` (1 MB x 3 files, mode 0600 in a 0700
directory) at INFO by default; ``-v`` / ``-vv`` (or ``--log-level``) lower
the level and also echo records on stderr for the CLI. Every record passes
:class:`RedactingFilter` on the way to any of our handlers, whichever logger
(ours, aiortc, aioice, aiohttp, websockets) produced it: IP addresses truncated, SDP cut,
e-mail addresses reduced to their domain, and any word a front end marks
sensitive (a contact's name) replaced. Our own code never passes contacts,
SDP or message text to a log call in the first place; the filter is the
second line.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
from io import TextIOWrapper
from pathlib import Path

from hello_tui.signaling.redact import escape_log, redact
from hello_tui.util.private import private_dir

MAX_BYTES = 1_000_000
BACKUPS = 3
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_sensitive: set[str] = set()
_lock = threading.Lock()


def mark_sensitive(*words: str) -> None:
    """Words (contact names, ...) that must never reach a log, from now on."""
    with _lock:
        _sensitive.update(w for w in words if len(w.strip()) >= 2)


def redact_record_text(text: str) -> str:
    """The filter's rule for one message: shared rules, then the marked words."""
    text = redact(text)
    with _lock:
        words = sorted(_sensitive, key=len, reverse=True)
    for word in words:
        if word in text:
            text = text.replace(word, "[name]")
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and drops its traceback text's secrets) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is still logged, redacted as is
            message = str(record.msg)
        # The message is one line with no terminal escapes (a traceback below keeps its lines).
        cleaned = escape_log(redact_record_text(message))
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            trace = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact_record_text(trace)
        elif record.exc_text:
            record.exc_text = redact_record_text(record.exc_text)
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file handler whose files are created 0600 (the umask notwithstanding)."""

    def _open(self) -> TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.chmod(self.baseFilename, 0o600)  # a file made by an older version
        # Appending, always: RotatingFileHandler forces "a" when it rotates (maxBytes).
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


# Libraries that log every packet at DEBUG: kept at INFO unless -vvv or --log-level DEBUG.
CHATTY = ("aioice", "aiortc", "aiohttp", "websockets")  # websockets: every frame, payload too


def level_for(verbose: int = 0, log_level: str | None = None) -> int:
    """``--log-level`` wins; else INFO, ``-vv`` DEBUG."""
    if log_level:
        level = logging.getLevelName(log_level.upper())
        if not isinstance(level, int):
            raise ValueError(f"unknown log level {log_level!r} (one of {', '.join(LEVELS)})")
        return level
    return logging.DEBUG if verbose >= 2 else logging.INFO


_handlers: list[logging.Handler] = []


def stop_logging() -> None:
    """Detach and close the handlers :func:`setup_logging` attached (tests run many CLIs)."""
    root = logging.getLogger()
    for handler in _handlers:
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()


def setup_logging(
    log_file: Path, *, verbose: int = 0, log_level: str | None = None, console: bool = False
) -> Path | None:
    """Send log records to ``log_file`` (and stderr when ``console``); idempotent.

    Returns the log file, or None when it cannot be written (the run carries on:
    a log is never a reason to fail).
    """
    stop_logging()
    root = logging.getLogger()
    level = level_for(verbose, log_level)
    redactor = RedactingFilter()
    formatter = logging.Formatter(FORMAT)
    written: Path | None = log_file
    try:
        private_dir(log_file.parent)
        file_handler: logging.Handler = PrivateRotatingFileHandler(
            log_file, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=False
        )
    except OSError:
        written = None
    else:
        file_handler.setLevel(level)
        _handlers.append(file_handler)
    if console:
        _handlers.append(logging.StreamHandler())
        _handlers[-1].setLevel(level)
    for handler in _handlers:
        handler.addFilter(redactor)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries = level < logging.INFO and verbose < 3 and not log_level
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.INFO if quiet_libraries else logging.NOTSET)
    return written
