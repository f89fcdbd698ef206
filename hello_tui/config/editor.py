"""Changing the config file without losing what the user wrote in it.

Every write (the TUI's Settings, ``account register``, telemetry consent,
``hello-tui config set``) goes through :func:`write_settings` or
:func:`set_key`: the file is parsed with ``tomlkit``, only the keys whose
values change are touched, and comments, blank lines, key order and quoting
stay as the user left them. A key set back to its default stays written
(the user may have meant it); ``unset`` removes it. The result is validated
with the same checks as loading before it replaces the file (atomically), so
a write can never leave a config that ``hello-tui`` refuses to start with.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import Table

from hello_tui.config.loader import ConfigError, load_config, parse_config, settings_to_dict
from hello_tui.config.settings import Settings
from hello_tui.util.atomic import atomic_write_text


def _document(path: Path) -> tuple[tomlkit.TOMLDocument, Settings]:
    """The file as tomlkit sees it (empty if missing) and the settings it
    gives; a broken file is refused as on load (it is never rewritten)."""
    settings = load_config(path)  # ConfigError with file, line and key
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8")), settings
    except FileNotFoundError:
        return tomlkit.document(), settings


def _commit(doc: tomlkit.TOMLDocument, path: Path) -> Settings:
    text = tomlkit.dumps(doc)
    settings = parse_config(text.encode("utf-8"), path)  # the same checks as loading
    atomic_write_text(path, text)
    return settings


def _table(doc: tomlkit.TOMLDocument, section: str) -> Table:
    table = doc.get(section)
    if table is None:
        table = tomlkit.table()
        doc[section] = table
    if not isinstance(table, Table):
        raise ConfigError(f"[{section}] is not a table")
    return table


def write_settings(settings: Settings, path: Path) -> Settings:
    """Make ``path`` say ``settings``, touching only the keys that differ
    from what the file gives today (file values, else defaults)."""
    doc, current = _document(path)
    before, after = settings_to_dict(current), settings_to_dict(settings)
    for section, values in after.items():
        for key, value in values.items():
            if before[section][key] != value:
                _table(doc, section)[key] = value
    return _commit(doc, path)


def _split(dotted: str) -> tuple[str, str]:
    section, _, key = dotted.partition(".")
    known = settings_to_dict(Settings())
    if section not in known:
        raise ConfigError(f"{dotted}: unknown section (known sections: {', '.join(known)})")
    if key not in known[section]:
        keys = ", ".join(known[section])
        raise ConfigError(f"{dotted}: unknown key (known keys in [{section}]: {keys})")
    return section, key


def parse_value(text: str) -> Any:
    """A command-line value as TOML (``true``, ``5``, ``["stun:h"]``); anything
    that is not a TOML value is a string (``device:USB``, ``https://h``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def set_key(path: Path, dotted: str, value: Any) -> Settings:
    """``hello-tui config set SECTION.KEY VALUE``; validated before writing."""
    section, key = _split(dotted)
    doc, _ = _document(path)
    _table(doc, section)[key] = value
    return _commit(doc, path)


def unset_key(path: Path, dotted: str) -> Settings:
    """Remove ``SECTION.KEY`` from the file: its default applies again."""
    section, key = _split(dotted)
    doc, _ = _document(path)
    table = doc.get(section)
    if isinstance(table, Table) and key in table:
        del table[key]
        if not table:
            del doc[section]
    return _commit(doc, path)
