"""The first-run question, and the one switch.

Telemetry is off unless ``[telemetry] enabled = true``. The first time a
call is placed or answered *interactively* (stdin and stdout are terminals),
the user is told what a report holds and asked once; the answer is saved in
the config file (``save_config``: atomic) and ``asked`` in the telemetry
state, so the question never comes back. A run without a terminal never
asks and sends nothing unless the config enables it. ``--no-telemetry``
turns it off for one run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import msgspec

from hello_tui.config import save_config
from hello_tui.config.settings import Settings
from hello_tui.telemetry.store import TelemetryStore

EXPLANATION = """\
hello-tui can send a short report to the server you call through after each call,
so its operator can see how calls go (nothing while the call is on):
  - how long it lasted, how it ended, and at which step a failed call failed
  - quality: round-trip time, jitter, packet loss, MOS (p50/p95, mean/min)
  - network type (wired / Wi-Fi / cellular), OS family, hello-tui version
  - the hour of the call (UTC), and a random id that changes every day
Never sent: contacts, account names, room links, call ids, IP addresses, audio.
The server truncates your IP address and keeps only totals.
'hello-tui privacy' shows every report exactly as sent; [telemetry] enabled in
the config file (or --no-telemetry) switches it off.
"""
QUESTION = "Send call-quality reports? [y/N] "


def sends_reports(settings: Settings, server_url: str, *, opted_out: bool = False) -> bool:
    """The one consent rule: a call report is queued only with ``[telemetry]
    enabled``, for a real server (``server_url`` empty: the embedded one, which
    gets nothing) and not when this run said ``--no-telemetry``."""
    return bool(server_url) and settings.telemetry.enabled and not opted_out


def enforce_off(store: TelemetryStore, settings: Settings) -> None:
    """Telemetry off (answered no, switched off in the config or the TUI's
    settings): no call report waits in the queue any more."""
    if not settings.telemetry.enabled:
        store.clear_queue("call")


def needs_asking(settings: Settings, store: TelemetryStore) -> bool:
    """True on the first interactive run: never asked, and not already enabled."""
    return not settings.telemetry.enabled and not store.asked


def ask(stdin: TextIO, stdout: TextIO) -> bool:
    """Explain and ask; anything but y/yes is a no (as is end of input)."""
    stdout.write(EXPLANATION + QUESTION)
    stdout.flush()
    answer = stdin.readline()
    return answer.strip().lower() in ("y", "yes")


def save_choice(
    settings: Settings, config_file: Path, store: TelemetryStore, enabled: bool
) -> Settings:
    """Write ``[telemetry] enabled`` to the config (atomic) and remember we asked."""
    telemetry = msgspec.structs.replace(settings.telemetry, enabled=enabled)
    updated = msgspec.structs.replace(settings, telemetry=telemetry)
    save_config(updated, config_file)
    store.mark_asked()
    enforce_off(store, updated)
    return updated


def first_run(
    settings: Settings,
    config_file: Path,
    store: TelemetryStore,
    *,
    interactive: bool,
    stdin: TextIO,
    stdout: TextIO,
    ask_fn: Callable[[TextIO, TextIO], bool] = ask,
) -> Settings:
    """Ask once if this is the first interactive run; return the (maybe updated) settings."""
    if not interactive or not needs_asking(settings, store):
        return settings
    return save_choice(settings, config_file, store, ask_fn(stdin, stdout))
