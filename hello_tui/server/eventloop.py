"""The event loop ``hello-tui serve`` runs on: uvloop when it is installed.

uvloop (libuv, its transports in C) cuts the servers' CPU per call exchange
(docs/benchmarks.md, "uvloop in the server"). It is optional: without it,
or with ``--loop asyncio`` / ``HELLO_LOOP=asyncio``, the stdlib loop runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable

CHOICES = ("auto", "uvloop", "asyncio")
ENV = "HELLO_LOOP"


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
