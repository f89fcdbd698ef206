"""Feedback ("How was your conversation?") into the send queue.

The body is ``protocol.FeedbackReport`` (:func:`report.build_feedback`):
rating, reasons, client version, OS family, hour; nothing that links it to
the call. It goes only to the server the call went through, never for the
embedded default server (``server_url`` empty), and is sent with the queue
(:func:`sender.flush`), after which ``hello-tui privacy`` shows it.
"""

from __future__ import annotations

from collections.abc import Iterable

from hello_tui.telemetry.store import Entry, TelemetryStore

__all__ = ["queue_feedback"]


def queue_feedback(
    store: TelemetryStore, server_url: str, rating: str, reasons: Iterable[str] = ()
) -> Entry | None:
    """Queue the answer for ``server_url``'s ``/feedback``; None (nothing queued)
    for the embedded server. Raises ValueError for a rating/reason the
    protocol does not know."""
    if not server_url:
        return None
    from hello_tui.signaling.protocol import encode_body
    from hello_tui.telemetry.report import build_feedback
    from hello_tui.telemetry.sender import endpoint

    body = encode_body(build_feedback(rating, reasons))
    return store.enqueue("feedback", endpoint(server_url, "feedback"), body)
