"""A call's quality samples: one collector task while the call is connected.

:class:`QualityWatch` is owned by a :class:`~hello_tui.call.call.Call`: started
when media connects, stopped when the call ends (no sample after that). Each
sample is kept in ``samples`` (exactly those the call emits as
:class:`~hello_tui.call.events.Quality`) and handed to the ``on_sample``
callback. Sampling never breaks a call: stats are a window on it, not part of it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from hello_tui.quality.collector import QualityCollector
from hello_tui.quality.sample import QualitySample

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

    from hello_tui.call.media_policy import CallMedia

__all__ = ["QualityWatch"]

log = logging.getLogger("hello_tui.call.engine")  # the name the log files have always shown


class QualityWatch:
    """Samples one call's quality every ``interval`` seconds once started."""

    def __init__(self, on_sample: Callable[[QualitySample], None]) -> None:
        self.samples: list[QualitySample] = []
        self._on_sample = on_sample
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._started_at: float | None = None  # monotonic: when sampling began (t = 0)

    def start(
        self, pc: RTCPeerConnection, media: CallMedia, interval: float, *, video: bool, cid: str
    ) -> None:
        """Begin sampling ``pc`` (once per call; ``cid`` names the call in the log)."""
        if self._task is None and not self._stopped:
            self._task = asyncio.get_running_loop().create_task(
                self._collect(pc, media, interval, video, cid)
            )

    def move_to(
        self, pc: RTCPeerConnection, media: CallMedia, interval: float, *, video: bool, cid: str
    ) -> None:
        """The call renewed its transport: sample ``pc`` from now on (``t`` still
        counts from when the call connected; the samples so far are kept)."""
        if self._stopped or self._task is None:
            return
        self._task.cancel()
        self._task = asyncio.get_running_loop().create_task(
            self._collect(pc, media, interval, video, cid)
        )

    def stop(self) -> None:
        """No sample after this point."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    async def _collect(
        self, pc: RTCPeerConnection, media: CallMedia, interval: float, video: bool, cid: str
    ) -> None:
        sink, metered = media.sink, media.metered
        if self._started_at is None:
            self._started_at = time.monotonic()
        collector = QualityCollector(
            pc,
            sink.stats if sink is not None else None,
            metered.level if metered is not None else None,
            video=media.video_reading if video else None,
            started_at=self._started_at,
        )
        try:
            async for sample in collector.run(interval):
                if self._stopped:
                    return
                self.samples.append(sample)
                self._on_sample(sample)
        except asyncio.CancelledError:
            raise
        except Exception:  # stats are a window on the call, not part of it
            log.warning("call %s: quality sampling stopped", cid[:6], exc_info=True)
