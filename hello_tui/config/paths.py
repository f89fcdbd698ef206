"""Where the config file and the profile's data live (XDG via platformdirs).

Precedence for the config file: ``--config PATH``, then ``$HELLO_TUI_CONFIG``,
then the profile's default. ``--profile NAME`` (or ``$HELLO_TUI_PROFILE``)
gives a separate config *and* data directory, so two identities can live on
one machine and call each other from two terminals.

What the device can rebuild or lose without harm lives in the state
directory (``$XDG_STATE_HOME``): the log files and the call history.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "hello-tui"
_PROFILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProfileError(ValueError):
    """A profile name that could escape its directory or is otherwise unusable."""


@dataclass(frozen=True, slots=True)
class Paths:
    """Resolved locations for one profile."""

    profile: str | None
    config_file: Path
    data_dir: Path
    state_dir: Path

    def contacts_file(self, backend: str) -> Path:
        return self.data_dir / ("contacts.sqlite3" if backend == "sqlite" else "contacts.toml")

    def contacts_location(self, backend: str, configured: str = "") -> Path:
        """The address book's file: ``[contacts] path`` (relative to the data
        directory, ``~`` expanded) or the backend's default name there."""
        if not configured:
            return self.contacts_file(backend)
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def history_file(self) -> Path:
        """The call history, in the state directory; one an older version left in
        the data directory is moved here on first use."""
        from hello_tui.util.migrate import move_sqlite_once

        path = self.state_dir / "history.sqlite3"
        move_sqlite_once(self.data_dir / "history.sqlite3", path)
        return path

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "hello-tui.log"

    def private_data_dir(self) -> Path:
        """The data and state directories, created 0700 or tightened to it:
        they hold the address book, the account key, the history and the log."""
        from hello_tui.util.private import private_dir

        private_dir(self.state_dir, tighten=True)
        return private_dir(self.data_dir, tighten=True)


def resolve_paths(
    config: str | os.PathLike[str] | None = None, profile: str | None = None
) -> Paths:
    """Resolve the config file and data directory for ``profile``."""
    profile = profile or os.environ.get("HELLO_TUI_PROFILE") or None
    if profile is not None and not _PROFILE_RE.match(profile):
        raise ProfileError(
            f"invalid profile name {profile!r}: use letters, digits, '.', '_' or '-' (max 64)"
        )
    config_root = platformdirs.user_config_path(APP_NAME)
    data_root = platformdirs.user_data_path(APP_NAME)
    state_root = platformdirs.user_state_path(APP_NAME)
    if profile:
        config_root = config_root / "profiles" / profile
        data_root = data_root / "profiles" / profile
        state_root = state_root / "profiles" / profile
    explicit = config or os.environ.get("HELLO_TUI_CONFIG") or None
    config_file = Path(explicit).expanduser() if explicit else config_root / "config.toml"
    return Paths(profile=profile, config_file=config_file, data_dir=data_root, state_dir=state_root)
