"""A real 80x24 terminal for a whole ``hello-tui`` process: a private tmux server.

The pane runs the command with exactly the environment given (``env -i``),
writes its exit code to a file, then idles so the screen stays readable.
Waits poll the screen or the file against a generous deadline, never a fixed
sleep.
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

DEADLINE = 90.0  # seconds: a loaded 2-core machine, cold imports


class Terminal:
    def __init__(self, workdir: Path, cols: int = 80, rows: int = 24) -> None:
        self.workdir = workdir
        self.socket = workdir / "tmux.sock"
        self.rc_file = workdir / "exit-code"
        self.size = (cols, rows)

    def _tmux(self, *args: str) -> str:
        proc = subprocess.run(
            ["tmux", "-f", "/dev/null", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return proc.stdout

    def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> None:
        assigns = [f"{k}={v}" for k, v in {**env, "TERM": "screen-256color"}.items()]
        script = (
            f"cd {shlex.quote(str(cwd))} && env -i {shlex.join([*assigns, *argv])}; "
            f"echo $? > {shlex.quote(str(self.rc_file))}; sleep 3600"
        )
        cols, rows = self.size
        self._tmux("new-session", "-d", "-x", str(cols), "-y", str(rows), "-s", "t", script)

    def screen(self) -> str:
        """The visible screen, wrapped lines joined."""
        return self._tmux("capture-pane", "-p", "-J", "-t", "t")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "t", *keys)

    def wait_screen(self, predicate: Callable[[str], bool], what: str) -> str:
        deadline = time.monotonic() + DEADLINE
        exited_at = None
        text = ""
        while time.monotonic() < deadline:
            text = self.screen()
            if predicate(text):
                return text
            if exited_at is None and self.exit_code() is not None:
                exited_at = time.monotonic()  # its last output may still be on its way
            if exited_at is not None and time.monotonic() - exited_at > 5:
                raise AssertionError(f"the process exited before {what}; screen:\n{text}")
            time.sleep(0.2)
        raise AssertionError(f"no {what} within {DEADLINE:.0f} s; screen:\n{text}")

    def exit_code(self) -> int | None:
        try:
            text = self.rc_file.read_text().strip()
        except FileNotFoundError:
            return None
        return int(text) if text else None

    def wait_exit(self) -> int:
        deadline = time.monotonic() + DEADLINE
        while (code := self.exit_code()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {DEADLINE:.0f} s:\n{self.screen()}")
            time.sleep(0.2)
        return code

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"], capture_output=True, timeout=30
        )
