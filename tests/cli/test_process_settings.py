"""Start-up settings the CLI makes before a handler imports numpy (docs/media.md "Memory")."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hello_tui.cli import main as cli_main

PROBE = (
    "import os, sys; import hello_tui.cli.main as m\n"
    "m._process_settings(); import numpy\n"
    "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))\n"
)


def test_openblas_gets_one_thread_unless_the_user_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    cli_main._process_settings()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    cli_main._process_settings()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"


def test_numpy_imported_after_the_settings_starts_no_blas_pool() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["1", "1"]  # the value set, and the main thread alone
