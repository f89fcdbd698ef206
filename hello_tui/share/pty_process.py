"""A command in a pty the sharer owns: spawn it, read it, type into it, end it.

The program gets a new session with the pty as its controlling terminal (so
a shell has job control and ^C reaches its foreground job), the size the
sharer chose (``TIOCSWINSZ``), and ``TERM=xterm-256color``. It is started
with ``posix_spawn`` (``setsid``, then the pty opened by path: a session
leader's first terminal becomes its controlling one), which never copies
this process: a ``fork`` of a process holding a call (aiortc, PyAV, numpy)
stalls the event loop, hence the audio, for tens of milliseconds. Where
``posix_spawn`` cannot, a ``fork`` with ``TIOCSCTTY`` does.

The pty is read by a small process of its own (:mod:`.pump`), which pours
what it reads into a pipe: a pty gives at most 4 KiB a read, the pipe (256
KiB where Linux lets us enlarge it) all it holds, so a flood costs the event
loop one read a frame instead of tens (and as many GIL hand-overs). The
pipe is read on the event loop (``add_reader``); when the reader stops
reading (:meth:`PtyProcess.pause`) the pipe fills, the pump blocks, then the
pty's buffer fills and the program blocks on its writes: a flood is
throttled at its source. Typing goes straight to the pty's master.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import struct
import sys
import termios
from collections.abc import Callable, Sequence

from hello_tui.share.wire import ShareError

__all__ = ["PtyProcess"]

READ_BYTES = 65536  # a pipe read at most, unless the reader says otherwise (read_bytes)
PIPE_BYTES = 256 * 1024  # the pump's pipe, enlarged where the system lets us (Linux)
PUMP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pump.py")
KILL_AFTER = 1.0  # seconds between SIGHUP and SIGKILL when sharing stops


# A spawned child keeps the signals its parent ignores and its thread's mask: the
# shared program starts with them as a terminal gives them, so ^C (the pty's
# SIGINT to its foreground job) works whatever the call's process ignores or
# blocks. (Two full test runs saw a shared cat survive ^C; run alone it ended.)
_TERMINAL_SIGNALS = (
    signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
    signal.SIGPIPE, signal.SIGHUP, signal.SIGTERM, signal.SIGCHLD, signal.SIGWINCH,
)  # fmt: skip


def _controlling_tty() -> None:  # in the child, after setsid: fd 0 is the pty's slave
    for sig in _TERMINAL_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """``argv`` running in a ``cols`` x ``rows`` pty. ``on_data(bytes)`` for each
    read, ``on_eof()`` once the program and its pty are done."""

    def __init__(self, on_data: Callable[[bytes], None], on_eof: Callable[[], None]) -> None:
        self._on_data, self._on_eof = on_data, on_eof
        self.master = -1
        self.pid = 0
        self._out = -1  # the pump's pipe, read end
        self._pump = 0
        self.read_bytes = READ_BYTES
        self.returncode: int | None = None
        self._exited = asyncio.Event()
        self._reaper: asyncio.Task[None] | None = None
        self._reading = False
        self.eof = False

    async def spawn(self, argv: Sequence[str], cols: int, rows: int) -> None:
        if not argv:
            raise ShareError("nothing to share: no command")
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            env = dict(os.environ, TERM="xterm-256color")
            env.pop("COLUMNS", None), env.pop("LINES", None)
            path = shutil.which(argv[0]) if os.sep not in argv[0] else argv[0]
            if path is None:
                raise FileNotFoundError(2, "command not found")
            self.pid = await self._start(path, argv, env, slave)
        except OSError as exc:
            os.close(master)
            raise ShareError(f"cannot run {argv[0]!r}: {exc.strerror or exc}") from None
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self.master = master
        try:
            self._out, self._pump = await self._start_pump(master)
        except OSError as exc:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)  # killed: at once
            os.close(master)
            self.master = -1
            raise ShareError(f"cannot read the terminal: {exc.strerror or exc}") from None
        self._reaper = asyncio.get_running_loop().create_task(self._reap())
        self.resume()

    @staticmethod
    async def _start(path: str, argv: Sequence[str], env: dict[str, str], slave: int) -> int:
        if hasattr(os, "POSIX_SPAWN_OPEN") and os.uname().sysname == "Linux":
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.ttyname(slave), os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ]
            return os.posix_spawn(
                path, list(argv), env, file_actions=actions, setsid=True,
                setsigdef=_TERMINAL_SIGNALS, setsigmask=(),
            )  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            path, *argv[1:], stdin=slave, stdout=slave, stderr=slave, env=env,
            start_new_session=True, preexec_fn=_controlling_tty,
        )  # fmt: skip
        return process.pid

    @staticmethod
    async def _start_pump(master: int) -> tuple[int, int]:
        """The pump reading ``master`` into a new pipe: (the pipe's read end, its pid)."""
        out, into = os.pipe()
        if hasattr(fcntl, "F_SETPIPE_SZ"):
            with contextlib.suppress(OSError):  # a lower pipe-max-size: the default 64 KiB
                fcntl.fcntl(out, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        argv = [sys.executable, "-I", "-S", PUMP]
        try:
            if hasattr(os, "posix_spawn"):
                actions = [
                    (os.POSIX_SPAWN_DUP2, master, 0),
                    (os.POSIX_SPAWN_DUP2, into, 1),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
                ]
                # Its own process group: ^C in the caller's terminal does not end it.
                pid = os.posix_spawn(sys.executable, argv, {}, file_actions=actions, setpgroup=0)
            else:
                process = await asyncio.create_subprocess_exec(
                    *argv, stdin=master, stdout=into, stderr=asyncio.subprocess.DEVNULL, env={},
                    start_new_session=True,
                )  # fmt: skip
                pid = process.pid
        except OSError:
            os.close(out)
            raise
        finally:
            os.close(into)
        os.set_blocking(out, False)
        return out, pid

    async def _reap(self) -> None:
        """Collect the program's exit (polled: no SIGCHLD handler is ours to take)."""
        delay = 0.02
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (asyncio's watcher, fork path)
                pid, status = self.pid, 0
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self._exited.set()
                return
            await asyncio.sleep(delay)
            delay = min(0.25, delay * 2)

    # ------------------------------------------------------------ reading
    def resume(self) -> None:
        if not self._reading and self._out >= 0 and not self.eof:
            asyncio.get_running_loop().add_reader(self._out, self._readable)
            self._reading = True

    def pause(self) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(self._out)
            self._reading = False

    def _readable(self) -> None:
        try:
            data = os.read(self._out, self.read_bytes)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._on_data(data)
            return
        self.pause()
        self.eof = True
        self._on_eof()

    # ------------------------------------------------------------ typing
    def write(self, data: bytes) -> int:
        """Type ``data`` (what fits now: a program that reads nothing does not
        make the call wait); the number of bytes taken."""
        if self.master < 0 or self.eof:
            return 0
        try:
            return os.write(self.master, data)
        except (BlockingIOError, OSError):
            return 0

    # ------------------------------------------------------------ the end
    async def wait(self) -> int | None:
        """The program's exit code, once it exited."""
        await self._exited.wait()
        return self.returncode

    async def close(self) -> None:
        """Hang the program up (SIGHUP to its session, SIGKILL if it lingers)."""
        self.pause()
        if self.pid and not self._exited.is_set():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGHUP)
            try:
                await asyncio.wait_for(self._exited.wait(), KILL_AFTER)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                await self._exited.wait()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        if self._out >= 0:  # the pump exits (EPIPE, POLLERR or the pty's end)
            os.close(self._out)
            self._out = -1
        if self._pump:
            pump, self._pump = self._pump, 0
            await _reap_pump(pump)


async def _reap_pump(pid: int) -> None:
    """Collect the pump (it ends with the pty or its pipe; SIGKILL if it lingers)."""
    delay, waited = 0.005, 0.0
    while True:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        if waited > KILL_AFTER:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(delay)
        waited += delay
        delay = min(0.1, delay * 2)
