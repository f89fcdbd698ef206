"""A real redis-server for tests: started on a free loopback port in a temp
directory, with persistence off, and stopped (and waited for) at the end."""

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

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def redis_server(timeout: float = 10.0) -> Iterator[RedisServer]:
    """Run ``redis-server`` on 127.0.0.1 for the duration of the block."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise RedisUnavailable("redis-server not found: run ./dev.sh test (it installs it)")
    with tempfile.TemporaryDirectory(prefix="hello-redis-") as tmp:
        port = _free_port()
        proc = subprocess.Popen(
            [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", tmp, "--logfile", str(Path(tmp) / "redis.log"), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    log = (Path(tmp) / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited early: {log}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                        s.sendall(b"PING\r\n")
                        if s.recv(64).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not answer PING in time")
                time.sleep(0.02)
            yield RedisServer("127.0.0.1", port, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
