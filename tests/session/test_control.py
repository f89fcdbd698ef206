"""The control socket's bounds: line size, clients, slow readers; the setting."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hello_tui.call.commands import MAX_LINE_BYTES
from hello_tui.call.phone import Phone
from hello_tui.session import control as ctl
from hello_tui.signaling.client import SignalingClient

T = 10.0


@pytest.fixture
async def server() -> AsyncIterator[ctl.ControlServer]:
    # A phone with no call (never connected): what a service is between calls.
    control = ctl.ControlServer(Phone(SignalingClient(reconnect=None)), face="test")
    await control.start()
    yield control
    await control.close()


async def _connect(control: ctl.ControlServer) -> tuple[asyncio.StreamReader, Any]:
    assert control.path is not None
    return await asyncio.open_unix_connection(str(control.path), limit=1 << 20)


async def _line(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    raw = await asyncio.wait_for(reader.readline(), T)
    return json.loads(raw) if raw else None


async def test_greeting_commands_and_an_overlong_line(server: ctl.ControlServer) -> None:
    assert server.path is not None
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    reader, writer = await _connect(server)
    hello = await _line(reader)
    assert hello is not None
    assert (hello["kind"], hello["face"], hello["calls"]) == ("control", "test", [])
    writer.write(b'{"cmd": "mute"}\n{"cmd": "dance"}\n\n')
    assert await _line(reader) == {"kind": "error", "message": "no call in progress"}
    error = await _line(reader)
    assert error is not None and "unknown command" in error["message"]
    writer.write(b'{"cmd": "chat", "text": "' + b"x" * MAX_LINE_BYTES + b'"}\n')
    error = await _line(reader)
    assert error is not None and "too long" in error["message"]
    assert await _line(reader) is None  # then it is dropped
    writer.close()


async def test_at_most_max_clients(server: ctl.ControlServer) -> None:
    clients = [await _connect(server) for _ in range(ctl.MAX_CLIENTS)]
    for reader, _ in clients:
        assert (await _line(reader) or {}).get("kind") == "control"
    reader, writer = await _connect(server)
    refused = await _line(reader)
    assert refused is not None and "too many" in refused["message"]
    assert await _line(reader) is None
    for _, w in [*clients, (reader, writer)]:
        w.close()


async def test_a_slow_client_is_dropped_and_the_others_get_everything(
    server: ctl.ControlServer,
) -> None:
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # connects, never reads
    assert server.path is not None
    slow.connect(str(server.path))
    fast_reader, fast_writer = await _connect(server)
    assert (await _line(fast_reader) or {}).get("kind") == "control"
    total = 4000  # 1.6 MB: more than the socket buffers and the queue hold
    got = 0

    async def read_all() -> None:
        nonlocal got
        while got < total:
            line = await _line(fast_reader)
            assert line is not None and line["n"] == got
            got += 1

    reading = asyncio.create_task(read_all())
    for n in range(total):
        server.broadcast({"kind": "test", "n": n, "pad": "x" * 400})
        if n % 20 == 0:
            await asyncio.sleep(0)  # let the pumps and the reader run: a live call's pace
    await asyncio.wait_for(reading, T)
    assert got == total
    assert len(server._clients) == 1  # the slow one is gone, the call never waited
    slow.close()
    fast_writer.close()


async def test_a_dead_process_socket_is_removed_and_ours_goes_on_close(tmp_path: Path) -> None:
    where = ctl.runtime_dir()
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec("true")
    await proc.wait()
    stale = ctl.socket_path(proc.pid)
    stale.touch()
    control = ctl.ControlServer(Phone(SignalingClient(reconnect=None)))
    path = await control.start()
    assert not stale.exists() and [p for _, p in ctl.live_sockets()] == [path]
    await control.close()
    assert not path.exists()


def test_runtime_dir_falls_back_to_the_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    open_dir.chmod(0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(open_dir))  # readable by others: not used
    import platformdirs

    assert ctl.runtime_dir() == platformdirs.user_state_path("hello-tui") / "run"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert ctl.runtime_dir() == platformdirs.user_state_path("hello-tui") / "run"


async def test_every_session_listens_unless_the_setting_says_no() -> None:
    import msgspec

    from hello_tui.config.paths import resolve_paths
    from hello_tui.config.settings import ControlSettings, Settings
    from hello_tui.session.connect import Session

    session = Session(resolve_paths(), Settings(), audio_in="null:", audio_out="null:", face="x")
    async with session:
        assert session.control is not None and session.control.path is not None
        assert [p for _, p in ctl.live_sockets()] == [session.control.path]
    assert ctl.live_sockets() == []
    off = msgspec.structs.replace(Settings(), control=ControlSettings(socket=False))
    async with Session(resolve_paths(), off, audio_in="null:", audio_out="null:") as phone:
        assert phone is not None and ctl.live_sockets() == []
