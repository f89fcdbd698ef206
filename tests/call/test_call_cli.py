"""``hello-tui call / answer`` as real subprocesses: stdin closed, no TTY."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from hello_tui.call import events as ev
from tests.call.conftest import RATE, Env, T, dominant_hz, read_wav


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    # The environment as it is now (the isolated XDG dirs of this test); subprocess
    # peers gather ICE candidates on loopback only, like the in-process ones.
    env = {**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1"}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hello_tui",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )


async def _run(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    proc = await _spawn(*args)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_call_echo_out_of_the_box(tmp_path: Path) -> None:
    wav = tmp_path / "x.wav"
    code, out, err = await _run(
        "call", "echo", "--audio-in", "sine:440", "--audio-out", f"file:{wav}",
        "--duration", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    kinds = [line["kind"] for line in lines]
    assert kinds[0] == "dialing" and kinds[-2:] == ["ended", "stats"]
    assert "connected" in kinds and "media-flowing" in kinds
    check = next(line for line in lines if line["kind"] == "check-code")
    assert check["status"] == "verified" and len(check["code"]) == 7
    assert lines[-1]["sas"] == check["code"] and lines[-1]["check"] == "verified"
    assert lines[-1]["exit_code"] == 0 and lines[-1]["reason"] == "hangup"
    audio = read_wav(wav)
    assert abs(dominant_hz(audio[RATE // 4 :]) - 440) < 5
    assert len(audio) / RATE == pytest.approx(2.5, abs=1.0)  # the 2 s call, give or take


async def test_human_output_names_the_check_code(tmp_path: Path) -> None:
    code, out, err = await _run(
        "call", "echo", "--audio-in", "sine:300", "--audio-out", "device:", "--duration", "0.5"
    )
    assert code == 0, err
    assert "Check code:" in out and "Call with echo ended after 0:0" in out
    # No sound card here (or none configured): one line says what the call uses instead,
    # and no ALSA/PortAudio chatter reaches stderr.
    if "Note:" in out:
        assert sum("Note:" in line for line in out.splitlines()) == 1
    assert "ALSA" not in err


async def test_calling_a_person_needs_an_account(env: Env) -> None:
    code, out, err = await _run("call", "nobody", "--server", env.url, "--json")
    assert (code, out) == (1, ""), err
    assert err.count("\n") == 1 and "calling nobody needs an account" in err


async def test_unreachable_server_exits_3() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    code, out, err = await _run("call", "echo", "--server", f"ws://127.0.0.1:{port}", "--json")
    assert code == 3
    assert "cannot reach the server" in err
    assert json.loads(out.splitlines()[-1])["reason"] == "unreachable"


async def test_bad_endpoint_is_a_usage_line() -> None:
    code, _, err = await _run("call", "echo", "--audio-in", "bogus:1")
    assert code == 1 and err.startswith("hello-tui: error:")


async def test_sigterm_hangs_up_cleanly(env: Env) -> None:
    code, _, err = await _run("account", "register", "alice", "--server", env.url)
    assert code == 0, err  # calling a person needs an account
    bob = await env.phone("bob")
    proc = await _spawn("call", "bob", "--server", env.url, "--audio-in", "sine:440", "--json")
    try:
        incoming = await bob.next_incoming(T)
        await incoming.accept()
        await incoming.wait_for(ev.MediaFlowing, T)
        proc.send_signal(signal.SIGTERM)
        ended = await incoming.wait_ended(T)
        assert ended.reason == "hangup"
        out, _ = await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    assert json.loads(out.decode().splitlines()[-1])["reason"] == "hangup"


async def test_answer_auto_once(env: Env, tmp_path: Path) -> None:
    code, _, err = await _run("account", "register", "carol", "--server", env.url)
    assert code == 0, err
    wav = tmp_path / "carol.wav"
    proc = await _spawn(
        "answer", "--auto", "--once", "--server", env.url, "--audio-in", "sine:880",
        "--audio-out", f"file:{wav}", "--duration", "1", "--json",
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(proc.stdout.readline(), T))
        assert ready == {"kind": "listening", "name": "carol"}
        alice = await env.phone("alice")
        call = alice.dial("carol", audio_in="sine:440")
        await call.wait_for(ev.MediaFlowing, T)
        ended = await call.wait_ended(T)  # carol hangs up after --duration 1
        assert ended.reason == "hangup"
        out, err_b = await asyncio.wait_for(proc.communicate(), T)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err_b.decode()
    kinds = [json.loads(line)["kind"] for line in out.decode().splitlines()]
    assert kinds[:2] == ["incoming", "ringing"] and kinds[-1] == "stats"
    assert abs(dominant_hz(read_wav(wav)[RATE // 4 :]) - 440) < 5


async def test_serve_hosts_the_echo_peer(tmp_path: Path) -> None:
    server = await _spawn("serve", "--port", "0", "--data-dir", str(tmp_path / "srv"))
    children: list[str] = []
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), T)).decode()
        assert line.startswith("hello-tui server listening on ")
        url = line.rsplit(" ", 1)[1].strip()
        wav = tmp_path / "e.wav"
        code = 3
        # Each try starts a Python process and the echo child starts one too: on
        # a loaded 2-core machine that alone can take most of T, so allow 4 T.
        async with asyncio.timeout(4 * T):
            while code == 3:  # the echo peer logs in just after the server listens
                code, _out, err = await _run(
                    "call", "echo", "--server", url, "--audio-in", "sine:550",
                    "--audio-out", f"file:{wav}", "--duration", "1", "--json",
                )  # fmt: skip
        assert code == 0, err
        assert abs(dominant_hz(read_wav(wav)[RATE // 4 :]) - 550) < 5
        # The echo peer runs in a child process: the server itself never maps
        # PyAV's codec libraries (they would cost it ~44 MB).
        maps = Path(f"/proc/{server.pid}/maps").read_text()
        assert "libavcodec" not in maps and "libopus" not in maps
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert children, "the echo peer should be a child process of the server"
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), T)
    assert server.returncode == 0
    for pid in children:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
        ), "the echo child outlived the server"


async def test_join_uses_the_server_named_by_the_room_url(tmp_path: Path) -> None:
    """No --server, no [server] url: a room URL names its server (not the embedded one)."""
    server = await _spawn("serve", "--port", "0", "--ephemeral", "--no-echo")
    try:
        assert server.stdout is not None
        line = (await asyncio.wait_for(server.stdout.readline(), T)).decode()
        url = line.rsplit(" ", 1)[1].strip()
        code, out, err = await _run("room", "create", "Friday", "--server", url, "--json")
        assert code == 0, err
        room_url = json.loads(out)["url"]
        assert room_url.startswith(url + "/r/") and "#k=" in room_url
        wavs = [tmp_path / "a.wav", tmp_path / "b.wav"]
        results = await asyncio.gather(
            _run("join", room_url, "--audio-in", "sine:440", "--audio-out", f"file:{wavs[0]}",
                 "--duration", "1"),
            _run("join", room_url, "--audio-in", "sine:880", "--audio-out", f"file:{wavs[1]}",
                 "--duration", "1"),
        )  # fmt: skip
        for code, _out, err in results:
            assert code == 0, err
        heard = {round(dominant_hz(read_wav(w)[RATE // 4 :]), -1) for w in wavs}
        assert heard == {440, 880}
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), T)


async def test_an_audio_only_call_imports_no_video_or_tui_stack(tmp_path: Path) -> None:
    """An audio-only CLI call loads neither OpenCV nor Textual (nor the TUI):
    what a command does not use costs no memory (docs/media.md, "Memory")."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "hello_tui",
        "call", "echo", "--audio-in", "sine:440", "--audio-out", "null:", "--duration", "1",
        "--json",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b'"kind": "media-flowing"' in out  # a real call took place
    imported = {
        line.split("|")[-1].strip() for line in err.decode().splitlines() if "import time:" in line
    }
    assert "aiortc" in imported and "numpy" in imported  # the measurement sees the call's imports
    for heavy in ("cv2", "textual", "hello_tui.tui", "rich"):
        assert heavy not in imported, f"an audio-only call imported {heavy}"
