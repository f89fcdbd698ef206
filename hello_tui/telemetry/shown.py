"""What telemetry shows the user: every body sent, byte for byte, and what waits.

One text for both front ends: ``hello-tui privacy`` prints it, the TUI's
settings screen shows it ("What was sent"). Read-only: nothing here sends.
"""

from __future__ import annotations

import time
from pathlib import Path

from hello_tui.telemetry.store import Entry, TelemetryStore

__all__ = ["privacy_lines", "when"]


def when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def privacy_lines(
    store: TelemetryStore,
    *,
    enabled: bool,
    config_file: Path,
    sent: list[Entry] | None = None,
    queued: list[Entry] | None = None,
) -> list[str]:
    """The lines ``hello-tui privacy`` prints (``sent``/``queued``: the store's
    own lists unless given, e.g. cut to ``--limit``)."""
    sent = store.sent() if sent is None else sent
    queued = store.queued() if queued is None else queued
    crashes = store.crashes()
    state = "on" if enabled else "off"
    lines = [
        f"Call reports: {state} ([telemetry] enabled in {config_file}).",
        f"Kept in {store.dir} (the last 100 sent).",
    ]
    if not sent:
        lines.append("Nothing was sent.")
    for entry in sent:
        lines += ["", f"Sent {when(entry.at)}  {entry.kind}  to {entry.url}:", entry.body]
    if queued:
        lines += ["", f"Waiting to be sent ({len(queued)}):"]
        for entry in queued:
            lines += [
                "",
                f"{entry.kind} to {entry.url}, queued {when(entry.at)}, "
                f"{entry.attempts} failed attempt(s):",
                entry.body,
            ]
    if crashes:
        lines += [
            "",
            f"{len(crashes)} crash report(s) kept on this device, never sent without a yes: "
            "'hello-tui privacy crashes list'.",
        ]
    return lines
