"""The share-* commands of the command table (pure)."""

from __future__ import annotations

import pytest

from hello_tui.call.commands import (
    CommandError,
    ShareGrant,
    ShareInput,
    ShareRevoke,
    ShareSnapshotCmd,
    ShareStart,
    ShareStop,
    parse_command,
)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ('{"cmd": "share-start", "command": "htop -d 5"}', ShareStart(("htop", "-d", "5"))),
        ('{"cmd": "share-start", "command": "sh -c \'echo a b\'", "cols": 100, "rows": 30}',
         ShareStart(("sh", "-c", "echo a b"), 100, 30)),
        ('{"cmd": "share-stop"}', ShareStop()),
        ('{"cmd": "share-grant"}', ShareGrant()),
        ('{"cmd": "share-revoke"}', ShareRevoke()),
        ('{"cmd": "share-snapshot"}', ShareSnapshotCmd()),
        ('{"cmd": "share-snapshot", "side": "local"}', ShareSnapshotCmd("local")),
        ('{"cmd": "share-input", "data": "q"}', ShareInput("q")),
    ],
)  # fmt: skip
def test_each_share_command_parses(line: str, command: object) -> None:
    assert parse_command(line) == command


def test_share_shell_runs_the_users_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHELL", "/bin/zsh")
    assert parse_command('{"cmd": "share-start", "shell": true}') == ShareStart(("/bin/zsh",))
    monkeypatch.delenv("SHELL")
    assert parse_command('{"cmd": "share-start", "shell": true}') == ShareStart(("/bin/sh",))


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"cmd": "share-start"}', 'needs "command"'),
        ('{"cmd": "share-start", "command": "  "}', 'needs "command"'),
        ('{"cmd": "share-start", "command": 5}', 'needs "command"'),
        ('{"cmd": "share-start", "command": "sh -c \'open"}', "cannot split"),
        ('{"cmd": "share-start", "command": "top", "cols": 0}', '"cols" must be'),
        ('{"cmd": "share-start", "command": "top", "rows": true}', '"rows" must be'),
        ('{"cmd": "share-snapshot", "side": "theirs"}', '"side" is'),
        ('{"cmd": "share-input"}', '"share-input" needs "data"'),
        ('{"cmd": "share-grant", "to": "bob"}', "takes no field"),
    ],
)
def test_bad_share_commands_say_why(line: str, why: str) -> None:
    with pytest.raises(CommandError, match=why):
        parse_command(line)
