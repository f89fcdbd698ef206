"""``hello-tui serve`` keeps accounts and rooms across a restart (and never
calls); the state database holds no plain name, is written off the event
loop, survives a crash, migrates the old snapshot file; a broken one is left alone."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import msgspec
import pytest

from hello_tui.server.records import AccountRecord, CallRecord, RoomRecord
from hello_tui.server.store.persistent import (
    PersistentMemoryStore,
    StateFileError,
    _LegacyState,
)
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


def saved_keys(path: Path) -> set[str]:
    """What the database holds now, read as another process would."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {key for (key,) in db.execute("SELECT key FROM records")}
    finally:
        db.close()


def account(pk: str = "pk") -> AccountRecord:
    return AccountRecord(public_key=pk, created=1, until=time.time() + 60)


async def test_changes_are_coalesced_and_saved_soon(tmp_path: Path) -> None:
    path = tmp_path / "state"
    store = PersistentMemoryStore(path, delay=0.05)
    threads: set[str] = set()
    commit = store._commit

    def spy(*args: object) -> None:
        threads.add(threading.current_thread().name)
        commit(*args)  # type: ignore[arg-type]

    store._commit = spy  # type: ignore[method-assign]
    for i in range(20):
        await store.create_account(f"k{i}", account())
    async with asyncio.timeout(10):
        while len(saved_keys(path)) < 20:
            await asyncio.sleep(0.01)
    assert saved_keys(path) == {f"account:k{i}" for i in range(20)}
    # Written by the store's worker thread, in one transaction, never on the event loop.
    assert len(threads) == 1 and threading.main_thread().name not in threads
    await store.delete_account("k3")
    await store.close()
    assert "account:k3" not in saved_keys(path) and len(saved_keys(path)) == 19


async def test_deleted_records_leave_no_trace_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "state"
    store = PersistentMemoryStore(path, delay=0.01)
    await store.create_account("hmac-gone", account("PKMARKER" + "x" * 40))
    async with asyncio.timeout(10):
        while not saved_keys(path):
            await asyncio.sleep(0.01)
    await store.delete_account("hmac-gone")
    await store.close()
    assert not saved_keys(path)
    for file in tmp_path.iterdir():  # the database and any -wal/-shm left
        assert b"PKMARKER" not in file.read_bytes(), file.name


def test_legacy_state_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state"
    now = time.time()
    legacy = _LegacyState(
        format=1,
        accounts={
            "hmac-alice": AccountRecord(public_key="pk", created=1, until=now + 60),
            "hmac-old": AccountRecord(public_key="pk", created=1, until=now - 1),
        },
        rooms=[RoomRecord(token="tok-12345678", name="Y2lwaGVy", owner="a:hmac-alice", created=1,
                          expires=int(now) + 50, ttl=50, until=now + 60)],
    )  # fmt: skip
    path.write_bytes(msgspec.msgpack.encode(legacy))
    path.chmod(0o600)
    store = PersistentMemoryStore(path)
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    assert path.stat().st_mode & 0o777 == 0o600
    assert saved_keys(path) == {"account:hmac-alice", "room:tok-12345678"}  # expired: dropped
    assert set(store._records) == {"account:hmac-alice", "room:tok-12345678"}
    assert not (tmp_path / "state.migrating").exists()
    store._worker.submit(store._close_db).result()
    store._worker.shutdown()
    again = PersistentMemoryStore(path)  # a second start opens it as it is
    assert set(again._records) == set(store._records)
    again._worker.submit(again._close_db).result()
    again._worker.shutdown()


def test_a_crash_loses_nothing_flushed(tmp_path: Path) -> None:
    """A process killed without closing (no checkpoint, WAL left behind) loses
    nothing it had flushed, and the database opens cleanly."""
    path = tmp_path / "state"
    script = f"""
import asyncio, os, time
from pathlib import Path
from hello_tui.server.records import AccountRecord
from hello_tui.server.store.persistent import PersistentMemoryStore

async def main():
    store = PersistentMemoryStore(Path({str(path)!r}), delay=0.01)
    for i in range(500):
        await store.create_account(f"k{{i}}", AccountRecord(public_key="pk", created=1,
                                                           until=time.time() + 600))
    while store._dirty or store._timer or store._flush_task:
        await asyncio.sleep(0.01)
    os._exit(9)

asyncio.run(main())
"""
    proc = subprocess.run([sys.executable, "-c", script], timeout=60, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    store = PersistentMemoryStore(path)
    assert len(store._records) == 500
    store._worker.submit(store._close_db).result()
    store._worker.shutdown()


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
