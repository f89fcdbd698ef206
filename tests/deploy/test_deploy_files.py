"""deploy/: the systemd unit and the container file start the real server
with flags it accepts, and the unit passes systemd's own checker."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from hello_tui.cli.main import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _exec_start(unit: str) -> list[str]:
    m = re.search(r"^ExecStart=(.*?)(?<!\\)$", unit, re.M | re.S)
    assert m is not None
    return shlex.split(m.group(1).replace("\\\n", " "))


def test_the_unit_runs_serve_with_valid_flags_and_is_sandboxed() -> None:
    unit = (DEPLOY / "hello-tui.service").read_text()
    argv = _exec_start(unit)
    assert Path(argv[0]).name == "hello-tui" and argv[1] == "serve"
    args = build_parser().parse_args(argv[1:])  # exits 2 on an unknown flag
    assert args.public_url.startswith("https://") and args.admin_token_file
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
                   "PrivateTmp=yes", "CapabilityBoundingSet=", "UMask=0077",
                   "StateDirectoryMode=0700"):  # fmt: skip
        assert f"\n{option}\n" in unit, option


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    verify = shutil.which("systemd-analyze")
    assert verify is not None, "systemd-analyze (Debian package systemd) is needed"
    # The unit as installed, pointing at this venv's hello-tui.
    exe = Path(sys.executable).with_name("hello-tui")
    unit = (DEPLOY / "hello-tui.service").read_text().replace("/usr/local/bin/hello-tui", str(exe))
    path = tmp_path / "hello-tui.service"
    path.write_text(unit)
    result = subprocess.run(
        [verify, "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "hello-tui.service" in line  # other units on this machine are not ours to judge
    ]
    assert result.returncode == 0 and not problems, result.stdout + result.stderr


def test_the_container_runs_serve_with_valid_flags() -> None:
    text = (DEPLOY / "Containerfile").read_text()
    cmd = re.search(r'^CMD \["sh", "-c", "exec (.*)"\]$', text, re.M)
    assert cmd is not None
    line = cmd.group(1).replace('\\"', '"')
    line = re.sub(r"\$\{HELLO_PUBLIC_URL:\+(.*)\}", r"\1", line).replace(
        '"$HELLO_PUBLIC_URL"', "https://hello.example.org"
    )
    argv = shlex.split(line)
    args = build_parser().parse_args(argv[1:])
    assert args.host == "0.0.0.0" and args.data_dir == "/var/lib/hello-tui"
    assert "USER hello-tui" in text and "[server]" in text
