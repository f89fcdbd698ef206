"""How a call's end and a history outcome read to a person, in one place:
the CLI's text mode, the TUI's notice and both history views use these, and
JSON keeps the protocol codes (``reason``, ``outcome``).

``peer`` is untrusted text (an account name or a contact's name): the faces
escape what they print; nothing here adds markup.
"""

from __future__ import annotations


def mmss(seconds: float) -> str:
    """``85.4`` → ``1:25``; an hour or more → ``1:02:03``."""
    return _hms(round(seconds), pad=False)


def clock(seconds: float) -> str:
    """A running call's clock, whole seconds elapsed: ``5.9`` → ``00:05``; an
    hour or more → ``1:02:03``."""
    return _hms(int(seconds), pad=True)


def _hms(secs: int, *, pad: bool) -> str:
    hours, rest = divmod(max(0, secs), 3600)
    if hours:
        return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return f"{rest // 60:02d}:{rest % 60:02d}" if pad else f"{rest // 60}:{rest % 60:02d}"


# An end before (or without) a connection, by reason: the words, or
# (outgoing, incoming) words where the direction changes them.
_END_WORDS: dict[str, str | tuple[str, str]] = {
    "rejected": ("{who} declined", "You declined"),
    "busy": ("{who} is busy", "Turned away {who}: busy"),
    "timeout": ("No answer from {who}", "Missed call from {who}"),
    "setup-timeout": ("No answer from {who}", "Missed call from {who}"),
    "cancel": ("You cancelled", "Missed call from {who}"),
    "unavailable": "{who} is not available (no such account, or not online)",
    "user-unknown": "No such room (it may have expired or been deleted)",
    "answered-elsewhere": "Answered on another device",
    "media-fail": "Could not connect to {who}: no media path (a firewall or NAT?)",
    "closed": "{who} went away before the call connected",
    "unreachable": "Cannot reach the server",
    "error": "The call failed",
}


def end_words(
    reason: str, stage: str, duration: float, *, peer: str, direction: str, message: str = ""
) -> str:
    """One sentence for how a call ended: "No answer from Bob", "Bob is busy",
    "Bob declined", "You cancelled", "Call with Bob ended after 1:25"."""
    who = peer or "the other side"
    outgoing = direction != "incoming"
    connected = stage == "connected"
    if connected and reason in ("hangup", "cancel"):
        text = f"Call with {who} ended after {mmss(duration)}"
    elif connected and reason in ("closed", "media-fail", "unreachable"):
        text = f"Call with {who} was cut off after {mmss(duration)}"
    else:
        words = _END_WORDS.get(reason, "Call ended: {reason}")
        if isinstance(words, tuple):
            words = words[0] if outgoing else words[1]
        text = words.format(who=who, reason=reason)
    if connected and message and reason in ("closed", "media-fail"):
        return f"{text}: {message}"  # "…cut off after 0:12: lost the connection to Bob (network)"
    return (
        f"{text} ({message})"
        if message and reason in ("unreachable", "error", "media-fail")
        else text
    )


# History outcomes (``CallRecord.outcome``) as a word for the history column.
OUTCOME_WORDS = {
    "answered": "answered",
    "missed": "missed",
    "rejected": "declined",
    "busy": "busy",
    "timeout": "no answer",
    "setup-timeout": "no answer",
    "cancel": "cancelled",
    "unavailable": "not available",
    "user-unknown": "no such room",
    "answered-elsewhere": "answered elsewhere",
    "media-fail": "failed to connect",
    "closed": "cut off",
    "unreachable": "server unreachable",
    "error": "failed",
}


def outcome_words(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome, outcome)
