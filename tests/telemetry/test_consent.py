"""The first-run question: only interactive, only once, saved in the config."""

from __future__ import annotations

import io
from pathlib import Path

from hello_tui.config import load_config
from hello_tui.config.settings import Settings
from hello_tui.telemetry.consent import QUESTION, first_run
from hello_tui.telemetry.store import TelemetryStore


def test_not_interactive_never_asks(tmp_path: Path) -> None:
    store, out = TelemetryStore(tmp_path), io.StringIO()
    settings = first_run(Settings(), tmp_path / "c.toml", store, interactive=False,
                         stdin=io.StringIO("y\n"), stdout=out)  # fmt: skip
    assert out.getvalue() == "" and not settings.telemetry.enabled
    assert not (tmp_path / "c.toml").exists() and not store.asked


def test_asked_once_and_saved(tmp_path: Path) -> None:
    store, config = TelemetryStore(tmp_path), tmp_path / "c.toml"
    out = io.StringIO()
    settings = first_run(Settings(), config, store, interactive=True,
                         stdin=io.StringIO("y\n"), stdout=out)  # fmt: skip
    assert QUESTION in out.getvalue() and settings.telemetry.enabled
    assert load_config(config).telemetry.enabled and store.asked
    again = io.StringIO()
    first_run(Settings(), config, store, interactive=True, stdin=io.StringIO("n\n"), stdout=again)
    assert again.getvalue() == ""  # never twice


def test_no_is_the_default(tmp_path: Path) -> None:
    store, config = TelemetryStore(tmp_path), tmp_path / "c.toml"
    store.enqueue("call", "http://x/telemetry", "{}")
    settings = first_run(Settings(), config, store, interactive=True,
                         stdin=io.StringIO(""), stdout=io.StringIO())  # fmt: skip
    assert not settings.telemetry.enabled and not load_config(config).telemetry.enabled
    assert store.asked and store.queued() == []  # a "no" also drops waiting call reports
