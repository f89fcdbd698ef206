"""Timestamps as both faces show them: local time to the minute (history, room expiry)."""

from __future__ import annotations

from datetime import datetime


def local_time(ts: float) -> str:
    """``2024-05-01 14:03``: the local wall-clock minute of a Unix time."""
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
