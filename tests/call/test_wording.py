"""End reasons in human words (issue 11): the sentence the CLI prints, the TUI
shows and the history column says; JSON keeps the codes."""

from __future__ import annotations

import pytest

from hello_tui.call import events as ev
from hello_tui.call.wording import clock, end_words, mmss, outcome_words


@pytest.mark.parametrize(
    ("reason", "stage", "direction", "words"),
    [
        ("timeout", "ringing", "outgoing", "No answer from Bob"),
        ("unavailable", "dialing", "outgoing",
         "Bob is not available (no such account, or not online)"),
        ("busy", "dialing", "outgoing", "Bob is busy"),
        ("rejected", "ringing", "outgoing", "Bob declined"),
        ("cancel", "ringing", "outgoing", "You cancelled"),
        ("cancel", "ringing", "incoming", "Missed call from Bob"),
        ("rejected", "ringing", "incoming", "You declined"),
        ("hangup", "connected", "outgoing", "Call with Bob ended after 1:25"),
        ("closed", "connected", "incoming", "Call with Bob was cut off after 1:25"),
        ("answered-elsewhere", "ringing", "incoming", "Answered on another device"),
    ],
)  # fmt: skip
def test_end_words(reason: str, stage: str, direction: str, words: str) -> None:
    assert end_words(reason, stage, 85.4, peer="Bob", direction=direction) == words
    ended = ev.Ended(reason=reason, duration=85.4, stage=stage, peer="Bob", direction=direction)
    assert ended.line() == words
    assert ended.to_json()["reason"] == reason and "peer" not in ended.to_json()


def test_technical_failures_keep_their_detail() -> None:
    words = end_words("error", "dialing", 0, peer="Bob", direction="outgoing", message="boom")
    assert words == "The call failed (boom)"
    assert end_words("hangup", "connected", 3725, peer="", direction="outgoing") == (
        "Call with the other side ended after 1:02:05"
    )


def test_history_words_and_durations() -> None:
    assert [outcome_words(o) for o in ("answered", "rejected", "timeout", "cancel")] == [
        "answered", "declined", "no answer", "cancelled",
    ]  # fmt: skip
    assert outcome_words("something-new") == "something-new"
    assert (mmss(0), mmss(59.6), mmss(85), mmss(3600)) == ("0:00", "1:00", "1:25", "1:00:00")


def test_the_running_clock_counts_whole_seconds_with_two_digit_minutes() -> None:
    assert (clock(0), clock(5.9), clock(59.99), clock(61)) == ("00:00", "00:05", "00:59", "01:01")
    assert (clock(3599.9), clock(3723)) == ("59:59", "1:02:03")
    assert clock(-2) == "00:00"  # a clock read just before the connected time
