"""The one token bucket (server frames, chat, terminal sharing)."""

from __future__ import annotations

import math

from hello_tui.util.token_bucket import TokenBucket


def test_a_burst_then_the_steady_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(5.0, 3, clock=lambda: now[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    now[0] += 0.2  # one token at 5 a second
    assert bucket.take() and not bucket.take()
    now[0] += 100.0  # never more than the burst saved up
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_no_limit_for_a_rate_of_zero_or_infinity() -> None:
    for rate in (0.0, -1.0, math.inf):
        bucket = TokenBucket(rate, 1, clock=lambda: 0.0)
        assert all(bucket.take() for _ in range(1000))


def test_spend_may_overdraw_then_waits_it_back() -> None:
    now = [0.0]
    bucket = TokenBucket(10.0, 2, clock=lambda: now[0])
    assert bucket.spend(5.0)  # cost known afterwards: the balance goes to -3
    assert not bucket.spend(1.0) and not bucket.take()
    now[0] += 0.35  # -3 + 3.5 = 0.5 left
    assert not bucket.take() and bucket.spend(1.0)
