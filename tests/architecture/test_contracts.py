"""The import-linter contracts in pyproject.toml bite: each one is broken on a
copy of the package that violates it, and the real tree keeps them all.

One lint-imports run checks every violation at once: each is a distinct
(importer, imported) pair, and the test looks for its own import line in the
section of the contract it must break.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hello_tui"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

LAYERS = "Layers: faces, session, echo, core, util, the shared protocol"
SERVER = "The server shares only the wire vocabulary and util with the client"
TEXTUAL = "Only the TUI imports Textual"

# (module that gains `import X`, X, the contract that must break)
VIOLATIONS = [
    # The core's signaling client pulling in the TUI toolkit.
    ("hello_tui.signaling.client", "textual", TEXTUAL),
    # A TUI widget in the call engine: a layer violation, and Textual reached indirectly.
    ("hello_tui.call.wording", "hello_tui.tui.app", LAYERS),
    ("hello_tui.call.wording", "hello_tui.tui.app", TEXTUAL),
    # The session layer reaching up into a face.
    ("hello_tui.session", "hello_tui.cli.main", LAYERS),
    # The faces are siblings: a CLI command must not reuse TUI code.
    ("hello_tui.cli.history_cmd", "hello_tui.tui.text", LAYERS),
    # The cycle issue 12 removed (pins used call's name normalisation).
    ("hello_tui.contacts.pins", "hello_tui.call.sas", LAYERS),
    # util sits below every client package, media below config.
    ("hello_tui.util.atomic", "hello_tui.signaling.client", LAYERS),
    ("hello_tui.media.ring", "hello_tui.config.settings", LAYERS),
    # The server importing the client's contacts or its signaling client.
    ("hello_tui.server.noise", "hello_tui.contacts", SERVER),
    ("hello_tui.server.ids", "hello_tui.signaling.client", SERVER),
]
# A new top-level package must be placed in a layer (exhaustive = true).
NEW_PACKAGE = "scratchpkg"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def sections(report: str) -> dict[str, str]:
    """Each broken contract's part of the report, by contract name."""
    _, _, broken = report.partition("Broken contracts")
    parts = re.split(r"^(.+)\n-{3,}\n", broken, flags=re.MULTILINE)
    return {name.strip(): body for name, body in zip(parts[1::2], parts[2::2], strict=True)}


@pytest.fixture(scope="module")
def broken_report(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    copy = tmp_path_factory.mktemp("contracts")
    shutil.copytree(
        PACKAGE,
        copy / "hello_tui",
        ignore=lambda d, names: [n for n in names if n == "__pycache__" or n.endswith(".pyc")],
    )
    shutil.copy(ROOT / "pyproject.toml", copy)
    for importer, imported, _ in VIOLATIONS:
        target = copy.joinpath(*importer.split("."))
        target = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
        line = f"import {imported}  # scratch violation"
        text = target.read_text()
        if line not in text:
            target.write_text(f"{text}\n{line}\n")
    (copy / "hello_tui" / NEW_PACKAGE).mkdir()
    (copy / "hello_tui" / NEW_PACKAGE / "__init__.py").write_text("")
    return lint_imports(copy)


def test_the_real_tree_keeps_every_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_each_contract_is_broken_by_its_violations(
    broken_report: subprocess.CompletedProcess[str],
) -> None:
    assert broken_report.returncode != 0
    assert "0 kept, 3 broken" in broken_report.stdout, broken_report.stdout
    broken = sections(broken_report.stdout)
    assert set(broken) == {LAYERS, SERVER, TEXTUAL}
    for importer, imported, contract in VIOLATIONS:
        assert f"{importer} -> {imported} (l." in broken[contract], (importer, imported, contract)


def test_an_unplaced_package_breaks_the_layers(
    broken_report: subprocess.CompletedProcess[str],
) -> None:
    assert f"hello_tui.{NEW_PACKAGE}" in sections(broken_report.stdout)[LAYERS]


# The lists that import-linter cannot check for completeness itself.


def contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def modules() -> set[str]:
    """hello_tui's top-level modules and signaling's modules, as dotted names."""
    found = {f"hello_tui.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    found |= {f"hello_tui.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    found |= {f"hello_tui.signaling.{p.stem}" for p in (PACKAGE / "signaling").glob("*.py")}
    return found - {"hello_tui.signaling.__init__"}


def unplaced(contract: dict[str, Any], known: set[str]) -> set[str]:
    """Modules the layers contract names in no layer (signaling's one by one)."""
    placed = {
        f"hello_tui.{tail.strip(' ()')}"
        for layer in contract["layers"]
        for tail in re.split(r"[|:]", layer)
    }
    return {m for m in known if m not in placed and m != "hello_tui.signaling"}


def test_every_signaling_module_has_a_layer() -> None:
    layers = contracts()[LAYERS]
    assert unplaced(layers, modules()) == set()
    assert unplaced(layers, modules() | {"hello_tui.signaling.scratch"}) == {
        "hello_tui.signaling.scratch"
    }


SHARED_WITH_SERVER = {
    "hello_tui.server",
    "hello_tui.util",
    "hello_tui.signaling",  # the package's empty __init__ (its modules are listed one by one)
    "hello_tui.signaling.protocol",
    "hello_tui.signaling.urls",
    "hello_tui.signaling.names",
    "hello_tui.signaling.redact",
}


def test_the_server_contract_forbids_every_other_module() -> None:
    forbidden = set(contracts()[SERVER]["forbidden_modules"])
    assert forbidden == modules() - SHARED_WITH_SERVER


def test_the_textual_contract_covers_every_package_but_the_tui() -> None:
    sources = set(contracts()[TEXTUAL]["source_modules"])
    top_level = {m for m in modules() if m.count(".") == 1}
    assert sources == top_level - {"hello_tui.tui"}


def test_every_ignored_import_says_why() -> None:
    lines = (ROOT / "pyproject.toml").read_text().splitlines()
    inside = False
    entries = 0
    for before, line in itertools.pairwise(lines):
        if line.startswith("ignore_imports = ["):
            inside = True
        elif inside and line.startswith("]"):
            inside = False
        elif inside and line.strip().startswith('"'):
            entries += 1
            assert before.strip().startswith("#"), f"no comment above: {line.strip()}"
    assert entries >= 1
