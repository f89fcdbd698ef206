"""The speaker's latency, adapted: start low, reopen larger when the card keeps running dry.

A sound card's buffer ahead of PortAudio's callback is the trade-off between
mouth-to-ear delay and clicks: PortAudio's "low" (about 20 ms on ALSA) is
right on a quiet laptop, but on a loaded machine the callback is sometimes
30-80 ms late and every late callback is an underrun (a click, and a jump of
the echo path under the canceller). :class:`LatencyPolicy` watches the
card's underruns: more than ``underruns`` within ``window_s`` and it names the
next, larger latency of its ``ladder`` (the device watch then reopens the
speaker there, :meth:`~hello_tui.media.sinks.DeviceSink.switch`); at the top
of the ladder it stops. It never steps down: a machine that was loaded once
in a call is likely to be loaded again, and each reopen is a short gap.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["LADDER", "LatencyPolicy"]

# PortAudio's "low" (~22 ms on the ALSA pulse plugin), then 40 ms, then 80 ms (the cap). The
# 40 ms step (session 7): straight to 80 ms put 58 ms on the rest of a loaded call's
# mouth-to-ear (its card stage 94-103 ms in 6 of 12 directions); with the middle step the
# card stage stayed <= 47 ms and far-end dropouts were no worse (docs/benchmarks.md).
LADDER: tuple[str | float, ...] = ("low", 0.040, 0.080)
UNDERRUNS = 5  # this many card underruns ...
WINDOW_S = 10.0  # ... within this many seconds: one step up


class LatencyPolicy:
    """Pure decision: which latency to reopen the speaker at, if any."""

    def __init__(
        self,
        ladder: tuple[str | float, ...] = LADDER,
        underruns: int = UNDERRUNS,
        window_s: float = WINDOW_S,
    ) -> None:
        self.ladder = ladder
        self.underruns = underruns
        self.window_s = window_s
        self.step = 0
        self._since = float("-inf")  # underruns before the last step do not count again

    @property
    def latency(self) -> str | float:
        return self.ladder[self.step]

    def next_latency(self, underrun_times: Iterable[float], now: float) -> str | float | None:
        """The latency to reopen at (and take it as the current one), or None to stay.
        ``underrun_times``: ``time.monotonic()`` of the card's recent underruns."""
        if self.step + 1 >= len(self.ladder):
            return None
        start = max(now - self.window_s, self._since)
        if sum(1 for t in underrun_times if t > start) < self.underruns:
            return None
        self.step += 1
        self._since = now
        return self.ladder[self.step]
