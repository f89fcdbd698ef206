"""The README's layout table and docs/architecture.md name every package.

A newcomer finds where a feature goes from the folder names and these two
pages; a package that neither names is a package nobody will find."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def packages() -> set[str]:
    return {p.parent.name for p in (ROOT / "hello_tui").glob("*/__init__.py")}


def test_there_are_packages_to_check() -> None:
    assert {"call", "session", "server", "tui", "cli"} <= packages()


def test_the_readme_layout_table_lists_every_package() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `hello_tui/([a-z_]+)/` \|", readme, re.M))
    assert listed == packages()


def test_the_architecture_page_describes_every_package() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    described = set(re.findall(r"^\| `([a-z_]+)/` \|", page, re.M))
    assert described == packages()
