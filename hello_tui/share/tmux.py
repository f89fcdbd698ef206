"""``--share-tmux PANE``: share a pane of a running tmux server, read-only unless granted.

The share's pty runs a tmux *client*, not a program of its own:

- **A grouped session.** ``new-session -t SESSION`` makes a session that
  shares the pane's session's windows but has its own current window,
  so showing the pane's window never switches what the sharer's own client
  shows. It is made by our client itself, in one command list with the
  rest, and destroyed as soon as that client leaves (``destroy-unattached``):
  when the share stops, the pty's hang-up ends it.
- **A read-only client that does not resize.** The same command list sets
  ``refresh-client -f read-only,ignore-size`` before tmux reads a key from
  the client: tmux itself ignores its keys, and the sharer's windows keep
  their size. The pty is the window's size (bounded),
  so the viewer sees it whole (plus the status line).
- **Typing goes to the pane only.** The client stays read-only for the
  whole share; what may be typed (the sharer's own input, a granted
  viewer's: the share's grant gate decides, as for any share) goes in with
  ``send-keys -l`` to that pane: literal characters, never tmux's prefix,
  bindings or commands, never another window or session of the sharer's.

The tmux server is the one ``tmux`` itself would use (``$TMUX``, else
``$TMUX_TMPDIR``'s default socket); the client is started with ``$TMUX``
unset (tmux refuses to nest otherwise) and that server's socket named.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import subprocess

from hello_tui.share.session import ShareSession
from hello_tui.share.terminal import MAX_COLS, MAX_ROWS
from hello_tui.share.wire import ShareError

__all__ = ["check_pane", "start_tmux_share"]

TIMEOUT = 5.0  # seconds a tmux command may take
_NAMES = itertools.count(1)  # our grouped sessions' names, in this process
_INFO = "\t".join(("#{socket_path}", "#{session_id}", "#{window_index}", "#{window_width}",
                   "#{window_height}", "#{status}", "#{pane_id}"))  # fmt: skip
QUEUED = 64 * 1024  # characters waiting to be typed into the pane at most


async def _tmux(*args: str, socket: str = "") -> tuple[int, str]:
    """Run one tmux command: (exit code, stdout, else the first line of stderr)."""
    argv = ["tmux", *(("-S", socket) if socket else ()), *args]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return 1, "tmux did not answer"
    except OSError as exc:
        return 1, exc.strerror or str(exc)
    code = proc.returncode or 0
    text = out.decode("utf-8", "replace") if code == 0 else err.decode("utf-8", "replace")
    return code, text.strip() if code == 0 else (text.strip().splitlines() or ["failed"])[0]


class _Typist:
    """Types into one pane with ``send-keys -l`` (literal: no key names, no tmux
    bindings), in order, one tmux command at a time; at most :data:`QUEUED`
    characters wait (a paste beyond that is cut)."""

    def __init__(self, socket: str, pane_id: str) -> None:
        self.socket, self.pane_id = socket, pane_id
        self._queue: list[str] = []
        self._queued = 0
        self._task: asyncio.Task[None] | None = None

    def __call__(self, text: str) -> None:
        text = text.replace("\0", "")  # not in an argv
        if not text or self._queued + len(text) > QUEUED:
            return
        self._queue.append(text)
        self._queued += len(text)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            text = "".join(self._queue)
            self._queue.clear()
            self._queued = 0
            await _tmux("send-keys", "-t", self.pane_id, "-l", "--", text, socket=self.socket)


def _checked(pane: str) -> None:
    if not pane or pane.startswith("-"):
        raise ShareError("--share-tmux needs a tmux pane (e.g. %3 or work:1.0)")
    if shutil.which("tmux") is None:
        raise ShareError("cannot share a tmux pane: tmux is not installed")


def check_pane(pane: str) -> None:
    """Before a call (no loop to stall): ShareError (one line) if tmux or ``pane`` is missing."""
    _checked(pane)
    try:
        done = subprocess.run(
            ["tmux", "list-panes", "-t", pane, "-F", "#{pane_id}"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ShareError(f"no tmux pane {pane!r}: {exc}") from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines() or ["not found"]
        raise ShareError(f"no tmux pane {pane!r}: {err[0]}")


async def start_tmux_share(
    share: ShareSession,
    pane: str,
    *,
    size: tuple[int, int] | None = None,
) -> None:
    """Share tmux pane ``pane`` (any tmux target: ``%3``, ``work:1.0``, ``work``)
    in ``share``; ShareError (one line) if tmux or the pane is missing."""
    _checked(pane)
    code, out = await _tmux("list-panes", "-t", pane, "-F", "#{pane_id}")
    if code != 0:
        raise ShareError(f"no tmux pane {pane!r}: {out}")
    code, out = await _tmux("display-message", "-p", "-t", pane, _INFO)
    fields = out.split("\t")
    if code != 0 or len(fields) != 7 or not (fields[3] + fields[4]).isdigit():
        raise ShareError(f"no tmux pane {pane!r}: {out}")
    socket, session_id, window, width, height, status, pane_id = fields
    if size is None:  # the window, and the status line(s) our client draws under it
        lines = int(status) if status.isdigit() else int(status != "off")
        size = (min(int(width), MAX_COLS), min(int(height) + lines, MAX_ROWS))
    name = f"hello-share-{os.getpid()}-{next(_NAMES)}"
    # One command list: the new session is attached, then made read-only before
    # tmux reads a key from it; destroyed as soon as our client leaves.
    argv = ("env", "-u", "TMUX", "tmux", "-S", socket,
            "new-session", "-t", session_id, "-s", name,
            ";", "set-option", "destroy-unattached", "on",
            ";", "select-window", "-t", f":{window}",
            ";", "refresh-client", "-f", "read-only,ignore-size")  # fmt: skip
    try:
        await share.start(
            argv, cols=size[0], rows=size[1], title=f"tmux {pane}",
            on_input=_Typist(socket, pane_id),
        )  # fmt: skip
    except ShareError as exc:
        raise ShareError(f"cannot share tmux pane {pane!r}: {exc}") from None
