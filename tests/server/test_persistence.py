"""``hello-tui serve`` keeps accounts and rooms across a restart (and never
calls); the state file holds no plain name; a broken one is left alone."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from hello_tui.server.records import AccountRecord, CallRecord, RoomRecord
from hello_tui.server.store.persistent import PersistentMemoryStore, StateFileError
from hello_tui.signaling import protocol as p
from tests.server.conftest import Client


async def test_accounts_and_rooms_survive_calls_do_not(tmp_path: Path) -> None:
    path = tmp_path / "state"
    now = time.time()
    store = PersistentMemoryStore(path, delay=0.01)
    await store.create_account("hmac-alice", AccountRecord(public_key="pk", created=1,
                                                           until=now + 60))  # fmt: skip
    await store.put_room(RoomRecord(token="tok-12345678", name="Y2lwaGVy", owner="a:hmac-alice",
                                    created=1, expires=int(now) + 50, ttl=50, until=now + 60,
                                    participants=["sess-1"], call_id="call-1"))  # fmt: skip
    await store.put_call(CallRecord(call_id="call-xyz", state="init", caller="s", until=now + 60,
                                    offer="v=0 SDPMARKER"))  # fmt: skip
    await store.close()
    raw = path.read_bytes()
    assert b"call-xyz" not in raw and b"SDPMARKER" not in raw and b"sess-1" not in raw
    assert path.stat().st_mode & 0o777 == 0o600

    again = PersistentMemoryStore(path)
    assert (await again.get_account("hmac-alice")) is not None
    room = await again.get_room("tok-12345678")
    assert room is not None and room.participants == [] and room.call_id is None
    assert [r.token for r in await again.rooms_of("a:hmac-alice")] == ["tok-12345678"]
    assert await again.get_call("call-xyz") is None
    await again.delete_account("hmac-alice")
    await again.close()
    assert (await PersistentMemoryStore(path).get_account("hmac-alice")) is None


async def test_changes_are_coalesced_and_saved_soon(tmp_path: Path) -> None:
    path = tmp_path / "state"
    store = PersistentMemoryStore(path, delay=0.05)
    for i in range(20):
        await store.create_account(f"k{i}", AccountRecord(public_key="pk", created=1,
                                                          until=time.time() + 60))  # fmt: skip
    for _ in range(200):
        if path.exists():
            break
        await asyncio.sleep(0.01)
    assert len(PersistentMemoryStore(path)._records) == 20
    await store.close()


def test_broken_state_file_is_reported_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "state"
    path.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(StateFileError, match=str(path)):
        PersistentMemoryStore(path)
    assert path.read_bytes() == b"\x00garbage" * 10


async def _start(data: Path) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", "serve", "--port", "0", "--data-dir", str(data),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
    assert "listening on" in line, line
    return proc, line.split()[-1]


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0


async def test_serve_restart_keeps_accounts_and_rooms(tmp_path: Path) -> None:
    proc, url = await _start(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            alice = Client(await http.ws_connect(f"{url}/ws"))
            await alice.hello()
            await alice.account("alice@example.org")
            await alice.send(p.RoomCreate(name="Y2lwaGVy", ref=9))
            token = (await alice.expect(p.RoomCreated)).room.token
            await alice.close()
        await _stop(proc)
        assert b"alice" not in (tmp_path / "state").read_bytes()

        proc, url = await _start(tmp_path)
        async with aiohttp.ClientSession() as http:
            again = Client(await http.ws_connect(f"{url}/ws"), key=alice.key)
            await again.hello()
            assert isinstance(await again.login("alice@example.org"), p.LoggedIn)
            await again.send(p.RoomList(ref=1))
            rooms = await again.expect(p.Rooms)
            assert [r.token for r in rooms.rooms] == [token]
            await again.close()
    finally:
        await _stop(proc)
