"""How long the cyclic garbage collector stops the server, per generation.

A collection runs inside whatever allocation triggered it, so its pause is
added to the message being handled: a tail-latency cause that no per-message
timer attributes. ``gc.callbacks`` brackets every collection; the pauses are
kept as a count, a sum and a maximum per generation and shown on /metrics
(``hello_gc_pause_seconds``). Two callbacks per collection (a few hundred a
second under load at most) cost nothing measurable.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GcPauses:
    """Pauses seen since :meth:`install`: per generation, [count, sum s, max s]."""

    by_generation: list[list[float]] = field(
        default_factory=lambda: [[0.0, 0.0, 0.0] for _ in range(3)]
    )
    _start: float = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            return
        pause = time.perf_counter() - self._start
        slot = self.by_generation[info["generation"]]
        slot[0] += 1
        slot[1] += pause
        if pause > slot[2]:
            slot[2] = pause

    def reset(self) -> None:
        self.by_generation = [[0.0, 0.0, 0.0] for _ in range(3)]

    def install(self) -> None:
        if self._callback not in gc.callbacks:
            gc.callbacks.append(self._callback)

    def uninstall(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)


ENV = "HELLO_GC"  # "default": leave the collector as Python sets it (for A/B runs)


def gc_tuning() -> None:
    """Once listening: collect once, then move every surviving object to the
    permanent generation (``gc.freeze``), so later full collections walk only
    what the running server allocated, not the ~10^5 objects of its imports
    and start-up. ``HELLO_GC=default`` leaves the collector alone."""
    if os.environ.get(ENV, "") == "default":
        return
    gc.collect()
    gc.freeze()


PAUSES = GcPauses()  # one per process: ``serve`` installs it
