"""The call engine does not depend on the server, the echo peer or the session
layer that composes them (the embedded default lives in session/)."""

from __future__ import annotations

import ast
from pathlib import Path

import hello_tui

PACKAGE = Path(hello_tui.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_nothing_in_call_imports_the_server_the_echo_peer_or_the_session() -> None:
    above = ("hello_tui.server", "hello_tui.echo", "hello_tui.session")
    found = {
        f"{path.name}: {name}"
        for path in (PACKAGE / "call").rglob("*.py")
        for name in _imports(path)
        if name.startswith(above)
    }
    assert found == set()


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch.py"
    scratch.write_text("def f():\n    from hello_tui.server.app import create_app\n")
    assert "hello_tui.server.app" in _imports(scratch)


def test_the_embedded_default_lives_in_the_session_layer() -> None:
    assert not (PACKAGE / "call" / "embedded.py").exists()
    assert "hello_tui.server.app" in _imports(PACKAGE / "session" / "embedded.py")
