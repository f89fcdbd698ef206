"""Per-connection token bucket: a steady rate with room for short bursts
(the one bucket of :mod:`hello_tui.util.token_bucket`; a rate of 0 means no limit)."""

from __future__ import annotations

from hello_tui.util.token_bucket import TokenBucket

__all__ = ["TokenBucket"]
