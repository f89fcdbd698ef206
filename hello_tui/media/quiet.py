"""Keep ALSA / PortAudio / JACK chatter off the terminal.

Two layers, because the noise comes from two places:

* libasound prints its errors ("ALSA lib pcm.c:...: Unknown PCM") through a
  process-wide handler; :func:`silence_alsa_errors` replaces it with a no-op
  via ctypes, once. That covers messages printed at any time, including from
  PortAudio's callback thread, without touching file descriptors.
* Other libraries (JACK probing, libpulse) write straight to fd 2. While
  PortAudio initialises or opens/closes a stream, :func:`quiet_stderr`
  points fd 2 at /dev/null at the OS level (``dup2``) and restores it.

PortAudio also prints its own failures ("Expression '...' failed in
'src/hostapi/alsa/pa_linux_alsa.c'") from its callback thread at any time —
e.g. when the sound server goes away mid-call — and offers no hook for them.
For that, a front end calls :func:`divert_stderr` once at start-up: fd 2 then
goes to /dev/null (or a log file) for good, while ``sys.stderr`` and
``sys.__stderr__`` are rebound to a duplicate of the original terminal fd, so
Python (and Textual, which draws on ``sys.__stderr__``) still reach it.
Without it, the brief :func:`quiet_stderr` windows also swallow whatever the
TUI writes meanwhile; :func:`set_fd2_redirect` can turn them off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

# void handler(const char *file, int line, const char *func, int err, const char *fmt, ...)
# A no-op may ignore the variadic tail, so a fixed-argument prototype is safe.
_ALSA_HANDLER_T = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)


def _ignore(_file: bytes, _line: int, _func: bytes, _err: int, _fmt: bytes) -> None:
    return None


_handler = _ALSA_HANDLER_T(_ignore)  # kept alive for the life of the process
_alsa_silenced = False
_fd2_redirect = True
_diverted = False
_lock = threading.RLock()


def silence_alsa_errors() -> bool:
    """Install a no-op libasound error handler; return whether libasound was found."""
    global _alsa_silenced
    with _lock:
        if _alsa_silenced:
            return True
        name = ctypes.util.find_library("asound") or "libasound.so.2"
        try:
            lib = ctypes.CDLL(name)
            lib.snd_lib_error_set_handler(_handler)
        except (OSError, AttributeError):
            return False
        _alsa_silenced = True
        return True


def divert_stderr(log_path: str | None = None) -> bool:
    """Send C-level writes to fd 2 to ``log_path`` (default /dev/null) for the rest of the run.

    Python's ``sys.stderr``/``sys.__stderr__`` keep writing to the original
    stderr through a duplicated fd. Call before the TUI starts. Returns False
    (and changes nothing) if fd 2 is not open. Idempotent.
    """
    global _diverted
    with _lock:
        if _diverted:
            return True
        try:
            original = os.dup(2)
        except OSError:
            return False
        with suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()
        encoding = getattr(sys.__stderr__, "encoding", None) or "utf-8"
        stream = os.fdopen(original, "w", buffering=1, encoding=encoding, errors="backslashreplace")
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        target = os.open(log_path or os.devnull, flags, 0o600)
        os.dup2(target, 2)
        os.close(target)
        if sys.stderr is sys.__stderr__ or sys.stderr is None:
            sys.stderr = stream
        # typeshed declares sys.__stderr__ Final, but CPython lets it be rebound and
        # Textual draws on it: rebinding it is the point here.
        sys.__stderr__ = stream  # type: ignore[misc]
        _diverted = True
        silence_alsa_errors()
        return True


def set_fd2_redirect(enabled: bool) -> None:
    """Allow or forbid :func:`quiet_stderr` to redirect fd 2 (see module docstring)."""
    global _fd2_redirect
    _fd2_redirect = enabled


@contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence ALSA, and send fd 2 to /dev/null for the duration of the block."""
    silence_alsa_errors()
    with _lock:
        if not _fd2_redirect or _diverted:  # diverted: fd 2 already goes nowhere visible
            yield
            return
        with suppress(AttributeError, ValueError, OSError):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing to protect
            yield
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
