"""The event loop ``hello-tui serve`` runs on: uvloop when it is installed.

uvloop (libuv, its transports in C) cuts the servers' CPU per call exchange
(docs/benchmarks.md, "uvloop in the server"). It is optional: without it,
or with ``--loop asyncio`` / ``HELLO_LOOP=asyncio``, the stdlib loop runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

CHOICES = ("auto", "uvloop", "asyncio")
ENV = "HELLO_LOOP"
TASK_CHOICES = ("auto", "eager", "lazy")
TASKS_ENV = "HELLO_TASKS"


class LoopUnavailable(ValueError):
    """``uvloop`` was asked for and is not installed."""


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for ``asyncio.Runner`` (None: the stdlib loop).

    ``auto`` takes uvloop when importable, ``uvloop`` insists on it,
    ``asyncio`` never uses it."""
    if choice not in CHOICES:
        raise ValueError(f"event loop {choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "asyncio":
        return None
    if importlib.util.find_spec("uvloop") is None:
        if choice == "uvloop":
            raise LoopUnavailable("uvloop is not installed: pip install 'hello-tui[server]'")
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop`` or ``asyncio``: what a running loop is, for the log and /metrics."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def _eager_task(
    loop: asyncio.AbstractEventLoop,
    coro: Any,
    *,
    name: str | None = None,
    context: Any = None,
    eager_start: bool | None = None,
) -> asyncio.Task[Any]:
    """``asyncio.eager_task_factory``, taking ``eager_start`` too: uvloop on
    Python >= 3.13 hands every factory that keyword, which the stdlib's own
    eager factory of 3.12-3.13 refuses (every task would fail to start)."""
    return asyncio.Task(  # type: ignore[call-arg]
        coro,
        loop=loop,
        name=name,
        context=context,
        eager_start=True if eager_start is None else eager_start,
    )


def task_factory(choice: str) -> Any | None:
    """The task factory ``serve`` sets on its loop (None: the loop's own).

    ``auto`` and ``eager`` run each task eagerly (Python >= 3.12): inside
    ``create_task``, up to its first real wait, instead of one loop turn
    later; ``lazy`` keeps the usual tasks. On 3.11 ``auto`` is lazy and
    ``eager`` an error."""
    if choice not in TASK_CHOICES:
        raise ValueError(f"tasks {choice!r}: expected one of {', '.join(TASK_CHOICES)}")
    available = sys.version_info >= (3, 12)
    if choice == "lazy" or (choice == "auto" and not available):
        return None
    if not available:
        raise LoopUnavailable("eager tasks need Python 3.12 or later")
    return _eager_task


def tasks_name(loop: asyncio.AbstractEventLoop) -> str:
    """``eager`` or ``lazy``: the tasks a running loop makes, for the log."""
    return "eager" if loop.get_task_factory() is _eager_task else "lazy"
