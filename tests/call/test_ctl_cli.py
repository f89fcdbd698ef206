"""``hello-tui ctl`` steers a call another process holds, through its control socket.

Real processes: an ``answer --auto`` service (no --json, no stdin), a real
caller through the real server, and ``hello-tui ctl`` as subprocesses.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

from hello_tui.call import events as ev
from hello_tui.session.control_dir import live_sockets, runtime_dir
from tests.call.conftest import Env, T


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def ctl(*args: str) -> tuple[int, str, str]:
    proc = await _spawn("ctl", *args)
    out, err = await asyncio.wait_for(proc.communicate(), T)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def _socket_of(proc: asyncio.subprocess.Process) -> Path:
    async with asyncio.timeout(T):
        while True:
            for pid, path in live_sockets():
                if pid == proc.pid:
                    return path
            assert proc.returncode is None, "the service exited"
            await asyncio.sleep(0.05)  # polling for a file: no event to wait on


async def _chat_from(call: Any, text: str) -> ev.ChatMessage:
    async with asyncio.timeout(T):
        async for event in call.events():
            if isinstance(event, ev.ChatMessage) and (event.sender, event.text) == (
                "remote",
                text,
            ):
                return event
    raise AssertionError(f"no chat {text!r}")


async def test_ctl_steers_an_answer_service(env: Env) -> None:
    proc = await _spawn("account", "register", "carol", "--server", env.url)
    await asyncio.wait_for(proc.communicate(), T)
    assert proc.returncode == 0
    service = await _spawn("answer", "--auto", "--once", "--server", env.url,
                           "--audio-in", "null:", "--audio-out", "null:")  # fmt: skip
    try:
        path = await _socket_of(service)
        # Only this user: the socket 0600 in a 0700 directory.
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert path.parent == runtime_dir()

        code, out, err = await ctl("chat", "anyone?")
        assert (code, out) == (1, "") and err.strip() == "hello-tui: error: no call in progress"

        alice = await env.phone("alice")
        call = alice.dial("carol")
        await call.wait_for(ev.MediaFlowing, T)

        code, out, _ = await ctl("list")
        assert code == 0
        assert out.startswith(f"{service.pid}  answer as carol  call alice (connected")

        follower = await _spawn("ctl", "events", "--until-ended")
        assert follower.stdout is not None
        first = json.loads(await asyncio.wait_for(follower.stdout.readline(), T))
        assert first["kind"] == "control" and first["pid"] == service.pid
        assert first["calls"][0]["stage"] == "connected"
        code, out, err = await ctl("chat", "hi alice \x1b[2J")
        assert (code, out, err) == (0, "", "")
        got = await _chat_from(call, "hi alice \x1b[2J")  # data: the receiver escapes it
        assert got.name == "carol"

        call.send_chat("hi carol")
        code, _, _ = await ctl("mute", "--pid", str(service.pid))
        assert code == 0
        code, _, err = await ctl("camera", "on")
        assert code == 1 and "no video" in err and err.count("\n") == 1

        code, _, _ = await ctl("hangup")
        assert code == 0
        assert (await call.wait_ended(T)).reason == "hangup"

        out_b, _ = await asyncio.wait_for(follower.communicate(), T)
        lines = [json.loads(line) for line in out_b.splitlines()]
        kinds = [x["kind"] for x in lines]
        assert kinds[-1] == "ended" and "muted" in kinds
        chats = [(x["from"], x["text"]) for x in lines if x["kind"] == "chat"]
        assert ("local", "hi alice \x1b[2J") in chats and ("remote", "hi carol") in chats
        assert follower.returncode == 0

        await asyncio.wait_for(service.wait(), T)  # --once: the service is done
        assert service.returncode == 0
        assert not path.exists()  # its socket went with it
    finally:
        await _stop(service)


async def test_ctl_errors_are_one_line(tmp_path: Path) -> None:
    code, out, err = await ctl("hangup")
    assert code == 1 and out == ""
    assert err.startswith("hello-tui: error: no hello-tui process is running")
    assert err.count("\n") == 1

    # A socket left by a process that is gone is removed, not listed.
    where = runtime_dir()
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    stale = where / f"ctl-{dead.pid}.sock"
    stale.touch()
    code, out, _ = await ctl("list")
    assert (code, out) == (0, "No hello-tui process is running.\n")
    assert not stale.exists()

    # A live process whose socket does not answer: refused, in one line.
    mute = where / f"ctl-{os.getpid()}.sock"
    mute.touch()
    code, _, err = await ctl("mute", "--pid", str(os.getpid()))
    assert code == 1 and "refused" in err and err.count("\n") == 1
    code, _, err = await ctl("mute", "--pid", "1")
    assert (
        code == 1
        and err.strip() == "hello-tui: error: no hello-tui process 1 with a control socket"
    )
