"""A frame queue whose waiting reader runs in the writer's stack (issue 17).

An ``asyncio.Queue`` hands an item to a waiting reader through the loop: the
reader's future gets its result, which *schedules* the reader's task, which
runs one loop iteration later. A call's media crosses such a hop twice per
20 ms frame and side: the microphone's block (the capture thread's
``call_soon_threadsafe`` callback puts it on the source's queue, the sender's
task encodes and sends it an iteration later) and the received frame (the
datagram callback decodes it onto the remote track's queue, the sink's task
plays it an iteration later). Each hop costs a loop iteration (an ``epoll``
with no timeout, the ready queue, a ``Handle``) and a future.

:class:`EagerQueue` resumes the waiting task *at once*, in ``put_nowait``'s
stack, when ``put_nowait`` is called from a plain callback (no task running:
the capture hand-off, the datagram callback). Called from inside a task (a
task cannot run inside another), it schedules the reader as asyncio does. The
reader waits on a :class:`_Wake`, a duck-typed asyncio future (the
``_asyncio_future_blocking`` protocol every ``Task`` accepts: ``get_loop``,
``add_done_callback``, ``result``, ``cancel``), so cancellation and
``asyncio.timeout`` work on a waiting ``get()`` as on ``asyncio.Queue``'s.

``HELLO_TUI_EAGER_WAKE=0`` makes :func:`frame_queue` return a plain
``asyncio.Queue`` (the A/B switch of ``bench/loop_cpu.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import os
from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_PENDING, _DONE, _CANCELLED = 0, 1, 2


def eager_enabled() -> bool:
    """Whether frame queues resume their reader in the writer's stack (default: yes)."""
    return os.environ.get("HELLO_TUI_EAGER_WAKE", "1").strip().lower() not in ("0", "off", "no")


class _Wake:
    """One wait of a reader: an asyncio-compatible future with no result value,
    whose :meth:`wake` runs the waiting task's wake-up callback directly."""

    __slots__ = ("_asyncio_future_blocking", "_callbacks", "_loop", "_state")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._state = _PENDING
        self._callbacks: list[tuple[Callable[[Any], Any], contextvars.Context | None]] = []
        self._asyncio_future_blocking = False

    def __await__(self) -> Generator[Any, None, None]:
        if self._state == _PENDING:
            self._asyncio_future_blocking = True
            yield self  # the task registers its wake-up with add_done_callback
        self.result()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._state != _PENDING

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def result(self) -> None:
        if self._state == _CANCELLED:
            raise asyncio.CancelledError
        if self._state == _PENDING:
            raise asyncio.InvalidStateError("not woken yet")

    def exception(self) -> BaseException | None:
        self.result()
        return None

    def add_done_callback(
        self, fn: Callable[[Any], Any], *, context: contextvars.Context | None = None
    ) -> None:
        if self._state == _PENDING:
            self._callbacks.append((fn, context))
        else:
            self._loop.call_soon(fn, self, context=context)

    def remove_done_callback(self, fn: Callable[[Any], Any]) -> int:
        before = len(self._callbacks)
        self._callbacks = [(f, c) for f, c in self._callbacks if f != fn]
        return before - len(self._callbacks)

    def cancel(self, msg: Any = None) -> bool:
        if self._state != _PENDING:
            return False
        self._state = _CANCELLED
        self._schedule()
        return True

    def wake(self) -> None:
        """Mark done and resume the waiter: now if no task is running, else soon."""
        if self._state != _PENDING:
            return
        self._state = _DONE
        if asyncio.current_task(self._loop) is not None:  # inside a task: asyncio's way
            self._schedule()
            return
        callbacks, self._callbacks = self._callbacks, []
        for fn, context in callbacks:
            if context is None:
                fn(self)
            else:
                context.run(fn, self)

    def _schedule(self) -> None:
        callbacks, self._callbacks = self._callbacks, []
        for fn, context in callbacks:
            self._loop.call_soon(fn, self, context=context)


class EagerQueue(Generic[T]):
    """The part of ``asyncio.Queue`` that frame hand-offs use (``get``, ``put``,
    ``put_nowait``, ``get_nowait``, ``qsize``, ``empty``, ``full``), with the
    waiting reader resumed in ``put_nowait``'s stack (see the module)."""

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: collections.deque[T] = collections.deque()
        self._waiters: collections.deque[_Wake] = collections.deque()

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def put_nowait(self, item: T) -> None:
        if self.full():
            raise asyncio.QueueFull
        self._items.append(item)
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.wake()
                return

    async def put(self, item: T) -> None:
        """Unbounded use only (aiortc's decoder thread puts this way): never waits."""
        self.put_nowait(item)

    def get_nowait(self) -> T:
        if not self._items:
            raise asyncio.QueueEmpty
        return self._items.popleft()

    async def get(self) -> T:
        while not self._items:
            waiter = _Wake(asyncio.get_running_loop())
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                if self._items and not waiter.cancelled():  # woken, then cancelled: pass it on
                    self._wake_next()
                raise
        return self._items.popleft()

    def _wake_next(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter._loop.call_soon(waiter.wake)
                return


def frame_queue(maxsize: int = 0) -> EagerQueue[Any] | asyncio.Queue[Any]:
    """A queue for one frame hand-off: eager unless ``HELLO_TUI_EAGER_WAKE=0``."""
    return EagerQueue(maxsize) if eager_enabled() else asyncio.Queue(maxsize)
