"""Textual messages the TUI posts: the call's events wrapped, one adapter.

:func:`follow_call` is the only place call events become messages: an async
worker iterating ``call.events()`` and posting :class:`CallEventMessage` (or
:class:`QualityUpdate` for a quality sample) to the widget that runs it.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message
from textual.widget import Widget

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


class BackendChanged(Message):
    """The server connection changed (connected, failed, signed in)."""


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
