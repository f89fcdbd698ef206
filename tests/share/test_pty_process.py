"""The shared program's pty and its reader (the pump process): output arrives
in order and whole, the end is seen, and a call process that dies without
closing anything leaves neither the program nor the pump behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from hello_tui.share.pty_process import PtyProcess

T = 30.0


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_output_arrives_whole_through_the_pump_and_the_end_is_seen() -> None:
    got = bytearray()
    ended = asyncio.Event()
    pty = PtyProcess(got.extend, ended.set)
    # 300 KB: more than the pipe and the pty hold, so the pump blocks and resumes.
    script = "i=0; while [ $i -lt 3000 ]; do printf '%099d\\n' $i; i=$((i+1)); done; exit 3"
    await pty.spawn(["sh", "-c", script], 120, 40)
    await asyncio.wait_for(ended.wait(), T)
    assert await asyncio.wait_for(pty.wait(), T) == 3
    await pty.close()
    lines = bytes(got).split(b"\r\n")  # the pty turns LF into CR LF
    assert lines[:-1] == [b"%099d" % i for i in range(3000)] and lines[-1] == b""


async def test_typing_reaches_the_program() -> None:
    got = bytearray()
    pty = PtyProcess(got.extend, lambda: None)
    await pty.spawn(["cat"], 80, 24)
    assert pty.write(b"typed here\r") == len(b"typed here\r")
    async with asyncio.timeout(T):
        while got.count(b"typed here") < 2:  # the pty's echo, then cat's copy
            await asyncio.sleep(0.01)
    await pty.close()
    assert pty.returncode is not None


def test_a_call_that_dies_leaves_no_shared_program_behind(tmp_path: Path) -> None:
    """The call's process is killed (no close, no SIGHUP from it): the pump sees
    its pipe's reader gone and exits, the pty closes, the shell is hung up."""
    code = textwrap.dedent(
        """
        import asyncio, os, sys
        from hello_tui.share.pty_process import PtyProcess

        async def main():
            prompt = asyncio.Event()
            pty = PtyProcess(lambda data: prompt.set(), lambda: None)
            await pty.spawn(["sh"], 80, 24)
            await prompt.wait()  # the pump is idle now, waiting for the shell
            await asyncio.sleep(0.2)
            print(pty.pid, pty._pump, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout is not None
        shell, pump = map(int, child.stdout.readline().split())
        assert _alive(shell) and _alive(pump)
    finally:
        child.kill()
        child.wait()
    deadline = time.monotonic() + T
    while (_alive(shell) or _alive(pump)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(shell) and not _alive(pump)


async def test_ctrl_c_ends_the_program_whatever_the_caller_ignores_or_blocks() -> None:
    # The shared program is the user's terminal: ^C must reach its foreground job
    # even when the call's process ignores or blocks SIGINT (a test runner, a
    # daemon, a thread's mask) - a spawned child keeps ignored signals and masks.
    ended = asyncio.Event()
    pty = PtyProcess(lambda _data: None, ended.set)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGQUIT})
    try:
        await pty.spawn(["cat"], 80, 24)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signal.SIGINT, previous)
    pty.write(b"\x03")
    try:
        await asyncio.wait_for(ended.wait(), T)
        assert await asyncio.wait_for(pty.wait(), T) == -signal.SIGINT
    finally:
        await pty.close()
