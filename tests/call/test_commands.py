"""The command table (pure) and the CLI's stdin line reader."""

from __future__ import annotations

import os
import threading

import pytest

from hello_tui.call.commands import (
    MAX_LINE_BYTES,
    Camera,
    Chat,
    CommandError,
    Hangup,
    Mute,
    Unmute,
    parse_command,
)
from hello_tui.cli.call_cmd import read_lines


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ('{"cmd": "chat", "text": "hi"}', Chat("hi")),
        (b'{"cmd": "mute"}\n', Mute()),
        ('{"cmd": "unmute"}', Unmute()),
        ('{"cmd": "camera", "on": false}', Camera(False)),
        ('{"cmd": "hangup"}', Hangup()),
    ],
)
def test_each_command_parses(line: str | bytes, command: object) -> None:
    assert parse_command(line) == command


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("nope", "not a JSON command"),
        (b"\xff\xfe", "not a JSON command"),
        ('["cmd", "mute"]', "not a command"),
        ('{"cmd": 3}', "not a command"),
        ('{"cmd": "reboot"}', "unknown command"),
        ('{"cmd": "chat", "text": 5}', '"chat" needs "text"'),
        ('{"cmd": "camera", "on": "yes"}', '"camera" needs "on"'),
        ('{"cmd": "mute", "now": true}', "takes no field"),
        ('{"cmd": "chat", "text": "' + "x" * MAX_LINE_BYTES + '"}', "too long"),
    ],
)
def test_bad_lines_say_why(line: str | bytes, why: str) -> None:
    with pytest.raises(CommandError, match=why) as info:
        parse_command(line)
    assert info.value.to_json()["kind"] == "error"


def test_read_lines_splits_and_bounds_lines() -> None:
    read_fd, write_fd = os.pipe()
    posted: list[bytes | str | None] = []
    reader = threading.Thread(target=read_lines, args=(read_fd, posted.append))
    reader.start()
    data = b'{"cmd": "mute"}\n' + b"y" * (3 * MAX_LINE_BYTES) + b'\n{"cmd": "unmute"}'
    os.write(write_fd, data)
    os.close(write_fd)
    reader.join(10)
    os.close(read_fd)
    assert posted[0] == b'{"cmd": "mute"}\n'
    assert isinstance(posted[1], str) and "too long" in posted[1]
    assert posted[2:] == [b'{"cmd": "unmute"}']
