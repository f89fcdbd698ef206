"""One call's events, in order, for any number of readers.

:class:`EventStream` keeps every event a :class:`~hello_tui.call.call.Call`
emits; each reader of :meth:`EventStream.events` sees the whole stream from
the first event, and its iteration ends after :class:`~hello_tui.call.events.Ended`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from hello_tui.call import events as ev

__all__ = ["EventStream"]

E = TypeVar("E", bound=ev.CallEvent)


class EventStream:
    """Every event of one call, kept; readers wake when one is added."""

    def __init__(self) -> None:
        self._log: list[ev.CallEvent] = []
        self._waker: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def push(self, event: ev.CallEvent) -> None:
        self._log.append(event)
        waker, self._waker = self._waker, asyncio.get_running_loop().create_future()
        waker.set_result(None)

    @property
    def log(self) -> list[ev.CallEvent]:
        """A copy of every event so far."""
        return list(self._log)

    async def events(self) -> AsyncIterator[ev.CallEvent]:
        """Every event from the first, ending after :class:`~hello_tui.call.events.Ended`."""
        i = 0
        while True:
            while i < len(self._log):
                event = self._log[i]
                i += 1
                yield event
                if isinstance(event, ev.Ended):
                    return
            await asyncio.shield(self._waker)

    async def wait_for(self, kind: type[E], timeout: float | None = None) -> E:
        """The first event of type ``kind`` (raises LookupError if the call ends
        without one, TimeoutError after ``timeout``)."""
        async with asyncio.timeout(timeout):
            async for event in self.events():
                if isinstance(event, kind):
                    return event
        ended = self._log[-1] if self._log else None
        reason = ended.reason if isinstance(ended, ev.Ended) else None
        raise LookupError(f"the call ended ({reason}) before {kind.kind}")
