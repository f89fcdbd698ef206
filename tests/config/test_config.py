from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import pytest

from hello_tui.config import ConfigError, Settings, load_config, resolve_paths, save_config
from hello_tui.config.loader import parse_config
from hello_tui.config.paths import ProfileError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def _field_paths(struct: type, prefix: str = "") -> list[str]:
    out = []
    for f in msgspec.structs.fields(struct):
        t = f.type
        if isinstance(t, type) and issubclass(t, msgspec.Struct):
            out += _field_paths(t, f"{prefix}{f.name}.")
        else:
            out.append(prefix + f.name)
    return out


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(tmp_path / "nope.toml") == Settings()


def test_example_loads_and_documents_every_setting() -> None:
    settings = load_config(EXAMPLE)
    assert settings == Settings(), "the example must show the defaults"
    data = tomllib.loads(EXAMPLE.read_text())
    for dotted in _field_paths(Settings):
        node = data
        for part in dotted.split("."):
            assert part in node, f"config.example.toml does not document {dotted}"
            node = node[part]
    # Array-of-table entries are documented as commented examples.
    text = EXAMPLE.read_text()
    from hello_tui.config.settings import TurnServer

    assert "# [[ice.turn]]" in text
    for f in msgspec.structs.fields(TurnServer):
        assert f"# {f.name} = " in text, f"[[ice.turn]] {f.name} is not documented"


def test_every_key_has_a_comment_above_its_section() -> None:
    text = EXAMPLE.read_text().splitlines()
    for i, line in enumerate(text):
        if line.startswith("[") and not line.startswith("[["):
            assert any(t.startswith("#") for t in text[i + 1 : i + 4]), f"{line} is undocumented"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[video]\nfps = 'x'\n", "c.toml:2: [video] fps: expected int"),
        ("[server]\nport = 3\n", "c.toml:2: [server] port: unknown key (known keys: url,"),
        ("[bogus]\n", "c.toml:1: [bogus]: unknown section"),
        ("[audio\n", "c.toml:1:7: invalid TOML"),
        ("\n\n[audio]\ninput = 'mic'\n", "c.toml:4: [audio] input: 'mic' is not an audio source"),
        ("[audio]\noutput = 'sine:440'\n", "c.toml:2: [audio] output: 'sine:440' is not an audio"),
        ("[audio]\ninput = 'sine:abc'\n", "needs a frequency"),
        ("[video]\nfps = 0\n", "c.toml:2: [video] fps: expected a positive number"),
        ("[video]\nsource = 'webcam'\n", "[video] source: 'webcam' is not a"),
        ("[server]\nurl = 'ftp://x'\n", "[server] url: expected a ws://"),
        ("[ice]\nstun = ['1.2.3.4']\n", "[ice] stun: '1.2.3.4' is not a stun"),
        ("[[ice.turn]]\nurl = 'turn:t'\npass = 'x'\n", "c.toml:3: [ice.turn] pass: unknown key"),
        ("[contacts]\nbackend = 'csv'\n", "c.toml:2: [contacts] backend: expected one of"),
        ("server = 1\n", "c.toml:1: server: expected a table, got int"),
        ("[telemetry]\nenabled = 'yes'\n", "[telemetry] enabled: expected bool"),
        ("[audio]\nptime_ms = 30\n", "c.toml:2: [audio] ptime_ms: expected one of 10, 20, got"),
        ("[audio]\nptime_ms = '10'\n", "c.toml:2: [audio] ptime_ms: expected int, got a string"),
        ("[audio]\nptime_ms = 20.0\n", "c.toml:2: [audio] ptime_ms: expected"),
    ],
)
def test_errors_name_file_line_key_and_expectation(toml: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(toml.encode(), Path("c.toml"))
    message = str(err.value)
    assert "\n" not in message
    assert expected in message, message


def test_ptime_defaults_to_20_and_takes_10(tmp_path: Path) -> None:
    """The packet duration is 20 ms unless the config says 10 (the send path in C's)."""
    assert parse_config(b"", Path("c.toml")).audio.ptime_ms == 10
    assert parse_config(b"[audio]\nptime_ms = 10\n", Path("c.toml")).audio.ptime_ms == 10


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b"[server]\nurl = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_valid_values_are_typed(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        "[audio]\ninput = 'file:/tmp/a.wav'\noutput = 'null:'\n"
        "[ice]\nstun = ['stun:127.0.0.1:3478']\n"
        "[[ice.turn]]\nurl = 'turn:127.0.0.1:3478'\nusername = 'u'\n"
        "[contacts]\nbackend = 'sqlite'\n"
    )
    s = load_config(path)
    assert s.audio.input == "file:/tmp/a.wav"
    assert s.ice.turn[0].username == "u"
    assert s.contacts.backend == "sqlite"
    assert s.server.connect_timeout == 5.0


def test_save_round_trip_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    s = Settings()
    s.audio.input = "sine:440"
    save_config(s, path)
    assert load_config(path) == s
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left
    assert path.stat().st_mode & 0o777 == 0o600


def test_paths_profiles_are_separate(isolated_home: Path) -> None:
    default = resolve_paths()
    bob = resolve_paths(profile="bob")
    assert default.config_file == isolated_home / "config" / "hello-tui" / "config.toml"
    assert bob.config_file.parent != default.config_file.parent
    assert bob.data_dir != default.data_dir
    assert "bob" in bob.data_dir.parts


def test_config_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HELLO_TUI_CONFIG", str(tmp_path / "env.toml"))
    assert resolve_paths().config_file == tmp_path / "env.toml"
    assert resolve_paths(config=tmp_path / "flag.toml").config_file == tmp_path / "flag.toml"
    monkeypatch.setenv("HELLO_TUI_PROFILE", "carol")
    assert resolve_paths().profile == "carol"


@pytest.mark.parametrize("name", ["../etc", "a/b", "", ".hidden", "x" * 65])
def test_bad_profile_names(name: str) -> None:
    if name == "":
        assert resolve_paths(profile=name).profile is None
        return
    with pytest.raises(ProfileError):
        resolve_paths(profile=name)


def test_the_retired_sample_rate_is_accepted_and_ignored(tmp_path: Path) -> None:
    """Older versions wrote ``[audio] sample_rate`` (validated, never used): such a
    file still loads; the key is gone from the settings."""
    path = tmp_path / "c.toml"
    path.write_text('[audio]\ninput = "sine:440"\nsample_rate = 44100\n')
    settings = load_config(path)
    assert settings.audio.input == "sine:440"
    assert not hasattr(settings.audio, "sample_rate")
