"""A connected call outlives its rendezvous server (docs/calls.md, "Calls that recover").

Everything real: ``hello-tui serve`` (a state file, so accounts survive a
restart), a caller ``hello-tui call`` and a callee ``hello-tui answer --auto``,
each a subprocess with its own profile. The server is killed with SIGKILL
two seconds into the call; the media path is the peers' own, so audio must go
on without a gap, and the call must still end cleanly on both sides: by
``--duration`` after the server came back (the server forgot the call: the
hang-up goes over the data channel), or by a ``hangup`` command with the
server gone for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from tests.call.conftest import RATE, read_wav
from tests.call.test_loss import longest_gap_ms

T = 60.0
INTO_CALL = 2.0  # seconds of media before the server is killed (the scenario, not a sync)


def _profile(root: Path) -> dict[str, str]:
    env = {**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1"}
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                     ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):  # fmt: skip
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / sub)
    return env


async def _spawn(env: dict[str, str], *args: str, stdin: bool = False) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", *args,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def _run(env: dict[str, str], *args: str) -> str:
    proc = await _spawn(env, *args)
    out, err = await asyncio.wait_for(proc.communicate(), T)
    assert proc.returncode == 0, err.decode()
    return out.decode()


class Server:
    """``hello-tui serve`` on a fixed port with a data directory (its state file)."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data = root / "srv"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Any = None
        self.env = _profile(root / "server-home")

    async def start(self) -> None:
        self.proc = await _spawn(
            self.env, "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--data-dir", str(self.data), "--no-echo",
        )  # fmt: skip
        line = (await asyncio.wait_for(self.proc.stdout.readline(), T)).decode()
        assert line.startswith("hello-tui server listening on "), line

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


class Side:
    """One CLI party: its events as they come, and the whole stdout at the end."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    async def until(self, kind: str) -> dict[str, Any]:
        while True:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), T)
            assert raw, f"stdout closed before {kind}; seen {[e['kind'] for e in self.events]}"
            event = json.loads(raw)
            self.events.append(event)
            if event["kind"] == kind:
                return event

    async def finish(self) -> tuple[int, str]:
        out, err = await asyncio.wait_for(self.proc.communicate(), T)
        self.events += [json.loads(line) for line in out.decode().splitlines() if line]
        return self.proc.returncode, err.decode()

    def kinds(self) -> list[str]:
        return [e["kind"] for e in self.events if e["kind"] != "quality"]

    def ended(self) -> dict[str, Any]:
        return next(e for e in self.events if e["kind"] == "ended")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


async def _call(
    tmp: Path, server: Server, *caller_args: str, stdin: bool = False
) -> tuple[Side, Side, dict[str, dict[str, str]]]:
    envs = {name: _profile(tmp / name) for name in ("alice", "bob")}
    for name, env in envs.items():
        await _run(env, "account", "register", name, "--server", server.url)
    bob = Side(await _spawn(
        envs["bob"], "answer", "--auto", "--once", "--server", server.url,
        "--audio-in", "sine:880", "--audio-out", f"file:{tmp / 'bob.wav'}", "--json",
    ))  # fmt: skip
    await bob.until("listening")
    alice = Side(await _spawn(
        envs["alice"], "call", "bob", "--server", server.url, "--audio-in", "sine:440",
        "--audio-out", f"file:{tmp / 'alice.wav'}", "--json", *caller_args, stdin=stdin,
    ))  # fmt: skip
    await alice.until("media-flowing")
    await bob.until("media-flowing")
    return alice, bob, envs


def _heard_without_gap(wav: Path, side: Side) -> None:
    samples = read_wav(wav)[RATE // 4 :]
    gap = longest_gap_ms(samples)
    # A stall (nothing received) leaves no silence in the file, only missing
    # samples: the call's own watch measures the longest time without a frame.
    stalled = next(e for e in side.events if e["kind"] == "stats")["longest_audio_gap_ms"]
    print(f"{wav.name}: longest silence {gap} ms, longest stall {stalled} ms")
    assert gap < 500, f"{wav.name}: an audio gap of {gap} ms"
    assert stalled is not None and stalled < 500, f"{wav.name}: nothing received for {stalled} ms"


async def _history(env: dict[str, str]) -> dict[str, Any]:
    records = json.loads(await _run(env, "history", "--json"))
    return dict(records[0])


async def test_server_killed_and_restarted_mid_call(tmp_path: Path) -> None:
    server = Server(tmp_path)
    await server.start()
    sides: list[Side] = []
    try:
        alice, bob, envs = await _call(tmp_path, server, stdin=True)
        sides += [alice, bob]
        await asyncio.sleep(INTO_CALL)
        await server.kill()
        await alice.until("server-lost")
        await bob.until("server-lost")
        await server.start()  # the same port, the same state file
        back = await alice.until("server-back")
        assert back["call_known"] is False  # a new server: the call is peer to peer now
        # alice hangs up once she is back (no fixed call length to outwait the
        # backoff); bob's own backoff (jittered) may not have found it by then.
        alice.proc.stdin.write(b'{"cmd": "hangup"}\n')
        await alice.proc.stdin.drain()
        (code_a, err_a), (code_b, err_b) = await asyncio.gather(alice.finish(), bob.finish())
    finally:
        for side in sides:
            await side.stop()
        await server.stop()
    assert (code_a, code_b) == (0, 0), err_a + err_b
    for side in (alice, bob):
        ended = side.ended()
        assert (ended["reason"], ended["stage"]) == ("hangup", "connected"), side.kinds()
        assert "reconnecting" not in side.kinds()  # the audio never stopped
        assert side.kinds()[-1] == "stats"
    assert "peer to peer" in bob.ended()["message"]  # alice's bye ended it, not the server
    assert all(e["call_known"] is False for e in bob.events if e["kind"] == "server-back")
    _heard_without_gap(tmp_path / "bob.wav", bob)
    _heard_without_gap(tmp_path / "alice.wav", alice)
    for name, direction in (("alice", "outgoing"), ("bob", "incoming")):
        record = await _history(envs[name])
        assert (record["direction"], record["outcome"]) == (direction, "answered"), record


async def test_server_killed_for_good_the_call_goes_on_until_hung_up(tmp_path: Path) -> None:
    server = Server(tmp_path)
    await server.start()
    sides: list[Side] = []
    try:
        alice, bob, envs = await _call(tmp_path, server, stdin=True)
        sides += [alice, bob]
        await server.kill()
        await alice.until("server-lost")
        await bob.until("server-lost")
        await asyncio.sleep(INTO_CALL)  # the call goes on without any server
        assert alice.proc.returncode is None and bob.proc.returncode is None
        alice.proc.stdin.write(b'{"cmd": "hangup"}\n')
        await alice.proc.stdin.drain()
        (code_a, err_a), (code_b, err_b) = await asyncio.gather(alice.finish(), bob.finish())
    finally:
        for side in sides:
            with contextlib.suppress(Exception):
                await side.stop()
        await server.stop()
    assert (code_a, code_b) == (0, 0), err_a + err_b
    for side in (alice, bob):
        ended = side.ended()
        assert (ended["reason"], ended["stage"]) == ("hangup", "connected"), side.kinds()
        assert ended["message"] == "ended peer to peer: the server was unreachable"
        assert "server-back" not in side.kinds()
    _heard_without_gap(tmp_path / "bob.wav", bob)
    for name in ("alice", "bob"):
        assert (await _history(envs[name]))["outcome"] == "answered"
