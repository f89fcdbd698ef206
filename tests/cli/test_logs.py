"""The client's log: where it is, its modes, what it never holds (real calls, -vv)."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hello_tui.config.paths import resolve_paths
from hello_tui.signaling.redact import redact
from hello_tui.util import logs
from tests.conftest import Result

SDP = (
    "v=0\r\no=- 3905 3905 IN IP4 192.168.1.20\r\ns=-\r\nt=0 0\r\n"
    "a=fingerprint:sha-256 6B:8B:D2:A1\r\nm=audio 50000 UDP/TLS/RTP/SAVPF 96\r\n"
    "c=IN IP4 192.168.1.20\r\na=candidate:1 1 udp 2130706431 192.168.1.20 50000 typ host\r\n"
)
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?:/\d+)?")


def test_redaction_rules() -> None:
    assert redact(f"offer: {SDP}") == "offer: [sdp redacted]"
    assert redact(f"offer {SDP!r} sent") == "offer '[sdp redacted]"  # repr'd: cut to the end
    assert redact("lone a=fingerprint:sha-256 AB:CD") == "lone [sdp redacted]"
    assert redact("pair ('10.1.2.3', 5000) -> 2001:db8:1:2::5") == (
        "pair ('10.1.2.0/24', 5000) -> 2001:db8:1::/48"
    )
    assert redact("calling bob.martin@example.org") == "calling …@example.org"
    assert redact("hello-tui/0.1.0 v=0 ok") == "hello-tui/0.1.0 v=0 ok"  # not an SDP


def test_filter_covers_every_logger_args_and_tracebacks(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "x.log"
    assert logs.setup_logging(log_file, verbose=2) == log_file
    logs.mark_sensitive("Zoë Durand")
    try:
        logging.getLogger("aioice.ice").info("check %s", ("192.168.7.9", 4000))
        logging.getLogger("hello_tui.call.engine").info("remote sdp %s", SDP)
        try:
            raise ValueError("no answer from Zoë Durand at 10.0.0.7")
        except ValueError:
            logging.getLogger("hello_tui.x").exception("call failed for %s", "zoe@example.org")
    finally:
        logs.stop_logging()
    text = log_file.read_text()
    assert "check ('192.168.7.0/24', 4000)" in text
    assert "remote sdp [sdp redacted]" in text
    assert "call failed for …@example.org" in text
    assert "ValueError: no answer from [name] at 10.0.0.0/24" in text
    for secret in ("192.168.7.9", "10.0.0.7", "Zoë", "zoe@", "a=fingerprint", "v=0"):
        assert secret not in text
    assert log_file.stat().st_mode & 0o777 == 0o600
    assert log_file.parent.stat().st_mode & 0o777 == 0o700


def test_log_rotates_at_a_megabyte(tmp_path: Path) -> None:
    log_file = tmp_path / "r.log"
    logs.setup_logging(log_file)
    try:
        for _ in range(2600):  # ~2.6 MB
            logging.getLogger("hello_tui.test").info("x" * 1000)
    finally:
        logs.stop_logging()
    names = sorted(p.name for p in tmp_path.glob("r.log*"))
    assert names == ["r.log", "r.log.1", "r.log.2"]
    assert all((tmp_path / n).stat().st_size <= logs.MAX_BYTES for n in names)
    assert all((tmp_path / n).stat().st_mode & 0o777 == 0o600 for n in names)


def test_log_flags(cli: Callable[..., Result]) -> None:
    assert cli("--log-level", "chatty", "contacts", "ls").code == 2
    assert cli("contacts", "ls", "--log-level", "debug", "-vv").code == 0
    assert resolve_paths().log_file.exists()


async def _run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1", **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _assert_private(text: str, *names: str) -> None:
    assert "a=fingerprint" not in text and "v=0" not in text and "a=candidate" not in text
    for ip in IPV4.findall(text):
        assert ip.endswith(".0/24"), ip  # truncated, like the server's
    for name in names:
        assert name.casefold() not in text.casefold(), name


async def test_echo_call_log_is_useful_and_private() -> None:
    code, _, err = await _run("contacts", "add", "Zoë Durand", "--email", "zoe@example.org")
    assert code == 0, err
    code, _, err = await _run(
        "call", "echo", "--audio-in", "sine:440", "--audio-out", "null:", "--duration", "1",
        "-vv",
    )  # fmt: skip
    assert code == 0, err
    text = resolve_paths().log_file.read_text()
    assert re.search(r"INFO hello_tui\.call\.engine: call [\w-]+: connected", text)
    assert re.search(r"call [\w-]+: ended reason=hangup", text)
    assert "DEBUG" in text and "aioice" in text  # -vv: debug lines, ICE steps included
    _assert_private(text, "Zoë", "zoe@")
    assert err.count("\n") >= 5  # -v echoes the log on stderr
    _assert_private(err, "Zoë", "zoe@")


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", "serve", "--port", "0",
        "--data-dir", str(tmp_path / "srv"), "--secret-file", str(tmp_path / "secret"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        yield (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()[-1]
    finally:
        proc.terminate()
        await proc.wait()


async def test_call_to_a_contact_logs_no_names_on_either_end(serve: str) -> None:
    carol = ("--profile", "carol")
    code, _, err = await _run("account", "register", "carol@example.org", "--server", serve, *carol)
    assert code == 0, err
    code, _, err = await _run("contacts", "add", "Carol Martin", "--email", "carol@example.org")
    assert code == 0, err
    code, _, err = await _run("account", "register", "dave@example.org", "--server", serve)
    assert code == 0, err  # calling a person needs an account
    answer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", "answer", "--auto", "--once", "--server", serve,
        "--audio-in", "sine:880", "--audio-out", "null:", "--duration", "1", "--json", "-vv",
        *carol,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1"},
    )  # fmt: skip
    try:
        assert answer.stdout is not None
        await asyncio.wait_for(answer.stdout.readline(), 30)  # listening
        code, _, err = await _run(
            "call", "Carol Martin", "--server", serve, "--audio-in", "sine:440",
            "--audio-out", "null:", "-vv",
        )  # fmt: skip
        assert code == 0, err
        await asyncio.wait_for(answer.communicate(), 30)
    finally:
        if answer.returncode is None:
            answer.kill()
            await answer.wait()
    caller = resolve_paths().log_file.read_text()
    callee = resolve_paths(profile="carol").log_file.read_text()
    for text in (caller, callee):
        assert re.search(r"call [\w-]+: connected", text)
        assert re.search(r"call [\w-]+: ended reason=hangup", text)
        _assert_private(text, "Carol", "Martin", "carol@")
    assert "incoming" in callee
