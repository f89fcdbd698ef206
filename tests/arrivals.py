"""A null sink that notes when each decoded audio frame arrives: the audio-gap
measure of the chat, sharing and flood tests and benchmarks (one copy)."""

from __future__ import annotations

import itertools
import math
import time
from typing import Any

from hello_tui.media.sinks import NullSink


class ArrivalSink(NullSink):
    """Counts nothing else: ``arrivals`` holds each frame's ``perf_counter``."""

    def __init__(self) -> None:
        super().__init__("null:")
        self.arrivals: list[float] = []

    def _consume(self, samples: Any) -> None:
        self.arrivals.append(time.perf_counter())

    def longest_gap_ms(self, start: float, end: float) -> float:
        """The longest time between two frames within [start, end], in ms (nan: none)."""
        times = [t for t in self.arrivals if start <= t <= end]
        return max((b - a for a, b in itertools.pairwise(times)), default=math.nan) * 1000
