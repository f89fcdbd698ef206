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
    elif reason == "rejected":
        text = f"{who} declined" if outgoing else "You declined"
    elif reason == "busy":
        text = f"{who} is busy" if outgoing else f"Turned away {who}: busy"
    elif reason in ("timeout", "setup-timeout"):
        text = f"No answer from {who}" if outgoing else f"Missed call from {who}"
    elif reason == "cancel":
        text = "You cancelled" if outgoing else f"Missed call from {who}"
    elif reason == "unavailable":
        text = f"{who} is not available (no such account, or not online)"
    elif reason == "user-unknown":
        text = "No such room (it may have expired or been deleted)"
    elif reason == "answered-elsewhere":
        text = "Answered on another device"
    elif reason == "media-fail":
        text = f"Could not connect to {who}: no media path (a firewall or NAT?)"
    elif reason == "closed":
        text = f"{who} went away before the call connected"
    elif reason == "unreachable":
        text = "Cannot reach the server"
    elif reason == "error":
        text = "The call failed"
    else:
        text = f"Call ended: {reason}"
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
