"""Shared fixtures: every test gets its own XDG config/data directories, so
nothing touches the developer's real profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def no_start_up_freeze() -> None:
    """A test process is not a user's: its sessions come and go, each after other
    tests' garbage, which a start-up ``gc.freeze`` would keep for good (streams with
    native threads alive at exit crashed a worker). tests/session/test_start_up.py
    opens it again for its own tests."""
    from hello_tui.session import connect

    connect._start_up_over = True


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        (home / sub).mkdir(parents=True)
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.delenv("HELLO_TUI_CONFIG", raising=False)
    monkeypatch.delenv("HELLO_TUI_PROFILE", raising=False)
    # Control sockets (session/control.py) of this test only, never the developer's
    # running app; short (a socket's path has ~100 bytes) and 0700 (mkdtemp's mode).
    runtime = tempfile.mkdtemp(prefix="ht-run-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    yield home
    shutil.rmtree(runtime, ignore_errors=True)


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``hello-tui ARGS`` in this process (fast) and capture its output."""
    from hello_tui.cli.main import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors and --help
            code = int(exc.code or 0)
        finally:
            from hello_tui.util.logs import stop_logging

            stop_logging()  # the log handlers of this run hold capsys' stderr
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_proc() -> Callable[..., Result]:
    """Run ``hello-tui ARGS`` as a real separate process."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "hello_tui", *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    return run
