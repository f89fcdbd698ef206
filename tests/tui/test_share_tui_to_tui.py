"""Two TUIs share a terminal through the real server (issue 19's "TUI ↔ TUI").

Alice is this process's app under Pilot; bob is a whole ``hello-tui`` process
in a private tmux at 80x24 (tests/packaging/terminal.py), driven by keys and
read from the screen as a person would. Alice shares ``cat``: bob sees it,
read-only; his keys go nowhere near her pty until she grants control (``g``),
then they do; ``g`` again takes it back and his keys stop reaching it.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input

from hello_tui.contacts.model import Contact
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.forms import TextPrompt
from hello_tui.tui.widgets.shared_terminal import BANNER, SharedTerminal
from tests.packaging.terminal import Terminal

from .conftest import (
    TEST_AUDIO,
    T,
    register_tui_account,
    visible_text,
    wait_until,
    write_config,
)

XDG = ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")


async def _bob_profile(server: str, home: Path) -> dict[str, str]:
    """Bob's own XDG directories with his account and config; his process's env."""
    saved = {var: os.environ[var] for var in XDG}
    env = {var: str(home / var.lower()) for var in XDG}
    os.environ.update(env)
    try:
        config = await register_tui_account(server, "bob@example.org")
        write_config({**config, **TEST_AUDIO})
    finally:
        os.environ.update(saved)
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    return {
        **env,
        "XDG_RUNTIME_DIR": str(runtime),
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "HELLO_TUI_ICE_HOSTS": "127.0.0.1",
        "LANG": "C.UTF-8",
    }


async def _until_screen(term: Terminal, what: str, check: Any) -> str:
    """Bob's screen, once ``check(screen)`` holds (polled off the event loop)."""
    return await asyncio.to_thread(term.wait_screen, check, what)


@pytest.mark.skipif(not Path("/usr/bin/tmux").exists(), reason="tmux is not installed")
async def test_alice_shares_and_bob_types_only_once_granted(server: str, tmp_path: Path) -> None:
    bob_env = await _bob_profile(server, tmp_path / "bob")
    config = await register_tui_account(server, "alice@example.org")
    write_config({**config, **TEST_AUDIO})
    term = Terminal(tmp_path)
    term.start([sys.executable, "-m", "hello_tui"], bob_env, tmp_path)
    try:
        await _until_screen(term, "bob online", lambda s: "online as bob@example.org" in s)
        app = HelloApp(ring_bell=False)
        async with app.run_test(size=(80, 24)) as pilot:
            await asyncio.wait_for(app.ready.wait(), T)
            app.call_contact(Contact(name="Bob", emails=["bob@example.org"]))
            await _until_screen(term, "the incoming prompt", lambda s: "alice@example.org" in s)
            term.keys("a")
            await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call")
            call = app.last_call
            await wait_until(pilot, lambda: call.share.open, what="the share channel")

            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt), what="prompt")
            app.screen.query_one(Input).value = "cat"
            await pilot.press("enter")
            view = app.screen.query_one(SharedTerminal)
            await _until_screen(term, "alice's share", lambda s: "They share: cat" in s)
            await _until_screen(term, "read-only", lambda s: "read-only" in s)

            # Bob asks to type while read-only: a notice, and his keys stay the
            # call's (tests/call/test_share.py proves a viewer's own frames sent
            # without a grant never reach the pty).
            term.keys("i")
            await _until_screen(term, "the notice", lambda s: "not given you control" in s)
            # Alice types: her line reaches his screen.
            await pilot.press("i", *"from alice", "enter", "escape")
            await wait_until(pilot, lambda: "from alice" in view.text(), what="alice's echo")
            await _until_screen(term, "alice's line", lambda s: "from alice" in s)

            # g grants: the banner on her side, "you may type" on his; his keys arrive.
            await pilot.press("g")
            await wait_until(pilot, lambda: BANNER in visible_text(app), what="banner")
            await _until_screen(term, "control", lambda s: "you may type" in s)
            term.keys("i")
            term.keys("-l", "bob-granted")
            term.keys("Enter", "Escape")
            await wait_until(pilot, lambda: "bob-granted" in view.text(), what="bob's keys")

            # g again takes it back: his typing mode ends with a notice.
            await pilot.press("g")
            await wait_until(pilot, lambda: BANNER not in visible_text(app), what="no banner")
            await _until_screen(term, "read-only again", lambda s: "read-only" in s)
            term.keys("i")
            await _until_screen(term, "the notice again", lambda s: "not given you" in s)
            await pilot.press("i", *"alice again", "enter", "escape")
            await wait_until(pilot, lambda: "alice again" in view.text(), what="alice again")
            await _until_screen(term, "alice again", lambda s: "alice again" in s)
            assert view.text().count("bob-granted") == 2  # typed once: the tty echo, then cat
            await pilot.press("h")
    finally:
        term.close()
