"""After a call that did not connect, like Hello: Retry, or Share a link instead.

Both faces ask :func:`recovery_for` whether an ended call gets the offer, and
name the room the same (:func:`share_room_name`): the TUI's prompt (``r`` /
``l``), the CLI's hint line and its ``recovery`` field in ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hello_tui.call import events as ev

__all__ = ["Recovery", "recovery_for", "share_room_name"]

NAME_CHARS = 80  # of the peer's name in the room's name (the room name allows 256)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What to offer: ``lead`` says what happened in a few words ("no answer");
    ``share`` is False for the echo test (there is nobody to send a link to)."""

    lead: str
    share: bool


def recovery_for(
    ended: ev.Ended, *, outgoing: bool, room: bool, target: str, timed_out: bool = False
) -> Recovery | None:
    """The offer for an ended call (None: none). Only an outgoing direct call
    that never connected, not cancelled by us (a ``--timeout`` that ran out is
    "no answer", not a cancel)."""
    if not outgoing or room or ended.stage == "connected":
        return None
    if ended.reason == "cancel" and not timed_out:
        return None
    lead = {
        "busy": "busy",
        "rejected": "declined",
        "timeout": "no answer",
        "cancel": "no answer",
        "user-unknown": "not reachable",
        "unavailable": "not reachable",
    }.get(ended.reason, "the call failed")
    return Recovery(lead, share=target.strip().casefold() != "echo")


def share_room_name(peer: str) -> str:
    """The room a link is shared in, named for whom it is for."""
    name = " ".join(peer.split())[:NAME_CHARS] or "you"
    return f"Call with {name}"
