"""Shell completion generated from the command table: real bash completes
commands, sub-commands and options from the script ``completion bash`` prints."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result

Cli = Callable[..., Result]


def _complete(script: Path, words: list[str]) -> list[str]:
    line = " ".join(words)
    program = (
        f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
        '_hello_tui; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    bash = shutil.which("bash")
    assert bash is not None
    out = subprocess.run([bash, "-c", program], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [w for w in out.stdout.splitlines() if w]


@pytest.fixture
def bash_script(cli: Cli, tmp_path: Path) -> Path:
    r = cli("completion", "bash")
    assert r.code == 0 and "complete -o filenames -F _hello_tui hello-tui" in r.out
    path = tmp_path / "hello-tui.bash"
    path.write_text(r.out)
    return path


def test_bash_completes_from_the_command_table(bash_script: Path) -> None:
    assert {"call", "contacts", "doctor", "serve", "completion"} <= set(
        _complete(bash_script, ["hello-tui", "''"])
    )
    assert _complete(bash_script, ["hello-tui", "con"]) == ["config", "contacts"]
    assert "import" in _complete(bash_script, ["hello-tui", "contacts", "i"])
    assert "--audio-in" in _complete(bash_script, ["hello-tui", "call", "--a"])
    # Options are the sub-command's own, after global options and other words.
    found = _complete(bash_script, ["hello-tui", "--profile", "bob", "contacts", "rm", "x", "--y"])
    assert found == ["--yes"]
    assert _complete(bash_script, ["hello-tui", "config", "s"]) == ["set", "show"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_get_the_same_table(cli: Cli, shell: str) -> None:
    r = cli("completion", shell)
    assert r.code == 0
    if shell == "zsh":
        assert "bashcompinit" in r.out and "_hello_tui_subs" in r.out
    else:
        assert "complete -c hello-tui -n 'test (__hello_tui_path) = contacts' -a import" in r.out
        assert "-n 'test (__hello_tui_path) = call' -l audio-in" in r.out
