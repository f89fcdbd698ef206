"""``hello-tui call`` / ``privacy`` as real processes against a real server:
the switch, the queue, the exact payloads, feedback and crash reports."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hello_tui.call import events as ev
from hello_tui.config.paths import resolve_paths
from hello_tui.quality.summary import percentile
from tests.call.conftest import T
from tests.call.test_call_cli import _run, _spawn
from tests.telemetry.conftest import TelServer

QUESTION = "Send call-quality reports?"


@pytest.fixture(autouse=True)
async def caller_account(tel_server: TelServer) -> None:
    """Calling a person needs an account: this profile has one on the test server."""
    code, _, err = await _run("account", "register", "alice", "--server", tel_server.env.url)
    assert code == 0, err


def _enable() -> Path:
    from hello_tui.config.editor import set_key

    config = resolve_paths(None, None).config_file
    set_key(config, "telemetry.enabled", True)
    return config


async def _call(tel: TelServer, *extra: str) -> tuple[int, list[dict[str, Any]], str]:
    """``hello-tui call bob --json`` (bob answers in this process); returns code, lines, stderr."""
    env = tel.env
    bob = env.phones[0] if env.phones else await env.phone("bob")
    proc = await _spawn(
        "call", "bob", "--server", env.url, "--audio-in", "sine:440", "--audio-out", "null:",
        "--duration", "1.5", "--json", *extra,
    )  # fmt: skip
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await incoming.wait_ended(T)
    out, err = await proc.communicate()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert proc.returncode is not None
    return proc.returncode, lines, err.decode()


async def _privacy() -> dict[str, Any]:
    code, out, err = await _run("privacy", "--json")
    assert code == 0, err
    return json.loads(out)


async def test_report_sent_is_the_samples_and_privacy_shows_it(tel_server: TelServer) -> None:
    _enable()
    code, lines, err = await _call(tel_server, "--feedback", "sad:disconnected")
    assert code == 0, err
    kinds = [line["kind"] for line in lines]
    assert kinds[-2:] == ["ended", "stats"] and "quality" in kinds
    samples = [line["sample"] for line in lines if line["kind"] == "quality"]
    (received,) = tel_server.bodies("/telemetry")
    sent = json.loads(received)
    q = sent["quality"]
    # The report carries the values the --json samples carried (to their printed precision).
    rtt = [s["rtt_ms"] for s in samples if s["rtt_ms"] is not None]
    assert q["samples"] == len(samples)
    if rtt:
        assert round(q["rtt_ms_p50"], 6) == percentile(rtt, 50)
    assert round(q["jitter_ms_p95"], 6) == percentile(
        [s["jitter_ms"] for s in samples if s["jitter_ms"] is not None], 95
    )
    assert q["packets_received"] == samples[-1]["packets_received"]
    assert sent["network_type"] == samples[-1]["network_type"] == "loopback"
    ended = lines[-2]
    assert ended["quality"]["samples"] == len(samples)
    assert (sent["outcome"], sent["reason"], sent["duration_s"]) == (
        ended["outcome"], ended["reason"], ended["duration"],
    )  # fmt: skip
    # `hello-tui privacy` shows exactly the bytes the server received.
    shown = await _privacy()
    by_kind = {e["kind"]: e["body"].encode() for e in shown["sent"]}
    assert by_kind["call"] == received
    assert by_kind["feedback"] == tel_server.bodies("/feedback")[0]
    assert json.loads(by_kind["feedback"])["reasons"] == ["disconnected"]
    assert shown["queued"] == [] and shown["enabled"] is True
    code, human, _ = await _run("privacy")
    assert received.decode() in human.splitlines()


async def test_disabled_by_default_sends_nothing_and_never_asks(tel_server: TelServer) -> None:
    config = resolve_paths(None, None).config_file
    before = config.read_text()  # the account's name and server, nothing about telemetry
    code, lines, err = await _call(tel_server)
    assert code == 0, err
    assert tel_server.received == []
    assert sum(tel_server.aggregator.calls["outcome"].values()) == 0
    assert QUESTION not in json.dumps(lines) and QUESTION not in err  # no TTY: no question
    assert config.read_text() == before and "telemetry" not in before  # nothing saved for it
    shown = await _privacy()
    assert shown["sent"] == [] and shown["queued"] == [] and shown["asked"] is False


async def test_no_telemetry_flag_sends_nothing(tel_server: TelServer) -> None:
    _enable()
    code, _lines, err = await _call(tel_server, "--no-telemetry")
    assert code == 0, err
    assert tel_server.received == []
    assert (await _privacy())["queued"] == []


async def test_down_server_keeps_the_report_for_the_next_run(tel_server: TelServer) -> None:
    _enable()
    tel_server.refuse = 503  # telemetry intake down; calls still work
    code, lines, err = await _call(tel_server)
    assert code == 0, err
    assert [line["kind"] for line in lines][-2:] == ["ended", "stats"]  # the call was whole
    assert tel_server.received == []
    (waiting,) = (await _privacy())["queued"]
    assert waiting["attempts"] == 1

    tel_server.refuse = None  # back up: the next run sends both
    code, _lines, err = await _call(tel_server)
    assert code == 0, err
    assert len(tel_server.bodies()) == 2
    assert tel_server.bodies()[0] == waiting["body"].encode()
    shown = await _privacy()
    assert shown["queued"] == [] and len(shown["sent"]) == 2


async def test_feedback_needs_telemetry_not_contradicted(tel_server: TelServer) -> None:
    code, _out, err = await _run(
        "call", "bob", "--server", tel_server.env.url, "--no-telemetry", "--feedback", "happy"
    )
    assert code == 1 and "pick one" in err
    code, _out, err = await _run("call", "bob", "--server", tel_server.env.url, "--feedback", "meh")
    assert code == 1 and "--feedback" in err


async def test_crash_report_is_local_until_sent(
    tel_server: TelServer, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hello_tui.cli.history_cmd as history_cmd

    def boom(args: Any) -> int:
        raise RuntimeError("something broke")

    monkeypatch.setattr(history_cmd, "cmd_list", boom)
    result = cli("history")
    assert result.code == 1
    assert len(result.err.splitlines()) == 1
    assert "internal error: RuntimeError: something broke" in result.err
    assert "crash report was saved in" in result.err and "nothing was sent" in result.err
    listed = cli("privacy", "crashes", "list")
    assert '"error":"RuntimeError"' in listed.out and '"command":"list"' in listed.out
    assert tel_server.received == []  # kept locally

    code, _out, err = await _run("privacy", "crashes", "send", "--server", tel_server.env.url)
    assert code == 0, err
    (crash,) = tel_server.bodies("/crash")
    assert json.loads(crash)["error"] == "RuntimeError"
    assert "No crash report" in cli("privacy", "crashes", "list").out
    assert (await _privacy())["sent"][0]["body"].encode() == crash


def test_ended_event_json_carries_the_summary() -> None:
    from hello_tui.quality.sample import QualitySample
    from hello_tui.quality.summary import summarize

    samples = [QualitySample(t=1.0, interval_s=1.0, rtt_ms=10.0, mos=4.4)]
    ended = ev.Ended(reason="hangup", duration=1.0, stage="connected", outcome="completed",
                     quality=summarize(samples, outcome="completed"))  # fmt: skip
    data = ended.to_json()
    assert data["quality"]["rtt_ms_p50"] == 10.0 and data["outcome"] == "completed"
    quality = ev.Quality(sample=samples[0]).to_json()
    assert quality["kind"] == "quality" and quality["sample"]["t"] == 1.0
    assert quality["t"] > 1e9  # the event's wall clock, apart from the sample's t


async def test_first_interactive_run_asks_once_then_live_line_and_feedback(
    tel_server: TelServer,
) -> None:
    import asyncio
    import os
    import pty
    import sys

    bob = await tel_server.env.phone("bob")
    master, slave = pty.openpty()
    env = {**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1", "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", "call", "bob", "--server", tel_server.env.url,
        "--audio-in", "sine:440", "--audio-out", "null:", "--duration", "2.5",
        stdin=slave, stdout=slave, stderr=slave, env=env,
    )  # fmt: skip
    os.close(slave)
    seen = bytearray()

    async def until(text: bytes) -> None:
        loop = asyncio.get_running_loop()
        while text not in seen:
            try:
                chunk = await loop.run_in_executor(None, os.read, master, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"{text!r} never came: {bytes(seen)!r}")
            seen.extend(chunk)

    try:
        async with asyncio.timeout(3 * T):
            await until(QUESTION.encode())
            assert b"Never sent: contacts, account names" in seen
            os.write(master, b"y\n")
            incoming = await bob.next_incoming(T)
            await incoming.accept()
            await until(b"\rRTT ")  # the live line, rewritten in place
            await until(b"How was your conversation?")
            os.write(master, b"h")
            await until(b"happy")
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        os.close(master)
    assert proc.returncode == 0, bytes(seen)
    assert b"Quality: RTT" in seen and b"Call with bob ended after 0:0" in seen
    config = resolve_paths(None, None).config_file.read_text()
    assert "[telemetry]" in config and "enabled = true" in config
    assert len(tel_server.bodies("/telemetry")) == 1
    assert json.loads(tel_server.bodies("/feedback")[0])["rating"] == "happy"
    assert (await _privacy())["asked"] is True


def test_one_key_feedback_question() -> None:
    import io

    from hello_tui.cli.call_cmd import ask_feedback

    def keys(*pressed: str) -> Callable[[str], str]:
        it = iter(pressed)
        return lambda prompt: next(it)

    out = io.StringIO()
    assert ask_feedback(keys("s", "d"), out) == ("sad", ["disconnected"])
    assert ask_feedback(keys("h"), out) == ("happy", [])
    assert ask_feedback(keys(""), out) is None
    assert ask_feedback(keys("s", ""), out) == ("sad", [])
