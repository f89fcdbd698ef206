"""Local call history (kept on this device only, capped in size)."""

from hello_tui.history.store import CallRecord, HistoryStore

__all__ = ["CallRecord", "HistoryStore"]
