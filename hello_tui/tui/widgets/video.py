"""Video in the terminal: a :class:`~hello_tui.media.video.FrameSink`'s latest
picture drawn with half-block cells (``▀``: the top pixel is the foreground
colour, the bottom pixel the background), sized to the widget, aspect kept.

The widget pulls from the sink at most ``max_fps`` times a second (10 by
default) and only when a new frame arrived, so frames the terminal cannot
take are simply skipped. Scaling (swscale) and building the cells run in a
thread; the event loop only swaps the finished lines in. Runs of identical
cells become one segment (colours are rounded to 6 bits a channel first,
invisible in a terminal), which keeps flat areas cheap to draw.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

__all__ = ["VideoView", "half_block_lines"]

_STYLE_CACHE_MAX = 8192
_styles: dict[int, Style] = {}


def _style(key: int) -> Style:
    style = _styles.get(key)
    if style is None:
        if len(_styles) > _STYLE_CACHE_MAX:
            _styles.clear()
        top, bottom = key >> 24, key & 0xFFFFFF
        style = Style(
            color=Color.from_rgb(top >> 16, top >> 8 & 255, top & 255),
            bgcolor=Color.from_rgb(bottom >> 16, bottom >> 8 & 255, bottom & 255),
        )
        _styles[key] = style
    return style


def half_block_lines(rgb: np.ndarray, width: int) -> list[Strip]:
    """One :class:`Strip` per pair of pixel rows of ``rgb`` ((h, w, 3) uint8),
    centred in ``width`` cells."""
    h, w = rgb.shape[:2]
    px = (rgb[: h // 2 * 2].astype(np.int64) & 0xFC) | 0x02  # 6 bits, mid-step
    packed = px[..., 0] << 16 | px[..., 1] << 8 | px[..., 2]
    keys = packed[0::2] << 24 | packed[1::2]
    left = max(0, (width - w) // 2)
    pad_left = [Segment(" " * left)] if left else []
    right = max(0, width - w - left)
    pad_right = [Segment(" " * right)] if right else []
    lines: list[Strip] = []
    for row in keys:
        edges = np.flatnonzero(np.diff(row)) + 1
        starts = [0, *edges.tolist()]
        ends = [*edges.tolist(), len(row)]
        runs = zip(starts, ends, strict=True)
        segments = [Segment("▀" * (b - a), _style(int(row[a]))) for a, b in runs]
        lines.append(Strip(pad_left + segments + pad_right, width))
    return lines


class VideoView(Widget):
    """A live picture from ``source()`` (a FrameSink, or None while there is none);
    ``placeholder()`` is the text shown when there is no picture to draw."""

    DEFAULT_CSS = """
    VideoView { width: 1fr; height: 1fr; background: $surface-darken-1; }
    """

    def __init__(
        self,
        source: Callable[[], Any],
        placeholder: Callable[[], str] = lambda: "no video",
        *,
        max_fps: float = 10.0,
        stale_after: float | None = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.placeholder = placeholder
        self.max_fps = max_fps
        self.stale_after = stale_after  # s without a new frame: show the placeholder
        self._lines: list[Strip] = []
        self._shown: tuple[int, int, int] | None = None  # (frame index, cols, rows)
        self._busy = False
        self._text = ""
        self.frames_drawn = 0  # pictures drawn (tests, benchmarks)

    def on_mount(self) -> None:
        self.set_interval(1.0 / self.max_fps, self._tick)

    def _tick(self) -> None:
        if self._busy:  # the last picture is still being drawn: skip this one
            return
        cols, rows = self.size.width, self.size.height
        sink = self.source()
        latest_index = sink.frames if sink is not None else 0
        fresh = sink is not None and sink.last_at is not None and latest_index > 0
        if fresh and self.stale_after is not None:
            fresh = time.monotonic() - sink.last_at <= self.stale_after
        text = "" if fresh else self.placeholder()
        if not fresh or text:
            if text != self._text or self._lines:
                self._text, self._lines, self._shown = text, [], None
                self.refresh()
            return
        if cols < 2 or rows < 1 or self._shown == (latest_index, cols, rows):
            return
        self._busy = True
        self.run_worker(self._draw(sink, cols, rows), group="video", exit_on_error=False)

    async def _draw(self, sink: Any, cols: int, rows: int) -> None:
        try:
            picture = await asyncio.to_thread(sink.latest, cols, rows * 2)
            if picture is None:
                return
            lines = await asyncio.to_thread(half_block_lines, picture.rgb, cols)
            top = max(0, (rows - len(lines)) // 2)
            self._lines = [Strip.blank(cols)] * top + lines
            self._shown = (picture.index, cols, rows)
            self._text = ""
            self.frames_drawn += 1
            self.refresh()
        finally:
            self._busy = False

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._lines:
            return self._lines[y] if y < len(self._lines) else Strip.blank(width)
        if self._text and y == self.size.height // 2:
            text = self._text[:width]
            pad = (width - len(text)) // 2
            return Strip([Segment(" " * pad + text, Style(dim=True))], width).extend_cell_length(
                width
            )
        return Strip.blank(width)

    @property
    def has_picture(self) -> bool:
        return bool(self._lines)

    def cells(self) -> list[str]:
        """The text of the drawn lines (tests)."""
        return [strip.text for strip in self._lines]
