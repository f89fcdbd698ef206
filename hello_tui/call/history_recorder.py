"""The history, written from the calls' event stream.

A :class:`HistoryRecorder` is a :class:`~hello_tui.call.phone.CallListener`:
whoever owns the phone attaches it (``HistoryRecorder(store).attach(phone)``)
and every call's :class:`~hello_tui.call.events.Ended` becomes one
:class:`CallRecord` (outcome: :func:`hello_tui.call.events.history_outcome`),
and every call missed while busy one ``missed`` record. Listeners run before
any ``call.events()`` consumer sees the event: a front end that reloads the
history on ``Ended`` finds the record there.

The history is a convenience: a failure to write is logged, never raised
into a call or the phone.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hello_tui.call import events as ev
from hello_tui.call.phone import CallListener
from hello_tui.history.store import CallRecord, HistoryStore

if TYPE_CHECKING:
    from hello_tui.call.call import Call
    from hello_tui.call.phone import Phone

__all__ = ["HistoryRecorder"]

log = logging.getLogger(__name__)


class HistoryRecorder(CallListener):
    """Writes one record per ended call (and per call missed while busy) to ``store``."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store

    def attach(self, phone: Phone) -> HistoryRecorder:
        phone.listeners.append(self)
        return self

    def call_event(self, call: Call, event: ev.CallEvent) -> None:
        if isinstance(event, ev.Ended):
            self._add(
                CallRecord(
                    direction=call.direction,
                    peer=call.peer or "anonymous",
                    outcome=event.history_outcome,
                    start=call.started,
                    duration=event.duration,
                    room_url=call.room_url or None,
                )
            )

    def missed(self, shown: str) -> None:
        self._add(CallRecord(direction="incoming", peer=shown, outcome="missed"))

    def _add(self, record: CallRecord) -> None:
        try:
            self.store.add(record)
        except Exception as exc:
            log.warning("could not write the call history: %s", exc)
