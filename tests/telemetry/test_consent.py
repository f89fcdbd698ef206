"""The first-run question: only interactive, only once, saved in the config."""

from __future__ import annotations

import io
from pathlib import Path

import msgspec

from hello_tui.config import load_config
from hello_tui.config.settings import Settings
from hello_tui.telemetry.after_call import queue_call_report
from hello_tui.telemetry.consent import QUESTION, enforce_off, first_run, sends_reports
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


def _enabled(on: bool) -> Settings:
    s = Settings()
    return msgspec.structs.replace(s, telemetry=msgspec.structs.replace(s.telemetry, enabled=on))


def test_one_consent_rule_for_both_faces() -> None:
    url = "ws://127.0.0.1:1/ws"
    assert sends_reports(_enabled(True), url)
    assert not sends_reports(_enabled(False), url)  # off unless enabled
    assert not sends_reports(_enabled(True), "")  # the embedded server gets nothing
    assert not sends_reports(_enabled(True), url, opted_out=True)  # --no-telemetry


def test_off_leaves_no_call_report_waiting_but_keeps_feedback(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path)
    store.enqueue("call", "http://x/telemetry", "{}")
    store.enqueue("feedback", "http://x/feedback", "{}")
    enforce_off(store, _enabled(True))
    assert len(store.queued()) == 2
    enforce_off(store, _enabled(False))
    assert [e.kind for e in store.queued()] == ["feedback"]


def test_no_report_is_queued_without_consent(tmp_path: Path) -> None:
    """Consent is checked before the call is even looked at: nothing is queued
    (and nothing raises) for the embedded server, with telemetry off or opted out."""
    store, call = TelemetryStore(tmp_path), object()
    url = "ws://127.0.0.1:1/ws"
    assert not queue_call_report(store, call, _enabled(False), url)
    assert not queue_call_report(store, call, _enabled(True), "")
    assert not queue_call_report(store, call, _enabled(True), url, opted_out=True)
    assert not queue_call_report(store, None, _enabled(True), url)
    assert not queue_call_report(store, call, _enabled(True), url)  # not a call: swallowed
    assert store.queued() == []
