"""``hello-tui account link|approve|devices|revoke`` with a real ``serve`` process:
the new device is a separate ``hello-tui`` process waiting for its approval, the
old one the in-process CLI. Two profiles are two devices of one account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_account_room_cli import (
    Cli,
    _start_server,
    _stop,
    config_file,
    data_dir,
    one_error_line,
    unique,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = _start_server(tmp_path_factory.mktemp("server"))
    yield url
    _stop(proc)


def start_link(profile: str, name: str, server: str) -> tuple[subprocess.Popen[str], str]:
    """``account link NAME`` on ``profile`` as its own process; returns it and its code."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hello_tui", "--profile", profile, "account", "link", name,
         "--label", f"{profile}-box", "--server", server],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env=dict(os.environ),
    )  # fmt: skip
    assert proc.stdout is not None
    # Blocking reads: the process either prints the code or ends (an error).
    for line in proc.stdout:
        if "hello-tui account approve " in line:
            return proc, line.split()[-1]
    proc.kill()
    raise AssertionError(f"no code shown: {proc.stderr.read() if proc.stderr else ''}")


def test_link_approve_list_and_revoke(cli: Cli, server: str, isolated_home: Path) -> None:
    name = unique("dora")
    assert cli("--profile", "laptop", "account", "register", name, "--server", server).code == 0
    proc, code = start_link("phone", name, server)
    try:
        # A mistyped secret is caught on the approving device: nothing is added.
        wrong = code[:5] + ("A" if code[5] != "A" else "B") + code[6:]
        line = one_error_line(cli("--profile", "laptop", "account", "approve", wrong, "--yes"))
        assert "does not match" in line
        r = cli("--profile", "laptop", "account", "approve", code.lower(), "--yes")
        assert r.code == 0, r.err
        assert "phone-box" in r.out  # the label, opened with the code's key
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert f"linked: this device signs in as {name}" in out
    phone_config = tomllib.loads(config_file(isolated_home, "phone").read_text())
    assert phone_config["account"]["name"] == name
    # The phone signs in with its own key and sees both devices.
    assert cli("--profile", "phone", "account", "login").code == 0
    listed = cli("--profile", "phone", "account", "devices", "--json")
    devices = json.loads(listed.out)["devices"]
    assert len(devices) == 2 and [d["current"] for d in devices] == [False, True]
    assert devices[1]["label"] == "phone-box"
    # The laptop revokes the phone by its label; the phone can no longer sign in.
    r = cli("--profile", "laptop", "account", "revoke", "phone-box", "--yes")
    assert r.code == 0 and "revoked device phone-box" in r.out
    assert "did not accept" in one_error_line(cli("--profile", "phone", "account", "login"))
    keys = [p.name for p in data_dir(isolated_home, "phone").iterdir()]
    assert "account.key" in keys  # revoked elsewhere: the file stays until the user acts


def test_an_unapproved_link_leaves_no_key(cli: Cli, server: str, isolated_home: Path) -> None:
    r = cli("--profile", "lost", "account", "approve", "7KQ2-M9XD-4TRA", "--yes")
    assert "no account configured" in one_error_line(r)
    line = one_error_line(cli("--profile", "x", "account", "link", "bad\x07name", "--server",
                              server))  # fmt: skip
    assert "not a valid account name" in line
    assert not (data_dir(isolated_home, "x") / "account.key").exists()
