"""The viewer's terminal: the shared screen plus the lines that scrolled off its top.

Only the viewer keeps a history (the sharer's terminal stays as it is): each
line that a line feed at the bottom pushes off the top of a screen without a
top margin goes into a bounded ring (:data:`HISTORY_LINES`, and at most
:data:`HISTORY_CELLS` cells: a 400-column screen keeps fewer lines). The
rows are pyte's own, moved out of the screen as they were, never copied or
changed afterwards. A snapshot (resync) resets the screen, not the history.
What the sharer cut from a flood (``Terminal.plain_cut``: lines that
scrolled away before they were sent) never reaches the viewer, so it is not
in the history either; nor is what a full-screen program scrolls inside
margins (pyte has no alternate screen).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pyte
from pyte.screens import Margins

from hello_tui.share.terminal import FastScreen, Terminal

__all__ = ["HISTORY_CELLS", "HISTORY_LINES", "HistoryScreen", "ViewTerminal"]

HISTORY_LINES = 1000  # lines kept above the screen at most
HISTORY_CELLS = 100_000  # ... and cells (lines x columns): a bound whatever the width


class HistoryScreen(FastScreen):
    """:class:`FastScreen` keeping the rows that scroll off its top in ``history``."""

    def __init__(self, columns: int, lines: int, keep: int) -> None:
        self.history: deque[Any] = deque(maxlen=keep)
        self.scrolled = 0  # lines ever pushed off the top (the view keeps its place by it)
        super().__init__(columns, lines)

    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if top == 0 and self.cursor.y == bottom and self.history.maxlen:
            self.history.append(self.buffer[0])  # pyte replaces the row; it is not reused
            self.scrolled += 1
        super().index()


class ViewTerminal(Terminal):
    """A :class:`Terminal` whose screen keeps a bounded history."""

    screen: HistoryScreen

    def __init__(self, cols: int = 80, rows: int = 24, history: int = HISTORY_LINES) -> None:
        super().__init__(cols, rows)
        keep = max(0, min(history, HISTORY_CELLS // cols))
        self.screen = HistoryScreen(cols, rows, keep)
        self.stream = pyte.ByteStream(self.screen)

    @property
    def history(self) -> deque[Any]:
        return self.screen.history

    def row_text(self, row: Any) -> str:
        return "".join(row[x].data for x in range(self.cols)).rstrip()

    def all_text(self) -> list[str]:
        """The history then the screen, one string a line, trailing blanks trimmed."""
        return [self.row_text(row) for row in self.history] + self.text().split("\n")
