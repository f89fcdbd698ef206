"""Read, validate and write the config file.

Errors are one line naming the file, the line when it can be found, the key
and what was expected: ``config.toml:7: [video] fps: expected int, got str``.
A broken config file is never rewritten.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import msgspec

from hello_tui.config.settings import Settings
from hello_tui.media.endpoint import EndpointError, Role, parse_endpoint


class ConfigError(ValueError):
    """The config file is unreadable or invalid; the message is one line."""


_MSGSPEC_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<key>[^`]+)`")
_EXPECTED = re.compile(r"Expected `(?P<want>[^`]+)`, got `(?P<got>[^`]+)`")


def load_config(path: Path) -> Settings:
    """Load and validate ``path``; a missing file gives the defaults."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Settings()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    return parse_config(raw, path)


def parse_config(raw: bytes, path: Path) -> Settings:
    """Validate TOML bytes; ``path`` is only used in error messages."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        if m:
            msg = msg[: m.start()].strip()
            raise ConfigError(f"{path}:{m.group(1)}:{m.group(2)}: invalid TOML: {msg}") from None
        raise ConfigError(f"{path}: invalid TOML: {msg}") from None
    try:
        _drop_retired_keys(data)
        settings = msgspec.convert(data, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe_validation_error(str(exc), path, text)) from None
    _check_values(settings, path, text)
    return settings


# Keys older versions wrote that mean nothing now: accepted, ignored, never an error.
RETIRED_KEYS = {"audio": ("sample_rate",)}


def _drop_retired_keys(data: dict[str, Any]) -> None:
    for section, keys in RETIRED_KEYS.items():
        table = data.get(section)
        if isinstance(table, dict):
            for key in keys:
                table.pop(key, None)


def _describe_validation_error(message: str, path: Path, text: str) -> str:
    m = _MSGSPEC_AT.match(message)
    assert m is not None  # the pattern matches any string
    msg, at = m.group("msg"), m.group("path") or ""
    keys = [k for k in re.split(r"\.|\[\d+\]", at) if k]
    unknown = _UNKNOWN.match(msg)
    if unknown:
        keys.append(unknown.group("key"))
        known = _known_keys(keys[:-1])
        label = "sections" if len(keys) == 1 else "keys"
        hint = f" (known {label}: {', '.join(known)})" if known else ""
        what = "unknown section" if len(keys) == 1 else "unknown key"
        return f"{_where(path, text, keys)}: {what}{hint}"
    expected = _EXPECTED.match(msg)
    if expected:
        want = {"object": "a table", "array": "an array", "str": "a string"}.get(
            expected.group("want"), expected.group("want")
        )
        got = {"object": "a table", "array": "an array", "str": "a string"}.get(
            expected.group("got"), expected.group("got")
        )
        return f"{_where(path, text, keys)}: expected {want}, got {got}"
    if msg.startswith("Invalid enum value"):
        choices = _literal_choices(keys)
        if choices:
            got = msg.removeprefix("Invalid enum value").strip()
            return f"{_where(path, text, keys)}: expected one of {choices}, got {got}"
    return f"{_where(path, text, keys)}: {msg[0].lower() + msg[1:] if msg else 'invalid'}"


def _literal_choices(keys: list[str]) -> str:
    """``'a', 'b'`` for a Literal-typed setting, else empty."""
    struct: Any = Settings
    for key in keys:
        fields = {f.name: f for f in msgspec.structs.fields(struct)}
        if key not in fields:
            return ""
        struct = fields[key].type
    if getattr(struct, "__origin__", None) is Literal:
        return ", ".join(repr(a) for a in struct.__args__)
    return ""


def _known_keys(section: list[str]) -> list[str]:
    """The valid keys of the table at ``section`` (for 'did you mean' hints)."""
    struct: Any = Settings
    for key in section:
        fields = {f.name: f for f in msgspec.structs.fields(struct)}
        if key not in fields:
            return []
        struct = fields[key].type
        if not (isinstance(struct, type) and issubclass(struct, msgspec.Struct)):
            args = getattr(struct, "__args__", ())
            struct = next(
                (a for a in args if isinstance(a, type) and issubclass(a, msgspec.Struct)), None
            )
            if struct is None:
                return []
    return [f.name for f in msgspec.structs.fields(struct)]


def _where(path: Path, text: str, keys: list[str]) -> str:
    """``file:line: [section] key`` for a dotted key path (line found by a scan)."""
    line = _find_line(text, keys)
    loc = f"{path}:{line}" if line else str(path)
    if not keys:
        return loc
    if len(keys) == 1:
        return f"{loc}: [{keys[0]}]" if _find_table(text, keys) else f"{loc}: {keys[0]}"
    return f"{loc}: [{'.'.join(keys[:-1])}] {keys[-1]}"


def _find_table(text: str, keys: list[str]) -> int | None:
    header = re.compile(r"^\s*\[\[?\s*" + re.escape(".".join(keys)) + r"\s*\]\]?\s*(#.*)?$")
    for n, line in enumerate(text.splitlines(), 1):
        if header.match(line):
            return n
    return None


def _find_line(text: str, keys: list[str]) -> int | None:
    """Best-effort line number of ``keys`` in ``text`` (tables and plain keys)."""
    if not keys:
        return None
    table_line = _find_table(text, keys)
    if table_line:
        return table_line
    section, key = keys[:-1], keys[-1]
    current: list[str] = []
    key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    header_re = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    for n, line in enumerate(text.splitlines(), 1):
        h = header_re.match(line)
        if h:
            current = [p.strip() for p in h.group(1).split(".")]
            continue
        if current == section and key_re.match(line):
            return n
    return _find_table(text, section) if section else None


def _check_values(s: Settings, path: Path, text: str) -> None:
    """Checks a type cannot express: endpoint shapes, ranges, URL schemes."""

    def fail(keys: list[str], why: str) -> None:
        raise ConfigError(f"{_where(path, text, keys)}: {why}")

    audio: tuple[tuple[str, Role], ...] = (("input", "audio-source"), ("output", "audio-sink"))
    for key, role in audio:
        try:
            parse_endpoint(getattr(s.audio, key), role)
        except EndpointError as exc:
            fail(["audio", key], str(exc))
    if s.sounds.output:
        try:
            parse_endpoint(s.sounds.output, "audio-sink")
        except EndpointError as exc:
            fail(["sounds", "output"], str(exc))
    try:
        parse_endpoint(s.video.source, "video-source")
    except EndpointError as exc:
        fail(["video", "source"], str(exc))
    for key in ("width", "height", "fps"):
        value = getattr(s.video, key)
        if not 1 <= value <= 4096:
            fail(["video", key], f"expected a positive number up to 4096, got {value}")
    if s.server.url and not re.match(r"^(wss?|https?)://[^\s/]+", s.server.url):
        fail(["server", "url"], "expected a ws://, wss://, http:// or https:// URL, or empty")
    if s.server.connect_timeout <= 0:
        fail(["server", "connect_timeout"], "expected a positive number of seconds")
    for url in s.ice.stun:
        if not re.match(r"^stuns?:\S+$", url):
            fail(["ice", "stun"], f"{url!r} is not a stun: or stuns: URL")
    for turn in s.ice.turn:
        if not re.match(r"^turns?:\S+$", turn.url):
            fail(["ice", "turn", "url"], f"{turn.url!r} is not a turn: or turns: URL")
    if s.history.max_entries < 0:
        fail(["history", "max_entries"], "expected 0 or more")


def settings_to_dict(settings: Settings) -> dict[str, Any]:
    """Plain dict of every setting (for ``config show`` and for saving)."""
    plain: dict[str, Any] = msgspec.to_builtins(settings)  # a Struct becomes a dict
    return plain


def save_config(settings: Settings, path: Path) -> None:
    """Write ``settings`` to ``path`` atomically, keeping the user's comments
    and layout: only changed keys are touched (``config/editor.py``)."""
    from hello_tui.config.editor import write_settings

    write_settings(settings, path)
