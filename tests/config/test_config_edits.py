"""Config writes keep what the user wrote: comments, layout, order (issue 11).
``hello-tui config set/unset`` and every internal write go through one editor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hello_tui.config.editor import parse_value, set_key, unset_key, write_settings
from hello_tui.config.loader import ConfigError, load_config
from tests.conftest import Result

Cli = Callable[..., Result]

USER_FILE = """\
# My hello-tui settings — written by hand.

[audio]
# the USB headset, not the laptop speakers
input = "device:USB"   # trailing comment
output = 'device:USB'

[server]
url = "http://127.0.0.1:5000"  # home server
"""


def test_saving_settings_touches_only_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    settings = load_config(path)
    import msgspec

    changed = msgspec.structs.replace(
        settings, account=msgspec.structs.replace(settings.account, name="alice")
    )
    write_settings(changed, path)
    text = path.read_text()
    assert text.startswith(USER_FILE)  # every byte the user wrote, in place
    assert '[account]\nname = "alice"' in text
    assert load_config(path).account.name == "alice"


def test_set_and_unset_keep_comments_and_validate(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    set_key(path, "audio.input", "sine:440")
    text = path.read_text()
    assert 'input = "sine:440"   # trailing comment' in text
    assert "# the USB headset, not the laptop speakers" in text
    before = path.read_text()
    with pytest.raises(ConfigError, match=r"\[audio\] input"):
        set_key(path, "audio.input", "bogus:x")
    with pytest.raises(ConfigError, match=r"unknown key .*known keys in \[audio\]"):
        set_key(path, "audio.volume", 3)
    with pytest.raises(ConfigError, match="unknown section"):
        set_key(path, "sound.input", "x")
    assert path.read_text() == before  # nothing written by a refused change
    unset_key(path, "server.url")
    assert load_config(path).server.url == "" and "# home server" not in path.read_text()
    assert "# My hello-tui settings" in path.read_text()


def test_a_broken_file_is_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[audio\ninput = 1\n")
    with pytest.raises(ConfigError, match=r"config.toml:1"):
        set_key(path, "audio.input", "null:")
    assert path.read_text() == "[audio\ninput = 1\n"


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("5", 5), ("2.5", 2.5), ('["stun:h"]', ["stun:h"]),
     ("device:USB", "device:USB"), ("https://h.example", "https://h.example"),
     ('"quoted"', "quoted")],
)  # fmt: skip
def test_values_from_the_command_line(text: str, value: object) -> None:
    assert parse_value(text) == value


def test_config_set_cli(cli: Cli, isolated_home: Path) -> None:
    r = cli("config", "set", "server.url", "http://127.0.0.1:5999")
    assert r.code == 0, r.err
    assert cli("config", "show", "--json").out.count('"url": "http://127.0.0.1:5999"') == 1
    r = cli("config", "set", "history.max_entries", "-3")
    assert r.code == 1 and r.err.count("\n") == 1 and "max_entries" in r.err, r.err
    r = cli("config", "unset", "server.url")
    assert r.code == 0 and '"url": ""' in cli("config", "show", "--json").out
