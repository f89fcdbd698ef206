"""A crash of the TUI: exit code 1 and one line on stderr saying where the crash
report is (hello_tui/tui/app.py re-raises; hello_tui/cli/main.py saves it).

The real ``hello-tui`` runs in a real terminal (tmux, 80x24); the fault is
injected into the process before ``main()`` runs: a stylesheet path that does
not exist (what a wheel without its .tcss did: exit 0 after a traceback), and a
key handler that raises once the main screen is up.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.packaging.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]

FAULTS = {
    "stylesheet": "a.HelloApp.CSS_PATH = 'no-such-styles.tcss'",
    "key-handler": (
        "def boom(self):\n"
        "    raise RuntimeError('injected fault')\n"
        "a.HelloApp.action_settings = boom"
    ),
}
SCRIPT = """\
import sys
import hello_tui.tui.app as a
{fault}
from hello_tui.cli.main import main
sys.exit(main([]))
"""


@pytest.mark.parametrize(("fault", "error"), [("stylesheet", "StylesheetError"),
                                              ("key-handler", "RuntimeError")])  # fmt: skip
def test_a_crash_exits_1_with_one_line_naming_the_report(
    tmp_path: Path, fault: str, error: str
) -> None:
    home = tmp_path / "home"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_STATE_HOME": str(home / "state"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
    }
    term = Terminal(tmp_path)
    try:
        term.start([sys.executable, "-c", SCRIPT.format(fault=FAULTS[fault])], env, tmp_path)
        if fault == "key-handler":
            term.wait_screen(lambda s: "Search contacts" in s, "main screen")
            term.keys("s")
        assert term.wait_exit() == 1
        screen = term.wait_screen(lambda s: "crash report" in s, "the crash line")
    finally:
        term.close()
    lines = [line for line in screen.splitlines() if line.strip()]
    assert len(lines) == 1, screen  # no traceback, nothing else
    (line,) = lines
    assert line.startswith(f"hello-tui: internal error: {error}: "), line
    match = re.search(r"a crash report was saved in (\S+\.json) ", line)
    assert match, line
    report = Path(match.group(1))
    assert report.is_relative_to(home / "data")
    body = json.loads(report.read_text(encoding="utf-8"))
    assert body["error"] == error
    assert error in body["traceback"]
