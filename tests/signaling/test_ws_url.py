"""Mapping the configured server URL to its WebSocket endpoint."""

from __future__ import annotations

import random

import pytest

from hello_tui.signaling.client import ReconnectPolicy, ws_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:5000", "ws://127.0.0.1:5000/ws"),
        ("http://127.0.0.1:5000/", "ws://127.0.0.1:5000/ws"),
        ("https://hello.example.org", "wss://hello.example.org/ws"),
        ("ws://127.0.0.1:5000", "ws://127.0.0.1:5000/ws"),
        ("ws://127.0.0.1:5000/ws", "ws://127.0.0.1:5000/ws"),
        ("wss://h.example/ws/", "wss://h.example/ws"),
        ("https://h.example/hello", "wss://h.example/hello/ws"),
        ("HTTP://[::1]:8080", "ws://[::1]:8080/ws"),
    ],
)
def test_ws_url(url: str, expected: str) -> None:
    assert ws_url(url) == expected


@pytest.mark.parametrize("url", ["", "127.0.0.1:5000", "ftp://h.example", "http://"])
def test_ws_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="not a server URL"):
        ws_url(url)


def test_backoff_is_bounded_full_jitter() -> None:
    policy = ReconnectPolicy(base=0.5, cap=4.0)
    rng = random.Random(7)
    for attempt in range(40):
        ceiling = min(4.0, 0.5 * 2**attempt)
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        # Full jitter: spread over the whole window, not clustered at the top.
        assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9
