"""Scripts steer a live call: ``--json`` commands on stdin of a real subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from hello_tui.call import events as ev
from tests.call.conftest import Env, T


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", *args,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


class Lines:
    """The subprocess's JSON lines, read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.seen: list[dict[str, Any]] = []

    async def until(self, wanted: Any) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(T):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"stdout closed; seen {[s['kind'] for s in self.seen]}"
                line: dict[str, Any] = json.loads(raw)
                self.seen.append(line)
                if wanted(line):
                    return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")


async def _finish(proc: asyncio.subprocess.Process) -> tuple[bytes, bytes]:
    try:
        return await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_call_echo_json_chat_on_stdin_gets_the_echo_and_bad_lines_get_errors() -> None:
    proc = await _spawn("call", "echo", "--json")  # the embedded server and echo peer
    lines = Lines(proc)
    try:
        lines.send('{"cmd": "chat", "text": "hello <echo>"}')  # before connecting: it waits
        lines.send("this is not json")
        lines.send('{"cmd": "dance"}')
        lines.send('{"cmd": "chat"}')
        lines.send('{"cmd": "camera", "on": true}')  # an audio call: refused, goes on
        local = await lines.until(lambda x: x["kind"] == "chat" and x["from"] == "local")
        assert local["text"] == "hello <echo>"
        echoed = await lines.until(lambda x: x["kind"] == "chat" and x["from"] == "remote")
        assert (echoed["text"], echoed["name"]) == ("echo: hello <echo>", "echo")
        lines.send('{"cmd": "mute"}')
        await lines.until(lambda x: x["kind"] == "muted")
        lines.send('{"cmd": "hangup"}')
        await lines.until(lambda x: x["kind"] == "ended")
        out, err = await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    seen = lines.seen + [json.loads(raw) for raw in out.splitlines()]
    errors = [x["message"] for x in seen if x["kind"] == "error"]
    assert len(errors) == 4, errors
    assert "not a JSON command" in errors[0] and "unknown command" in errors[1]
    assert "text" in errors[2] and "no video" in errors[3]
    ended = next(x for x in seen if x["kind"] == "ended")
    assert ended["reason"] == "hangup" and ended["stage"] == "connected"
    assert seen[-1]["kind"] == "stats" and seen[-1]["exit_code"] == 0


async def test_stdin_closing_changes_nothing() -> None:
    # 5 s: the echo's answer must come back before the call ends by itself, and
    # the data channel can open late on a loaded machine (2 s was not always enough).
    proc = await _spawn("call", "echo", "--json", "--duration", "5")
    lines = Lines(proc)
    lines.send('{"cmd": "chat", "text": "then stdin closes"}')
    assert proc.stdin is not None
    proc.stdin.close()  # the call goes on until --duration
    try:
        got = await lines.until(lambda x: x["kind"] == "chat" and x["from"] == "remote")
        assert got["text"] == "echo: then stdin closes"
        ended = await lines.until(lambda x: x["kind"] == "ended")
        await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert ended["reason"] == "hangup" and ended["duration"] >= 1.5
    assert proc.returncode == 0


async def test_answer_json_chats_with_the_caller(env: Env) -> None:
    proc = await _spawn("account", "register", "carol", "--server", env.url)
    await _finish(proc)
    assert proc.returncode == 0
    proc = await _spawn("answer", "--auto", "--once", "--server", env.url, "--json")
    lines = Lines(proc)
    try:
        await lines.until(lambda x: x["kind"] == "listening")
        lines.send('{"cmd": "chat", "text": "nobody to talk to"}')
        error = await lines.until(lambda x: x["kind"] == "error")
        assert error["message"] == "no call in progress"
        alice = await env.phone("alice")
        call = alice.dial("carol")
        await call.wait_for(ev.Connected, T)
        call.send_chat("hi carol")
        got = await lines.until(lambda x: x["kind"] == "chat")
        assert (got["from"], got["name"], got["text"]) == ("remote", "alice", "hi carol")
        lines.send('{"cmd": "chat", "text": "hi alice"}')
        async with asyncio.timeout(T):
            async for event in call.events():
                if isinstance(event, ev.ChatMessage) and event.sender == "remote":
                    assert (event.text, event.name) == ("hi alice", "carol")
                    break
        lines.send('{"cmd": "hangup"}')
        assert (await call.wait_ended(T)).reason == "hangup"
        await _finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
