"""``hello-tui serve`` as a real process: port 0, graceful SIGTERM; ``serve invite``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

from hello_tui.signaling import protocol as p
from tests.conftest import Result
from tests.server.conftest import Client


async def test_serve_port_zero_and_graceful_sigterm(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hello_tui",
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--secret-file",
        str(secret),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        assert line.startswith("hello-tui server listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_bytes()) == 32
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(f"{url}/ws")
            client = Client(ws)
            await client.hello()
            await client.account("alice")
            proc.send_signal(signal.SIGTERM)
            await client.expect(p.Reconnect)
            await ws.close()
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
        errors = (await proc.stderr.read()).decode()
        assert "127.0.0.0/24" in errors and "127.0.0.1" not in errors
        assert "alice" not in errors
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_invite_codes(tmp_path: Path, cli: Callable[..., Result]) -> None:
    result = cli("serve", "invite", "-n", "3", "--data-dir", str(tmp_path))
    assert result.code == 0
    codes = result.out.split()
    assert len(codes) == 3 and len(set(codes)) == 3
    stored = (tmp_path / "invites").read_text()
    assert all(code not in stored for code in codes)
    assert len(stored.splitlines()) == 3
    assert (tmp_path / "invites").stat().st_mode & 0o777 == 0o600
    assert cli("serve", "invite", "-n", "0", "--data-dir", str(tmp_path)).code == 1


def test_serve_flags_are_validated(cli: Callable[..., Result]) -> None:
    assert cli("serve", "--room-ttl", "soon").code == 2
    result = cli("serve", "--tls-cert", "x.pem")
    assert result.code == 1 and "--tls-key" in result.err
    negative = cli("serve", "--registrations-per-network", "-1")
    assert negative.code == 1 and "--registrations-per-network: must be 0 or more" in negative.err


def test_trusted_proxy_is_validated(cli: Callable[..., Result]) -> None:
    bad = cli("serve", "--ephemeral", "--trusted-proxy", "proxy.example.org")
    assert bad.code == 1 and bad.err.count("\n") == 1 and "--trusted-proxy" in bad.err


def test_redis_flag_is_validated(cli: Callable[..., Result], tmp_path: Path) -> None:
    no_secret = cli("serve", "--redis", "redis://127.0.0.1:1/0")
    assert no_secret.code == 1 and "--secret-file" in no_secret.err
    bad = cli("serve", "--redis", "127.0.0.1:6379", "--secret-file", str(tmp_path / "s"))
    assert bad.code == 1 and "redis://" in bad.err


def test_unreachable_redis_is_one_line(cli: Callable[..., Result], tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("serve", "--port", "0", "--redis", f"redis://:pw@127.0.0.1:{port}/0",
            "--secret-file", str(tmp_path / "secret"), "--data-dir", str(tmp_path))  # fmt: skip
    assert r.code == 1
    assert f"cannot reach Redis at redis://127.0.0.1:{port}/0" in r.err
    assert "pw" not in r.err and r.err.count("\n") == 1
