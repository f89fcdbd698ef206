"""Real ``hello-tui serve`` subprocesses sharing one Redis, for tests that kill
instances (``kill -9``) or put a proxy in front of them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.server.conftest import Client

ROOT = Path(__file__).resolve().parents[2]
QUIET = ["--rate", "0", "--max-connections-per-ip", "0", "--registrations-per-network", "0",
         "--pending-calls-per-network", "0", "--rooms-per-network", "0"]  # fmt: skip


@dataclass
class Instance:
    proc: asyncio.subprocess.Process
    url: str
    log: Path

    async def kill(self) -> None:
        """``kill -9``: no goodbye to anyone, nothing cleaned up."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def terminate(self, timeout: float = 20.0) -> int:
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            await self.kill()
            raise


@dataclass
class Fleet:
    """Instances started by a test (all stopped at the end) and their clients."""

    tmp: Path
    redis_url: str
    http: aiohttp.ClientSession
    instances: list[Instance] = field(default_factory=list)
    clients: list[Client] = field(default_factory=list)
    started: int = 0  # instances begun (numbered before any await: starts may overlap)

    async def start(self, *flags: str) -> Instance:
        secret = self.tmp / "secret"
        if not secret.exists():
            secret.write_bytes(os.urandom(32))
            secret.chmod(0o600)
        index = self.started
        self.started += 1
        log = self.tmp / f"instance-{index}.log"
        cmd = [sys.executable, "-m", "hello_tui", "serve", "--port", "0", "--no-echo",
               "--redis", self.redis_url, "--secret-file", str(secret),
               "--data-dir", str(self.tmp / f"data-{index}"), "--log-level", "warning",
               *QUIET, *flags]  # fmt: skip
        with log.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdout=asyncio.subprocess.PIPE, stderr=err, cwd=ROOT
            )
        assert proc.stdout is not None
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        except TimeoutError:
            line = ""
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"instance did not start: {log.read_text()[-2000:]}")
        instance = Instance(proc, match.group(1), log)
        self.instances.append(instance)
        return instance

    async def client(self, url: str, name: str | None = None) -> Client:
        ws = await self.http.ws_connect(url + "/ws")
        client = Client(ws)
        self.clients.append(client)
        await client.hello()
        if name is not None:
            await client.account(name)
        return client

    async def stop(self) -> None:
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.ws.close()
        for instance in self.instances:
            if instance.proc.returncode is None:
                with contextlib.suppress(Exception):
                    await instance.terminate()
