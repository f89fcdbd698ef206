"""The History tab's table, fitted to its width: When, Who, Outcome and Length
always in view (at 60 columns too), the name cut with an ellipsis last.

The formats shorten in steps as the table narrows (the date, then the outcome
word), and the Who column takes what is left. Rows are drawn again when the
table's width changes (``on_resize``), from the records it was last shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from hello_tui.call.wording import mmss, outcome_words
from hello_tui.history.store import CallRecord
from hello_tui.tui.text import printable

# Outcomes as one short word (≤ 9 cells) for a narrow table; the rest as outcome_words.
SHORT_OUTCOMES = {
    "timeout": "no answer",
    "setup-timeout": "no answer",
    "unavailable": "away",
    "user-unknown": "no room",
    "answered-elsewhere": "elsewhere",
    "media-fail": "failed",
    "unreachable": "no server",
    "cancel": "cancelled",
    "rejected": "declined",
}
MIN_WHO = 12  # a layout is good enough when the name gets this many cells
HEADERS = ("When", "Who", "Outcome", "Length")


def short_outcome(outcome: str) -> str:
    return SHORT_OUTCOMES.get(outcome, outcome_words(outcome))


def when_full(ts: float, now: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def when_medium(ts: float, now: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%m-%d %H:%M")


def when_short(ts: float, now: float) -> str:
    """Today: the time; else the day (``28 Nov``)."""
    day, today = datetime.fromtimestamp(ts), datetime.fromtimestamp(now)
    return day.strftime("%H:%M" if day.date() == today.date() else "%d %b")


@dataclass(frozen=True)
class Layout:
    when: Callable[[float, float], str]
    outcome: Callable[[str], str]
    # a missed call not seen yet: a word, not only a colour ({} the outcome word)
    new: str = "● new {}"
    padding: int = 1  # DataTable cell padding on each side; 0: one blank cell before each


# From the roomiest to the narrowest; the first that leaves MIN_WHO for the name wins.
LAYOUTS = (
    Layout(when_full, outcome_words),
    Layout(when_medium, outcome_words),
    Layout(when_medium, short_outcome),
    Layout(when_short, short_outcome),
    Layout(when_short, short_outcome, new="● new", padding=0),  # 60 columns
)


@dataclass(frozen=True)
class Row:
    when: str
    who: Text
    outcome: Text
    length: str


def build_rows(records: Sequence[CallRecord], seen: float, layout: Layout, now: float) -> list[Row]:
    rows = []
    for rec in records:
        arrow = "→ " if rec.direction == "outgoing" else "← "
        # Text, not str: DataTable parses a str cell as markup, and peers are names.
        who = Text(arrow + ("room " if rec.room_url else "") + printable(rec.peer, 200))
        if rec.room_url:  # c / enter rejoins it
            who.stylize("dim", len(arrow), len(arrow) + 4)
        word = layout.outcome(rec.outcome)
        if rec.outcome == "missed" and rec.start > seen:
            outcome = Text(layout.new.format(word), "bold red")
        else:
            outcome = Text(word)
        rows.append(Row(layout.when(rec.start, now), who, outcome, mmss(rec.duration)))
    return rows


def fit(
    records: Sequence[CallRecord], seen: float, width: int, now: float
) -> tuple[Layout, list[Row], list[int]]:
    """The layout, rows and four column widths (cells, without padding) for a
    table ``width`` cells wide (the scrollbar already taken off)."""
    for layout in LAYOUTS:
        rows = build_rows(records, seen, layout, now)
        # padding 0: each column is one cell wider, that cell blank (see HistoryTable)
        extra = 1 if layout.padding == 0 else 0
        widths = [
            max([len(HEADERS[0]), *(len(r.when) for r in rows)]) + extra,
            0,
            max([len(HEADERS[2]), *(r.outcome.cell_len for r in rows)]) + extra,
            max([len(HEADERS[3]), *(len(r.length) for r in rows)]) + extra,
        ]
        who = width - 2 * layout.padding * len(HEADERS) - sum(widths) - extra
        if who >= MIN_WHO or layout is LAYOUTS[-1]:
            longest = max([len(HEADERS[1]), *(r.who.cell_len for r in rows)])
            widths[1] = max(3, min(who, longest)) + extra
            return layout, rows, widths
    raise AssertionError("unreachable")  # the last layout always returns


class HistoryTable(DataTable[Text | str]):
    """The call history, one row a call, fitted to the table's width."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.records: list[CallRecord] = []
        self.seen = 0.0
        self._fitted_to = -1  # the width the rows were last drawn for

    def show(self, records: Sequence[CallRecord], seen: float) -> None:
        """Draw ``records`` (newest first); missed calls after ``seen`` are marked new."""
        self.records, self.seen = list(records), seen
        self._draw()

    def on_resize(self, event: events.Resize) -> None:
        if self._room() != self._fitted_to:
            self._draw()

    def _room(self) -> int:
        # What the columns may take: the width less, when the rows are more than
        # the height shows, the vertical scrollbar.
        more = len(self.records) > self.size.height - 1  # (the header's line)
        scrollbar = self.styles.scrollbar_size_vertical if more else 0
        return self.size.width - scrollbar

    def _draw(self) -> None:
        room = self._room()
        self._fitted_to = room
        cursor = self.cursor_row
        layout, rows, widths = fit(self.records, self.seen, max(room, 0), time.time())
        gap = " " if layout.padding == 0 else ""  # the one blank cell before each column
        self.clear(columns=True)
        self.cell_padding = layout.padding
        for header, width in zip(HEADERS, widths, strict=True):
            self.add_column(gap + header, width=width)
        for row in rows:
            cells = [Text(gap) + cell for cell in (Text(row.when), row.who, row.outcome,
                                                   Text(row.length))]  # fmt: skip
            for cell in cells:  # the whole text kept in the cell, cut where drawn
                cell.no_wrap, cell.overflow = True, "ellipsis"
            self.add_row(*cells)
        if rows:
            self.move_cursor(row=min(max(cursor, 0), len(rows) - 1))
