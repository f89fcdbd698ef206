"""``hello-tui account …`` and ``hello-tui room …`` against a real server process.

The server is ``python -m hello_tui serve --port 0`` (the real command, on
127.0.0.1); the CLI runs in-process through the ``cli`` fixture. Assertions
cover output, exit codes and the files written (key, config, rooms.toml).
"""

from __future__ import annotations

import json
import select
import socket
import stat
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Result

Cli = Callable[..., Result]


def _start_server(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hello_tui", "serve", "--port", "0", "--data-dir", str(data_dir),
         "--log-level", "warning", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on " in line:
            return proc, line.rsplit(" ", 1)[-1].strip()
    proc.kill()
    raise AssertionError("the server did not start")


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = _start_server(tmp_path_factory.mktemp("server"))
    assert url.startswith("http://127.0.0.1:")
    yield url
    _stop(proc)


def unique(prefix: str) -> str:
    """Account names are global on the shared server: keep each test's apart."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def data_dir(home: Path, profile: str | None = None) -> Path:
    base = home / "data" / "hello-tui"
    return base / "profiles" / profile if profile else base


def config_file(home: Path, profile: str | None = None) -> Path:
    base = home / "config" / "hello-tui"
    return (base / "profiles" / profile if profile else base) / "config.toml"


def one_error_line(r: Result) -> str:
    assert r.code == 1, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hello-tui: error: "), r.err
    return lines[0]


# ---------------------------------------------------------------- no server
def test_without_a_server_commands_say_so_and_write_nothing(cli: Cli, isolated_home: Path) -> None:
    for args in (["account", "register", "alice"], ["room", "create", "x"], ["room", "list"]):
        line = one_error_line(cli(*args))
        assert "no server configured" in line and "--server URL" in line
    assert not data_dir(isolated_home).exists() or not any(data_dir(isolated_home).iterdir())
    assert not config_file(isolated_home).exists()


def test_unreachable_server_is_one_line(cli: Cli) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    line = one_error_line(cli("room", "list", "--server", f"http://127.0.0.1:{port}"))
    assert line == (
        f"hello-tui: error: cannot reach the server at ws://127.0.0.1:{port}/ws: connection refused"
    )


def test_usage_errors_exit_2(cli: Cli) -> None:
    for args in (["room", "rename", "only-token"], ["account", "register"], ["room", "create",
                 "--ttl", "soon"]):  # fmt: skip
        r = cli(*args)
        assert r.code == 2 and "usage:" in r.err


@pytest.mark.parametrize("args", [("room", "create", "--help"), ("--help",)])
def test_help_stays_light(args: tuple[str, ...]) -> None:
    """--help builds the whole parser: no command's handler, no event loop, no
    library, may load for it (the bar: --help under 200 ms)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hello_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "usage: hello-tui" in proc.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    for heavy in ("aiohttp", "cryptography", "msgspec", "tomli_w", "asyncio", "logging"):
        assert heavy not in imported, f"{' '.join(args)} imported {heavy}"


# ---------------------------------------------------------------- accounts
def test_account_register_login_show_delete(cli: Cli, server: str, isolated_home: Path) -> None:
    name = unique("alice")
    assert cli("account", "show").out.startswith("no account")

    r = cli("account", "register", name, "--server", server)
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == f"registered {name}"
    key = data_dir(isolated_home) / "account.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    config = tomllib.loads(config_file(isolated_home).read_text())
    assert config["account"]["name"] == name
    # The account lives on that server: it is remembered (the README walkthrough).
    assert config["server"]["url"] == server
    assert f"server: {server} (saved as [server] url" in r.out

    r = cli("account", "login", "--server", server)
    assert (r.code, r.out) == (0, f"signed in as {name}\n")

    r = cli("account", "show", "--json")
    shown = json.loads(r.out)
    assert r.code == 0 and shown["name"] == name and shown["key_exists"]
    assert shown["key_file"] == str(key)
    assert shown["fingerprint"].startswith("SHA256:") and len(shown["public_key"]) == 43
    human = cli("account", "show").out
    assert name in human and shown["fingerprint"] in human and server in human

    # One account per profile; the key is never overwritten.
    before = key.read_bytes()
    line = one_error_line(cli("account", "register", unique("other"), "--server", server))
    assert "already has an account" in line
    assert key.read_bytes() == before

    r = cli("account", "delete", "--yes", "--server", server)
    assert (r.code, r.out) == (0, f"deleted account {name}\n")
    assert not key.exists()
    assert tomllib.loads(config_file(isolated_home).read_text())["account"]["name"] == ""
    assert cli("account", "show").out.startswith("no account")

    # Gone on the server too: the name can be registered again, by another profile.
    r = cli("--profile", "again", "account", "register", name, "--server", server)
    assert r.code == 0, r.err


def test_delete_without_yes_refuses_when_not_interactive(
    cli_proc: Callable[..., Result], server: str, isolated_home: Path
) -> None:
    name = unique("carol")
    assert cli_proc("account", "register", name, "--server", server).code == 0
    r = cli_proc("account", "delete", "--server", server)
    assert one_error_line(r) == f"hello-tui: error: refusing to delete account {name} without --yes"
    assert (data_dir(isolated_home) / "account.key").exists()
    assert cli_proc("account", "login", "--server", server).out == f"signed in as {name}\n"


def test_name_taken_leaves_no_key_behind(cli: Cli, server: str, isolated_home: Path) -> None:
    name = unique("dave")
    assert cli("--profile", "one", "account", "register", name, "--server", server).code == 0
    line = one_error_line(cli("--profile", "two", "account", "register", name, "--server", server))
    assert (
        line
        == "hello-tui: error: that account name is taken, or too close to one that is (name-taken)"
    )
    assert not (data_dir(isolated_home, "two") / "account.key").exists()
    assert not config_file(isolated_home, "two").exists()


def test_login_with_a_foreign_key_is_refused(cli: Cli, server: str, isolated_home: Path) -> None:
    name = unique("erin")
    assert cli("--profile", "one", "account", "register", name, "--server", server).code == 0
    assert cli("--profile", "two", "account", "register", unique("x"), "--server", server).code == 0
    # Profile two claims profile one's name with its own key.
    path = config_file(isolated_home, "two")
    path.write_text(path.read_text().replace('name = "x-', f'name = "{name}" # "x-'))
    line = one_error_line(cli("--profile", "two", "account", "login", "--server", server))
    assert "(bad-signature)" in line


def test_login_without_an_account(cli: Cli, server: str) -> None:
    line = one_error_line(cli("account", "login", "--server", server))
    assert "no account configured" in line


def test_unreadable_key_names_the_file(cli: Cli, server: str, isolated_home: Path) -> None:
    name = unique("frank")
    assert cli("account", "register", name, "--server", server).code == 0
    key = data_dir(isolated_home) / "account.key"
    key.write_text("not a key")
    line = one_error_line(cli("account", "login", "--server", server))
    assert line == f"hello-tui: error: {key}: not a PEM private key"


def test_invite_only_server(cli: Cli, tmp_path: Path) -> None:
    proc, url = _start_server(tmp_path / "srv", "--invite-only")
    try:
        line = one_error_line(cli("account", "register", unique("gina"), "--server", url))
        assert "invite-only: pass --invite CODE" in line
        codes = subprocess.run(
            [sys.executable, "-m", "hello_tui", "serve", "invite", "--data-dir",
             str(tmp_path / "srv")],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout.split()  # fmt: skip
        assert len(codes) == 1
        r = cli("account", "register", unique("gina"), f"--invite={codes[0]}", "--server", url)
        assert r.code == 0, r.err
    finally:
        _stop(proc)


# ---------------------------------------------------------------- rooms
def test_room_create_list_rename_delete(cli: Cli, server: str, isolated_home: Path) -> None:
    config_file(isolated_home).parent.mkdir(parents=True)
    config_file(isolated_home).write_text(f'[server]\nurl = "{server}"\n')
    assert cli("account", "register", unique("hana")).code == 0  # [server] url from config

    r = cli("room", "create", "Family call", "--ttl", "3600", "--json")
    assert r.code == 0, r.err
    made = json.loads(r.out)
    token = made["token"]
    assert made["url"].startswith(f"{server}/r/{token}#k=") and made["name"] == "Family call"
    assert made["expires"] > time.time() + 3000

    rooms_file = data_dir(isolated_home) / "rooms.toml"
    assert stat.S_IMODE(rooms_file.stat().st_mode) == 0o600
    stored = tomllib.loads(rooms_file.read_text())["rooms"][token]
    assert made["url"].endswith("#k=" + stored["key"])

    plain = cli("room", "create")
    assert plain.code == 0 and plain.out.strip().startswith(f"{server}/r/")
    assert "#k=" in plain.out and len(plain.out.strip().splitlines()) == 1

    listed = json.loads(cli("room", "list", "--json").out)
    by_token = {r["token"]: r for r in listed}
    assert by_token[token]["name"] == "Family call" and by_token[token]["url"] == made["url"]
    assert len(listed) == 2
    human = cli("room", "list")
    assert human.code == 0 and "Family call" in human.out and token in human.out

    # Tokens may start with "-": "--" keeps argparse from reading one as an option.
    r = cli("room", "rename", "--", token, "Team sync")
    assert (r.code, r.out) == (0, f"renamed room {token}\n")
    assert "Team sync" in cli("room", "list").out

    r = cli("room", "delete", made["url"])
    assert (r.code, r.out) == (0, f"deleted room {token}\n")
    assert token not in tomllib.loads(rooms_file.read_text())["rooms"]
    assert token not in cli("room", "list").out


def test_rooms_of_another_device_and_bad_inputs(cli: Cli, server: str, isolated_home: Path) -> None:
    owner = ["--profile", "owner"]
    other = ["--profile", "other"]
    assert cli(*owner, "account", "register", unique("ivan"), "--server", server).code == 0
    url = cli(*owner, "room", "create", "Secret plans", "--server", server).out.strip()
    token = url.split("/r/")[1].split("#")[0]

    # Without the key (token only) the other profile cannot even encrypt a new name.
    line = one_error_line(cli(*other, "room", "rename", "--server", server, "--", token, "x"))
    assert "no key for room" in line and "#k=" in line
    # With the URL it has the key, but the server only lets the owner rename.
    line = one_error_line(cli(*other, "room", "rename", url, "x", "--server", server))
    assert "(not-allowed)" in line
    line = one_error_line(cli(*other, "room", "delete", url, "--server", server))
    assert "(not-allowed)" in line

    assert one_error_line(cli(*owner, "room", "create", "--ttl", "10", "--server", server))
    line = one_error_line(cli(*owner, "room", "delete", "not a url", "--server", server))
    assert "not a room URL or token" in line
    line = one_error_line(cli(*owner, "room", "delete", "ZZZZZZZZZZZZZZZZ", "--server", server))
    assert "no such room" in line and "(unknown-room)" in line
    assert cli(*owner, "room", "list", "--server", server).out.count("Secret plans") == 1
    # A device that lost its rooms file gets the key back from the box sealed to
    # it (docs/accounts-and-rooms.md); one without a box says "name unknown"
    # (tests/cli/test_room_keys_cli.py).
    (data_dir(isolated_home, "owner") / "rooms.toml").unlink()
    listed = cli(*owner, "room", "list", "--server", server).out
    assert token in listed and "Secret plans" in listed


def test_anonymous_rooms_need_no_account(cli: Cli, server: str) -> None:
    r = cli("room", "create", "Drop-in", "--server", server, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["url"].count("#k=") == 1
