"""A real redis-server for tests: started on a free loopback port in a temp
directory, with persistence off, and stopped (and waited for) at the end.

:class:`RestartableRedis` is one that a test stops and starts again on the
same port and directory, with its append-only file on (as production runs it,
docs/scaling.md), so what was written before the restart is still there."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class RedisUnavailable(RuntimeError):
    """redis-server is not installed (./dev.sh test installs it)."""


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    socket: Path | None = None  # its unix socket too (redis_server(unix=True))

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    @property
    def unix_url(self) -> str:
        assert self.socket is not None, "started without unix=True"
        return f"unix://{self.socket}?db=0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _exe() -> str:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RedisUnavailable("redis-server not found: run ./dev.sh test (it installs it)")
    return exe


def _start(
    port: int, workdir: Path, *, persist: bool, timeout: float, unixsocket: Path | None = None
) -> subprocess.Popen[bytes]:
    """redis-server on 127.0.0.1:``port`` (and ``unixsocket``), once it answers PING."""
    unix = ["--unixsocket", str(unixsocket), "--unixsocketperm", "700"] if unixsocket else []
    proc = subprocess.Popen(
        [_exe(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "yes" if persist else "no", "--appendfsync", "always",
         "--dir", str(workdir), "--logfile", str(workdir / "redis.log"),
         "--protected-mode", "yes", *unix],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            log = (workdir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server exited early: {log}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return proc
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError("redis-server did not answer PING in time")
        time.sleep(0.02)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


@contextmanager
def redis_server(timeout: float = 10.0, unix: bool = False) -> Iterator[RedisServer]:
    """Run ``redis-server`` on 127.0.0.1 (and a unix socket) for the block."""
    _exe()
    with tempfile.TemporaryDirectory(prefix="hello-redis-") as tmp:
        port = _free_port()
        sock = Path(tmp) / "redis.sock" if unix else None
        proc = _start(port, Path(tmp), persist=False, timeout=timeout, unixsocket=sock)
        try:
            yield RedisServer("127.0.0.1", port, proc, sock)
        finally:
            _stop(proc)


class RestartableRedis:
    """A redis-server with its append-only file, stopped and started at will."""

    def __init__(self, workdir: Path, timeout: float = 10.0) -> None:
        self.dir, self.timeout = workdir, timeout
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = _start(self.port, self.dir, persist=True, timeout=self.timeout)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)
            self.proc = None


@contextmanager
def restartable_redis(timeout: float = 10.0) -> Iterator[RestartableRedis]:
    _exe()
    with tempfile.TemporaryDirectory(prefix="hello-redis-") as tmp:
        srv = RestartableRedis(Path(tmp), timeout)
        srv.start()
        try:
            yield srv
        finally:
            srv.stop()
