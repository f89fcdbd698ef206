"""Textual messages the TUI posts.

Two kinds. The call's events wrapped, one adapter: :func:`follow_call` is the
only place call events become messages (an async worker iterating
``call.events()`` and posting :class:`CallEventMessage`, or
:class:`QualityUpdate` for a quality sample, to the widget that runs it).

And requests a screen sends *up* to the app (messages bubble from a screen to
its app): call a contact, join a room, the account changed. A screen
never reaches into the app for these; the app owns calls and the connection.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.widget import Widget

from hello_tui.contacts.model import Contact
from hello_tui.quality.sample import QualitySample


class CallEventMessage(Message):
    """One event of a call (``hello_tui.call.events``), as it arrived."""

    def __init__(self, call: Any, event: Any) -> None:
        super().__init__()
        self.call = call
        self.event = event


class QualityUpdate(Message):
    """One :class:`QualitySample` of a call (the same sample telemetry reports)."""

    def __init__(self, call: Any, sample: QualitySample) -> None:
        super().__init__()
        self.call = call
        self.sample = sample


class CallContact(Message):
    """Call this contact (``video``: with the ``[video]`` source)."""

    def __init__(self, contact: Contact, *, video: bool = False) -> None:
        super().__init__()
        self.contact = contact
        self.video = video


class JoinRoom(Message):
    """Join a room by its URL (or token), shown as ``name``."""

    def __init__(self, url: str, name: str = "") -> None:
        super().__init__()
        self.url = url
        self.name = name


class Dial(Message):
    """Call or open what ``text`` names: an account, a contact, a room URL, echo
    (``tui/dial.py`` resolves it)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class AccountChanged(Message):
    """Signed in, out, or the account deleted: wait for calls, or stop."""


def quality_sample_of(event: Any) -> QualitySample | None:
    """The sample an event carries: the event itself, or its ``sample`` field
    (the call engine's ``Quality`` event wrapper)."""
    if isinstance(event, QualitySample):
        return event
    sample = getattr(event, "sample", None)
    return sample if isinstance(sample, QualitySample) else None


async def follow_call(call: Any, target: Widget) -> None:
    """Post every event of ``call`` to ``target`` until (and including) ``Ended``."""
    async for event in call.events():
        sample = quality_sample_of(event)
        if sample is not None:
            target.post_message(QualityUpdate(call, sample))
        else:
            target.post_message(CallEventMessage(call, event))
