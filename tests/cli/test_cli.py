"""The CLI end to end: real stores on disk, exit codes, JSON, error lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result

# Tiny valid images (magic bytes are what the store checks).
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32

Cli = Callable[..., Result]


def _add(cli: Cli, name: str, *extra: str) -> dict:
    r = cli("contacts", "add", name, *extra, "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_help_is_light_and_exits_zero() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hello_tui", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "contacts" in proc.stdout and "history" in proc.stdout
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.splitlines()}
    for heavy in ("aiortc", "av", "cv2", "textual", "numpy", "aiohttp", "vobject", "sqlite3"):
        assert heavy not in imported, f"--help imported {heavy}"


def test_version(cli: Cli) -> None:
    r = cli("--version")
    assert r.code == 0 and "hello-tui 0." in r.out


@pytest.mark.parametrize(
    "args",
    [
        ["bogus"],
        ["contacts"],
        ["contacts", "add"],
        ["contacts", "list", "--limit", "x"],
        ["config"],
        ["contacts", "edit", "x", "--favourite", "--no-favourite"],
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: list[str]) -> None:
    r = cli(*args)
    assert r.code == 2
    assert "usage:" in r.err


def test_add_list_show_edit_rm(cli: Cli, tmp_path: Path) -> None:
    photo = tmp_path / "a.png"
    photo.write_bytes(PNG)
    alice = _add(
        cli,
        "Élodie Martin",
        "--email",
        "elodie@example.org",
        "--phone",
        "+33 1 23",
        "--photo",
        str(photo),
        "--notes",
        "met at FOSDEM",
    )
    assert alice["has_photo"] and alice["emails"] == ["elodie@example.org"]
    _add(cli, "Bob", "--email", "bob@example.org", "--favourite")

    listed = json.loads(cli("contacts", "list", "--json").out)
    assert [c["name"] for c in listed] == ["Bob", "Élodie Martin"]  # favourites first
    human = cli("contacts", "list")
    assert human.code == 0 and "Élodie Martin" in human.out and "★" in human.out

    found = json.loads(cli("contacts", "list", "elodie", "--json").out)
    assert [c["id"] for c in found] == [alice["id"]]
    shown = cli("contacts", "show", alice["id"][:8])
    assert "met at FOSDEM" in shown.out and "+33 1 23" in shown.out

    r = cli(
        "contacts",
        "edit",
        "elodie@example.org",
        "--add-email",
        "e.m@example.net",
        "--no-photo",
        "--json",
    )
    assert r.code == 0, r.err
    edited = json.loads(r.out)
    assert edited["emails"] == ["elodie@example.org", "e.m@example.net"]
    assert not edited["has_photo"]

    assert cli("contacts", "rm", "Bob").code == 0
    assert [c["name"] for c in json.loads(cli("contacts", "ls", "--json").out)] == ["Élodie Martin"]


def test_block_unblock_and_hide_blocked(cli: Cli) -> None:
    _add(cli, "Mallory", "--email", "m@example.org")
    _add(cli, "Alice", "--email", "a@example.org")
    assert cli("contacts", "block", "Mallory").code == 0
    visible = json.loads(cli("contacts", "list", "--no-blocked", "--json").out)
    assert [c["name"] for c in visible] == ["Alice"]
    shown = json.loads(cli("contacts", "show", "m@example.org", "--json").out)
    assert shown["blocked"] is True
    assert cli("contacts", "unblock", "Mallory").code == 0
    assert len(json.loads(cli("contacts", "list", "--no-blocked", "--json").out)) == 2


def test_errors_are_one_line_exit_1(cli: Cli) -> None:
    _add(cli, "Alice", "--email", "alice@example.org")
    _add(cli, "Alicia", "--email", "alicia@example.org")
    cases = [
        (("contacts", "show", "nobody"), "no contact matches 'nobody'"),
        (("contacts", "show", "ali"), "matches several contacts"),
        (("contacts", "add", "Eve", "--email", "not-an-address"), "invalid e-mail address"),
        (("contacts", "add", "Al", "--email", "ALICE@example.org"), "already belongs to Alice"),
        (("contacts", "add", "  "), "name"),
        (("contacts", "add", "X", "--photo", "/nonexistent.png"), "/nonexistent.png"),
        (("contacts", "edit", "Alice", "--rm-email", "zz@example.org"), "not in the contact"),
        (("contacts", "import", "/nonexistent.vcf"), "/nonexistent.vcf"),
    ]
    for args, expected in cases:
        r = cli(*args)
        assert r.code == 1, args
        assert r.err.startswith("hello-tui: error: ") and r.err.count("\n") == 1, r.err
        assert expected in r.err, (args, r.err)


def test_corrupt_contacts_file_is_reported_and_never_overwritten(
    cli: Cli, isolated_home: Path
) -> None:
    _add(cli, "Alice", "--email", "alice@example.org")
    path = isolated_home / "data" / "hello-tui" / "contacts.toml"
    broken = path.read_text().replace("name =", "name ==", 1).encode()
    path.write_bytes(broken)
    for args in (("contacts", "list"), ("contacts", "add", "Bob"), ("contacts", "rm", "Alice")):
        r = cli(*args)
        assert r.code == 1
        assert str(path) in r.err and "line" in r.err, r.err
    assert path.read_bytes() == broken


def test_broken_config_exit_1_names_file_and_line(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[contacts]\nbackend = 'ldap'\n")
    for args in (
        ("--config", str(config), "contacts", "list"),
        ("contacts", "list", "--config", str(config)),
        ("--config", str(config), "config", "check"),
    ):
        r = cli(*args)
        assert r.code == 1
        assert f"{config}:2: [contacts] backend" in r.err


def test_profiles_keep_separate_books(cli: Cli) -> None:
    _add(cli, "Alice", "--email", "alice@example.org")
    assert json.loads(cli("--profile", "bob", "contacts", "list", "--json").out) == []
    r = cli("contacts", "add", "Carol", "--profile", "bob")
    assert r.code == 0
    names = [c["name"] for c in json.loads(cli("contacts", "list", "--json").out)]
    assert names == ["Alice"]
    path = json.loads(cli("config", "path", "--json", "--profile", "bob").out)
    assert "bob" in path["data_dir"]


def test_sqlite_backend_from_config(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[contacts]\nbackend = 'sqlite'\npath = 'book.db'\n")
    r = cli("--config", str(config), "contacts", "add", "Zoé", "--email", "zoe@example.org")
    assert r.code == 0, r.err
    listed = json.loads(cli("--config", str(config), "contacts", "list", "zoe", "--json").out)
    assert [c["name"] for c in listed] == ["Zoé"]
    assert json.loads(cli("contacts", "list", "--json").out) == []  # default book untouched


def test_import_export_round_trip(cli: Cli, tmp_path: Path) -> None:
    vcf = tmp_path / "in.vcf"
    vcf.write_text(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana Lima\r\nEMAIL:ana@example.org\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana L.\r\nEMAIL:ANA@example.org\r\n"
        "TEL:+55 11 5555\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:3.0\r\nEND:VCARD\r\n"
    )
    r = cli("contacts", "import", str(vcf), "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert (report["added"], report["merged"], len(report["skipped"])) == (1, 1, 1)
    human = cli("contacts", "import", str(vcf))
    assert "0 added, 2 merged, 1 skipped" in human.out

    out = tmp_path / "out.csv"
    assert cli("contacts", "export", str(out)).code == 0
    text = out.read_text()
    assert "Ana Lima" in text and "+55 11 5555" in text
    stdout = cli("contacts", "export", "-", "--format", "vcard")
    assert "BEGIN:VCARD" in stdout.out and "ana@example.org" in stdout.out


def test_history_and_config_commands(cli: Cli) -> None:
    assert cli("history").out.strip() == "No calls yet."
    assert json.loads(cli("history", "--json").out) == []
    shown = json.loads(cli("config", "show", "--json").out)
    assert shown["contacts"]["backend"] == "toml" and shown["ice"]["stun"] == []
    assert "[audio]" in cli("config", "show").out
    assert cli("config", "check").code == 0


def test_history_lists_recorded_calls(cli: Cli, isolated_home: Path) -> None:
    from hello_tui.config.paths import resolve_paths
    from hello_tui.history import CallRecord, HistoryStore

    with HistoryStore(resolve_paths().history_file) as h:
        h.add(CallRecord("outgoing", "echo", "answered", start=1_700_000_000, duration=75))
    r = cli("history")
    assert "echo" in r.out and "1:15" in r.out and "answered" in r.out
    rows = json.loads(cli("history", "--json").out)
    assert rows[0]["start"] == "2023-11-14T22:13:20Z"
    assert cli("history", "clear").out.strip() == "Forgot 1 call."


def test_real_process_exit_codes(cli_proc: Callable[..., Result], tmp_path: Path) -> None:
    assert cli_proc("contacts", "list").code == 0
    bad = cli_proc("contacts", "show", "ghost")
    assert bad.code == 1 and bad.err.strip() == "hello-tui: error: no contact matches 'ghost'"
    assert cli_proc("contacts", "frobnicate").code == 2
    home = cli_proc()
    assert home.code == 0 and "contacts: 0" in home.out
