"""Once a call is over: its report into the send queue, if consent allows.

Both faces call :func:`queue_call_report` when a call has ended; the rule
(:func:`consent.sends_reports`) is the same for both. Sending is the
face's business (:func:`sender.flush_for`, bounded in time).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hello_tui.telemetry.consent import sends_reports
from hello_tui.telemetry.store import TelemetryStore

if TYPE_CHECKING:
    from hello_tui.config.settings import Settings

__all__ = ["queue_call_report"]

log = logging.getLogger(__name__)


def queue_call_report(
    store: TelemetryStore,
    call: Any,
    settings: Settings,
    server_url: str,
    *,
    opted_out: bool = False,
) -> bool:
    """Queue ``call``'s report for ``server_url``'s ``/telemetry`` when the
    consent rule allows; True when one was queued. Never raises: a report
    must not break or delay anything."""
    if call is None or not sends_reports(settings, server_url, opted_out=opted_out):
        return False
    try:
        from hello_tui.signaling.protocol import encode_body
        from hello_tui.telemetry.report import report_for_call
        from hello_tui.telemetry.sender import endpoint

        report = report_for_call(call, store.install_secret())
        if report is None:
            return False
        store.enqueue("call", endpoint(server_url, "call"), encode_body(report))
    except Exception as exc:
        log.debug("telemetry: no call report: %r", exc)
        return False
    return True
