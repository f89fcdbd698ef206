"""``hello-tui doctor`` and ``hello-tui devices`` on real parts: PulseAudio null
sinks as sound cards, a real ``serve`` process, a real TURN client. Only the
camera list is faked (a sysfs tree): there is no camera here."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from hello_tui.config.paths import resolve_paths
from hello_tui.media import aec3_tuned
from hello_tui.media.cameras import list_cameras
from hello_tui.signaling.protocol import PROTOCOL_VERSION
from tests.call.conftest import MIC, SPEAKER
from tests.conftest import Result
from tests.media.conftest import tone, write_wav
from tests.pulse import PulseDaemon

Cli = Callable[..., Result]
CHECKS = [
    "config", "portaudio", "audio-input", "audio-output", "input-level", "echo-cancel", "camera",
    "server", "account", "ice", "turn", "log",
]  # fmt: skip


def _config(text: str) -> Path:
    path = resolve_paths().config_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _doctor(cli: Cli, *args: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = cli("doctor", "--json", *args)
    checks = json.loads(result.out)
    return result.code, {c["check"]: c for c in checks}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def playing(pulse_devices: PulseDaemon, tmp_path: Path) -> Iterator[None]:
    """A 440 Hz tone played into the null sink whose monitor is the input ``a_mic``."""
    wav = write_wav(tmp_path / "tone.wav", tone(440, 20))
    proc = subprocess.Popen(
        ["paplay", "-d", MIC, str(wav)],
        env={**os.environ, **pulse_devices.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_device_lines_follow_the_config_and_level_hears_the_tone(
    cli: Cli, pulse_devices: PulseDaemon, playing: None
) -> None:
    _config(f'[audio]\ninput = "device:{MIC}"\noutput = "device:{SPEAKER}"\n')
    code, checks = _doctor(cli)
    assert code == 0, checks
    assert checks["portaudio"]["status"] == "OK"
    assert checks["audio-input"]["status"] == "OK"
    assert f"calls use device:{MIC}" in checks["audio-input"]["detail"]
    assert f"calls use device:{SPEAKER}" in checks["audio-output"]["detail"]
    level = checks["input-level"]
    assert level["status"] == "OK" and f"device:{MIC}" in level["detail"], level
    dbfs = float(level["detail"].split(": ")[1].split(" dBFS")[0])
    assert -40 < dbfs < 0  # the tone (-13.5 dBFS as written), not silence (-127)


def test_silent_input_is_a_warning_and_a_missing_device_a_failure(
    cli: Cli, pulse_devices: PulseDaemon
) -> None:
    _config(f'[audio]\ninput = "device:{MIC}"\n')  # nothing plays into a_mic this time
    code, checks = _doctor(cli)
    level = checks["input-level"]
    assert level["status"] == "WARN" and "silent" in level["detail"], level
    assert "unmute" in level["fix"]
    assert code == 0
    _config('[audio]\ninput = "device:USB Headset"\n')
    code, checks = _doctor(cli, "--no-level")
    assert code == 1
    assert checks["audio-input"]["status"] == "FAIL"
    assert "'USB Headset'" in checks["audio-input"]["detail"]
    assert "input-level" not in checks


def test_tone_input_needs_no_device(cli: Cli, pulse_devices: PulseDaemon) -> None:
    _config('[audio]\ninput = "sine:440"\noutput = "null:"\n')
    code, checks = _doctor(cli)
    assert code == 0
    assert "calls use sine:440" in checks["audio-input"]["detail"]
    assert checks["input-level"]["detail"].startswith("skipped")


def test_config_error_is_a_fail_line_naming_the_file(cli: Cli) -> None:
    path = _config('[video]\nenabled = false\nfps = "fast"\n')
    result = cli("doctor", "--no-level")
    assert result.code == 1
    [line] = [x for x in result.out.splitlines() if x.split()[1:2] == ["config"]]
    assert line.startswith("FAIL") and f"{path}:3" in line and "fps" in line
    assert all(len(x.split()) > 2 for x in result.out.splitlines())  # one line per check
    assert result.err == ""


def test_json_shape_and_log_path(cli: Cli) -> None:
    code, checks = _doctor(cli, "--no-level")
    assert code == 0
    names = list(checks)
    assert [n for n in CHECKS if n in names] == names  # in order, nothing unexpected
    for check in checks.values():
        assert set(check) == {"check", "status", "detail", "fix"}
        assert check["status"] in {"OK", "WARN", "FAIL"}
        assert check["status"] == "OK" or check["fix"]  # every non-OK says what to do
    assert checks["server"]["detail"].startswith("no server configured")
    log = resolve_paths().log_file
    assert checks["log"]["detail"].startswith(str(log))
    assert checks["turn"]["status"] == "WARN" and "no TURN" in checks["turn"]["detail"]
    built = aec3_tuned.SHIM.is_file()  # dev.sh builds it (CI: test_audio_processing.py insists)
    tuning = "AEC3 with our tuning" if built else "AEC3 with pywebrtc-audio's default"
    assert checks["echo-cancel"]["detail"].startswith(tuning)


def test_doctor_says_when_the_config_asks_for_the_default_tuning(cli: Cli) -> None:
    _config('[audio]\necho_tuning = "default"\n')
    code, checks = _doctor(cli, "--no-level")
    assert code == 0
    assert checks["echo-cancel"]["detail"] == (
        'AEC3 with pywebrtc-audio\'s default tuning ([audio] echo_tuning = "default")'
    )


def test_unreachable_configured_server_fails(cli: Cli) -> None:
    _config(f'[server]\nurl = "ws://127.0.0.1:{_free_port()}"\nconnect_timeout = 2\n')
    code, checks = _doctor(cli, "--no-level")
    assert code == 1
    assert checks["server"]["status"] == "FAIL"
    assert "cannot reach" in checks["server"]["detail"]
    assert "hello-tui serve" in checks["server"]["fix"]
    assert all(c["status"] == "OK" or c["fix"] for c in checks.values())


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """A real ``hello-tui serve`` on loopback handing out TURN credentials for a
    TURN URL on a free UDP port (``[1]``): nothing listens there unless a test starts
    coturn on it."""
    turn_port = _free_port()
    (tmp_path / "turn-secret").write_text("s3cret")
    (tmp_path / "turn-secret").chmod(0o600)  # serve refuses a secret others can read
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hello_tui", "serve", "--port", "0",
        "--data-dir", str(tmp_path / "srv"), "--secret-file", str(tmp_path / "secret"),
        "--turn-url", f"turn:127.0.0.1:{turn_port}",
        "--turn-secret-file", str(tmp_path / "turn-secret"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        yield line.split()[-1], turn_port
    finally:
        proc.terminate()
        await proc.wait()


async def test_running_server_answers_with_its_version(cli: Cli, server: tuple[str, int]) -> None:
    url, _ = server
    _config(f'[server]\nurl = "{url}"\n')
    code, checks = await asyncio.to_thread(_doctor, cli, "--no-level")
    assert checks["server"]["status"] == "OK", checks["server"]
    assert f"protocol version {PROTOCOL_VERSION}" in checks["server"]["detail"]
    assert checks["account"]["status"] == "OK" and "none" in checks["account"]["detail"]
    assert checks["ice"]["status"] == "WARN"  # a server, and no STUN/TURN for anonymous use
    assert code == 0


async def test_signed_in_account_gets_turn_credentials_and_tries_them(
    cli: Cli, server: tuple[str, int]
) -> None:
    url, turn_port = server
    _config(f'[server]\nurl = "{url}"\n')
    registered = await asyncio.to_thread(cli, "account", "register", "dora", "--server", url)
    assert registered.code == 0, registered.err
    _config(f'[server]\nurl = "{url}"\n[account]\nname = "dora"\n')
    code, checks = await asyncio.to_thread(_doctor, cli, "--no-level")
    assert checks["account"] == {
        "check": "account", "status": "OK", "detail": "signed in as dora", "fix": ""
    }  # fmt: skip
    assert "1 from the server" in checks["ice"]["detail"]
    turn = checks["turn"]
    # Nothing listens on the TURN port: the credentials were tried and got no relay.
    assert turn["status"] == "FAIL" and f"turn:127.0.0.1:{turn_port}" in turn["detail"]
    assert "credentials from the server" in turn["detail"]
    assert code == 1


async def test_account_with_a_foreign_key_fails(cli: Cli, server: tuple[str, int]) -> None:
    url, _ = server
    _config(f'[server]\nurl = "{url}"\n[account]\nname = "erin"\n')
    code, checks = await asyncio.to_thread(_doctor, cli, "--no-level")
    assert checks["account"]["status"] == "FAIL" and "erin" in checks["account"]["detail"]
    assert code == 1


@pytest.mark.skipif(
    shutil.which("turnserver") is None,
    reason="coturn's turnserver is not installed (Debian package coturn; dev.sh TEST_PKGS)",
)
async def test_turn_allocation_with_server_credentials(
    cli: Cli, server: tuple[str, int], tmp_path: Path
) -> None:
    url, turn_port = server
    coturn = await asyncio.create_subprocess_exec(
        "turnserver", "-n", "--listening-ip=127.0.0.1", f"--listening-port={turn_port}",
        "--relay-ip=127.0.0.1", "--use-auth-secret", "--static-auth-secret=s3cret",
        "--realm=hello.test", "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
        f"--pidfile={tmp_path / 'turn.pid'}", "--log-file=stdout",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.to_thread(cli, "account", "register", "fred", "--server", url)
        _config(f'[server]\nurl = "{url}"\n[account]\nname = "fred"\n')
        for _ in range(100):  # coturn listens on TCP and UDP alike: wait for TCP
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", turn_port)
            except OSError:
                await asyncio.sleep(0.1)
            else:
                writer.close()
                break
        code, checks = await asyncio.to_thread(_doctor, cli, "--no-level")
        assert checks["turn"]["status"] == "OK", checks["turn"]
        assert code == 0
        assert "allocated a relay" in checks["turn"]["detail"]
    finally:
        coturn.terminate()
        await coturn.wait()


def test_devices_lists_endpoint_strings_and_marks(
    cli: Cli, pulse_devices: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HELLO_TUI_AUDIO_BACKEND", "portaudio")  # its ALSA names and "default"
    _config(f'[audio]\ninput = "device:{MIC}"\noutput = "null:"\n')
    result = cli("devices")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    inputs = lines[: lines.index(next(x for x in lines if x.startswith("Audio output")))]
    mic = next(x for x in inputs if x.strip().startswith(f"device:{MIC} "))
    assert "configured" in mic
    assert any("device:default" in x and "(default" in x for x in inputs)
    assert "  also: file:PATH  sine:HZ  null:" in lines
    listing = json.loads(cli("devices", "--json").out)
    endpoints = {e["endpoint"]: e for e in listing["input"]}
    assert endpoints[f"device:{MIC}"]["configured"] is True
    assert sum(e["default"] for e in listing["input"]) == 1
    assert f"device:{SPEAKER}" in {e["endpoint"] for e in listing["output"]}
    assert not any(e["configured"] for e in listing["output"])  # null: is no device
    assert listing["always"]["video"] == ["pattern:", "null:"]


def test_cameras_from_sysfs(tmp_path: Path) -> None:
    for node, name, index in (("video0", "Integrated Camera", "0"),
                              ("video1", "Integrated Camera", "1"),  # metadata node
                              ("video2", "USB \x1b[31mCam", "0")):  # fmt: skip
        (tmp_path / node).mkdir()
        (tmp_path / node / "name").write_text(name + "\n")
        (tmp_path / node / "index").write_text(index + "\n")
    cams = list_cameras(tmp_path)
    assert [(c.endpoint, c.name) for c in cams] == [
        ("camera:0", "Integrated Camera"),
        ("camera:2", "USB \x1b[31mCam"),
    ]
    assert list_cameras(tmp_path / "missing") == []
