"""``hello-tui answer`` with a hostile caller name (issue 10, item 3): the name's
ESC sequences and newlines are shown, never obeyed, and forge no line.

The server's name policy would refuse this name, so it is switched off here: the
CLI must be safe against a malicious server too. JSON output keeps the name
exactly (escaped by the encoder)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from hello_tui.call import events as ev
from hello_tui.util.display import printable
from tests.call.conftest import Env, T
from tests.call.test_call_cli import _run, _spawn

HOSTILE = "Mum\r\nIncoming call from Your Bank\x1b[2J\x1b]0;owned\x07\u202e"


async def _answer_one(env: Env, caller: str, *flags: str) -> tuple[int, str, str]:
    proc = await _spawn(
        "answer", "--auto", "--once", "--server", env.url, "--audio-in", "sine:880",
        "--audio-out", "null:", "--duration", "1", *flags,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        await asyncio.wait_for(proc.stdout.readline(), T)  # listening
        mallory = await env.phone(caller)
        call = mallory.dial("carol", audio_in="sine:440")
        await call.wait_for(ev.MediaFlowing, T)
        await call.wait_ended(T)
        out, err = await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_answer_shows_a_hostile_caller_on_one_line(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from hello_tui.server import accounts

    monkeypatch.setattr(accounts, "check_name", lambda name: name)  # a hostile server
    code, _, err = await _run("account", "register", "carol", "--server", env.url)
    assert code == 0, err
    code, out, err = await _answer_one(env, HOSTILE)
    assert code == 0, err
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    lines = out.splitlines()
    assert lines[0] == "Incoming call from " + printable(HOSTILE)
    assert lines[0] == ("Incoming call from Mum␍␊Incoming call from Your Bank␛[2J␛]0;owned␇\ufffd")
    assert sum(line.startswith("Incoming call from") for line in lines) == 1  # no forged line
    assert lines[1] == "Ringing..." and lines[2] == "Connecting..."
    assert any(line.startswith("Call with ") and " ended after " in line for line in lines)

    again = "2 " + HOSTILE  # another account: JSON keeps the name, escaped
    code, out, err = await _answer_one(env, again, "--json")
    assert code == 0, err
    assert "\x1b" not in out and "\r" not in out
    first = json.loads(out.splitlines()[0])
    assert first["kind"] == "incoming" and first["caller"] == again
