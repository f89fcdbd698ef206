"""What hello-tui keeps on disk is for its user alone: folders 0700, files
0600, whatever the umask (issue 10, item 7; docs/privacy.md)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hello_tui.util.private import private_dir, private_file
from tests.conftest import Result

Cli = Callable[..., Result]


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The common default: files 0644, folders 0755 unless we say otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_profile_is_private(cli: Cli, isolated_home: Path) -> None:
    assert cli("contacts", "add", "Bob", "--email", "bob@example.org").code == 0
    assert cli("history").code == 0
    data = isolated_home / "data" / "hello-tui"
    state = isolated_home / "state" / "hello-tui"
    assert mode(data) == 0o700 and mode(state) == 0o700
    files = {p.name: mode(p) for d in (data, state) for p in d.rglob("*") if p.is_file()}
    assert "history.sqlite3" in files and "contacts.toml" in files, files
    assert all(m == 0o600 for m in files.values()), files
    assert all(mode(p) == 0o700 for d in (data, state) for p in d.rglob("*") if p.is_dir())


def test_an_old_open_data_dir_is_tightened(cli: Cli, isolated_home: Path) -> None:
    data = isolated_home / "data" / "hello-tui"
    state = isolated_home / "state" / "hello-tui"
    for folder in (data, state):
        folder.mkdir(parents=True)
        folder.chmod(0o755)
    assert cli("history").code == 0
    assert mode(data) == 0o700 and mode(state) == 0o700


def test_private_dir_creates_parents_0700_and_leaves_a_chosen_folder_alone(
    tmp_path: Path,
) -> None:
    chosen = tmp_path / "Downloads"
    chosen.mkdir(mode=0o755)
    chosen.chmod(0o755)
    private_dir(chosen)  # an export target: not the app's to tighten
    assert mode(chosen) == 0o755
    deep = private_dir(tmp_path / "a" / "b")
    assert mode(deep) == 0o700 and mode(deep.parent) == 0o700
    private_dir(chosen, tighten=True)
    assert mode(chosen) == 0o700
    made = private_file(tmp_path / "c" / "x.db")
    assert mode(made) == 0o600 and mode(made.parent) == 0o700
    made.chmod(0o640)
    private_file(made)  # an existing file keeps its mode and content
    assert mode(made) == 0o640
