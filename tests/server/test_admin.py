"""``/stats`` and ``/metrics`` belong to the operator: off without an admin
token, 401 without the right bearer token; the token file must be private;
``serve`` flags cannot turn the telemetry noise off."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from hello_tui.server.admin import load_admin_token
from tests.conftest import Result
from tests.server.conftest import StartServer

TOKEN = "admin-test-token-0123456789abcdef"


def token_file(tmp: Path, mode: int = 0o600, text: str = TOKEN + "\n") -> Path:
    path = tmp / "admin-token"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize("path", ["/stats", "/metrics"])
async def test_off_without_a_configured_token(start_server: StartServer, path: str) -> None:
    srv = await start_server()
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": f"Bearer {TOKEN}"}):
        async with srv.http.get(srv.url(path), headers=headers) as resp:
            assert resp.status == 403
            body = await resp.text()
    assert json.loads(body) == {
        "error": "/stats and /metrics are off: start the server with --admin-token-file PATH"
    }
    assert body.count("\n") == 0


@pytest.mark.parametrize("path", ["/stats", "/metrics"])
async def test_the_bearer_token_is_required(start_server: StartServer, path: str) -> None:
    srv = await start_server(admin_token=TOKEN.encode())
    for wrong in (
        None,
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Bearer{TOKEN}",
    ):
        headers = {"Authorization": wrong} if wrong is not None else {}
        async with srv.http.get(srv.url(path), headers=headers) as resp:
            assert resp.status == 401, wrong
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            reply = await resp.json()
            assert set(reply) == {"error"} and TOKEN not in reply["error"]
    for right in (f"Bearer {TOKEN}", f"bearer {TOKEN}"):
        async with srv.http.get(srv.url(path), headers={"Authorization": right}) as resp:
            assert resp.status == 200


def test_the_token_file_must_be_private_and_long_enough(tmp_path: Path) -> None:
    assert load_admin_token(token_file(tmp_path)) == TOKEN.encode()
    for mode in (0o644, 0o640, 0o604):
        with pytest.raises(ValueError, match="readable by other users") as err:
            load_admin_token(token_file(tmp_path, mode))
        assert "chmod 600" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ValueError, match="too short"):
        load_admin_token(token_file(tmp_path, text="short\n"))
    with pytest.raises(ValueError, match="one line"):
        load_admin_token(token_file(tmp_path, text="first-line-long\nsecond-line-long\n"))
    with pytest.raises(ValueError, match="cannot read"):
        load_admin_token(tmp_path / "missing")


def test_serve_refuses_bad_token_files_and_noise_off(
    cli: Callable[..., Result], tmp_path: Path
) -> None:
    shared = token_file(tmp_path, 0o644)
    result = cli("serve", "--admin-token-file", str(shared), "--data-dir", str(tmp_path))
    assert result.code == 1 and "readable by other users" in result.err
    assert result.err.count("\n") == 1
    for epsilon in ("inf", "nan", "0", "-1", "11", "1e9", "lots"):
        result = cli("serve", "--telemetry-epsilon", epsilon, "--data-dir", str(tmp_path))
        assert result.code == 2 and "invalid epsilon" in result.err, epsilon


async def test_serve_flags_reach_the_server(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", "serve", "--port", "0", "--ephemeral", "--no-echo",
        "--data-dir", str(tmp_path), "--admin-token-file", str(token_file(tmp_path)),
        "--telemetry-epsilon", "0.5",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        url = line.split()[-1]
        admin = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/stats") as resp:
                assert resp.status == 401
            async with http.get(f"{url}/stats", headers=admin) as resp:
                stats = await resp.json()
            assert (stats["epsilon"], stats["published_through"]) == (0.5, None)
            async with http.post(f"{url}/telemetry", data=b"{}", headers=admin) as resp:
                assert resp.status == 415  # octet-stream: refused before decoding
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
        assert TOKEN not in (await proc.stderr.read()).decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
