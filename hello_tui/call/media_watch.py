"""Is the other side still heard? A watch on the received audio of a connected call.

aiortc has no ``disconnected`` state: its connection goes ``failed`` only when
aioice's consent freshness gives up, after 6 unanswered checks 5 s apart
(~30 s, ``aioice.ice.CONSENT_FAILURES`` / ``CONSENT_INTERVAL``, 0.13). A
call's audio never stops on its own (a muted side sends silence, a file that
ended sends silence, the echo sends back what it gets), so the received
frame count is a faster and public signal: frames stop for ``stall_after``
seconds → ``on_stall`` (the call says "reconnecting…"); they come back →
``on_resume(gap)``; none for ``lost_after`` → ``on_lost`` (the call ends with
a reason in words, well inside 10 s). Nothing of aiortc's is touched.

A call that can renew its transport (docs/calls.md, "A new transport within
the call") is told ``on_long_stall`` once per interruption, after
``renew_after`` seconds, and holds the end off while a renewal is under way
(:meth:`MediaWatch.hold`: at most :data:`RENEW_LOST_AFTER`, still inside 10 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

__all__ = ["LOST_AFTER", "RENEW_AFTER", "RENEW_LOST_AFTER", "STALL_AFTER", "MediaWatch"]

STALL_AFTER = 1.5  # seconds without a received frame: the path is interrupted
RENEW_AFTER = 2.5  # seconds without one: the offerer renews the transport
LOST_AFTER = 8.0  # seconds without one: the call is lost (the bar: ended within 10 s)
RENEW_LOST_AFTER = 9.0  # the same while a renewal is under way
TICK = 0.25


class MediaWatch:
    """Counts received frames every :data:`TICK` and says when they stop and resume."""

    def __init__(
        self,
        frames: Callable[[], int],
        *,
        on_stall: Callable[[float], None],
        on_resume: Callable[[float], None],
        on_lost: Callable[[float], None],
        stall_after: float = STALL_AFTER,
        lost_after: float = LOST_AFTER,
        on_long_stall: Callable[[float], None] | None = None,
        renew_after: float = RENEW_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frames = frames
        self._on_stall, self._on_resume, self._on_lost = on_stall, on_resume, on_lost
        self._on_long_stall = on_long_stall
        self.stall_after = min(stall_after, lost_after)
        self.renew_after = renew_after
        self.lost_after = self._lost_default = lost_after
        self._long_told = False
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.stalled = False
        self.longest_gap = 0.0  # seconds: the longest time without a frame so far

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def hold(self, on: bool) -> None:
        """A renewal is under way (or over): give up after :data:`RENEW_LOST_AFTER`
        seconds without a frame (or the default again)."""
        self.lost_after = max(self._lost_default, RENEW_LOST_AFTER) if on else self._lost_default

    def stall_now(self) -> bool:
        """Count the path as interrupted from now (our network changed): True if it
        was not already (the caller says "reconnecting"; the watch will not again)."""
        was, self.stalled = self.stalled, True
        return not was

    def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _run(self) -> None:
        last, seen = self._frames(), self._clock()
        while True:
            await asyncio.sleep(TICK)
            count, now = self._frames(), self._clock()
            quiet = now - seen
            if count != last:
                last, seen = count, now
                self._long_told = False
                if self.stalled:
                    self.stalled = False
                    self.longest_gap = max(self.longest_gap, quiet)
                    self._on_resume(round(quiet, 2))
                continue
            self.longest_gap = max(self.longest_gap, quiet)
            if not self.stalled and quiet >= self.stall_after:
                self.stalled = True
                self._on_stall(round(quiet, 2))
            if not self._long_told and quiet >= self.renew_after:
                self._long_told = True
                if self._on_long_stall is not None:
                    self._on_long_stall(round(quiet, 2))
            if quiet >= self.lost_after:
                self._task = None
                with contextlib.suppress(Exception):
                    self._on_lost(round(quiet, 2))
                return
