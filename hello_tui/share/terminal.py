"""A terminal screen (pyte) that both ends of a share keep, and what they send.

The sharer feeds its pty's output to a :class:`Terminal`; the viewer feeds
what it receives to its own. Both see the same bytes in the same order, so
both screens are equal. Three things keep that cheap and exact:

- **Chunks end on UTF-8 boundaries** (:func:`utf8_cut`): the decoder never
  holds half a character between two frames.
- **Floods of plain text are cut** (:meth:`Terminal.plain_cut`): in a run of
  printable ASCII, CR and LF, everything before the last ``rows`` lines ends
  up scrolled off the screen, so it is skipped and replaced by "cursor to the
  bottom-left" (``CSI rows;1 H``). A ``cat`` of 10 MB costs pyte a screenful
  per frame, not 10 MB (pyte parses some tens of KB a second).
- **Snapshots** (:meth:`Terminal.snapshot`): the whole screen as ANSI bytes
  (reset, cells with their colours, cursor, margins, modes) that turn a fresh
  terminal into this one: what a viewer that fell behind, or joined late, gets.
"""

from __future__ import annotations

import re

import pyte
from pyte import charsets, graphics
from pyte import modes as mo
from pyte.screens import Char

from hello_tui.share.limits import MAX_COLS, MAX_ROWS, utf8_cut

__all__ = ["MAX_COLS", "MAX_ROWS", "FastScreen", "Terminal", "utf8_cut"]

_PLAIN = re.compile(rb"[\x20-\x7e\t\r\n]*")
_RESET = b"\x1bc"  # RIS: pyte resets screen, modes, margins, charsets

# pyte's colour names back to SGR codes (its own tables: aixterm names included).
_FG = {name: str(code) for code, name in graphics.FG_ANSI.items()}
_FG.update({name: str(code) for code, name in graphics.FG_AIXTERM.items()})
_BG = {name: str(code) for code, name in graphics.BG_ANSI.items()}
_BG.update({name: str(code) for code, name in graphics.BG_AIXTERM.items()})
_FLAGS = (("bold", "1"), ("italics", "3"), ("underscore", "4"), ("blink", "5"),
          ("reverse", "7"), ("strikethrough", "9"))  # fmt: skip
# Modes a snapshot restores when they differ from a fresh screen's (DEC private ones shifted).
_MODES = (mo.IRM, mo.LNM, mo.DECOM, mo.DECAWM, mo.DECTCEM, mo.DECSCNM)


def _colour(name: str, table: dict[str, str], base: str) -> str:
    if name in table:
        return table[name]
    if len(name) == 6:  # pyte keeps 256-colour and true-colour cells as hex
        try:
            r, g, b = int(name[:2], 16), int(name[2:4], 16), int(name[4:], 16)
        except ValueError:
            return table["default"]
        return f"{base};2;{r};{g};{b}"
    return table["default"]


def _sgr(char: Char) -> str:
    parts = ["0"]
    parts += [code for flag, code in _FLAGS if getattr(char, flag)]
    if char.fg != "default":
        parts.append(_colour(char.fg, _FG, "38"))
    if char.bg != "default":
        parts.append(_colour(char.bg, _BG, "48"))
    return "\x1b[" + ";".join(parts) + "m"


class FastScreen(pyte.Screen):
    """pyte's screen with a fast path for the commonest text: printable ASCII in
    the default character set, autowrap on, insert mode off. pyte's ``draw``
    spends some microseconds a character (its width, the charset, the modes);
    this writes a row's worth of cells at once, with the same result (the
    tests compare the two). Anything else goes to pyte's own."""

    _cells: dict[Char, dict[str, Char]]

    def __init__(self, columns: int, lines: int) -> None:
        self._cells = {}
        super().__init__(columns, lines)

    def draw(self, data: str) -> None:
        mode = self.mode
        charset = self.g1_charset if self.charset else self.g0_charset
        if (
            not (data.isascii() and data.isprintable())
            or charset is not charsets.LAT1_MAP
            or mo.IRM in mode
            or mo.DECAWM not in mode
        ):
            super().draw(data)
            return
        cursor, cols, n, i = self.cursor, self.columns, len(data), 0
        attrs = cursor.attrs
        cells = self._cells.get(attrs)
        if cells is None:  # Chars are immutable: one per (character, attributes), shared
            if len(self._cells) > 256:
                self._cells.clear()
            cells = self._cells[attrs] = {}
        missing = [c for c in set(data) if c not in cells]
        for c in missing:
            cells[c] = attrs._replace(data=c)
        while i < n:
            if cursor.x >= cols:
                self.dirty.add(cursor.y)
                self.carriage_return()
                self.linefeed()
            take = min(n - i, cols - cursor.x)
            x = cursor.x
            self.buffer[cursor.y].update(
                zip(range(x, x + take), map(cells.__getitem__, data[i : i + take]), strict=True)
            )
            cursor.x += take
            i += take
        self.dirty.add(cursor.y)


class Terminal:
    """A ``cols`` x ``rows`` pyte screen fed with bytes."""

    def __init__(self, cols: int = 80, rows: int = 24) -> None:
        if not (1 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS):
            raise ValueError(f"a shared terminal is 1-{MAX_COLS} x 1-{MAX_ROWS}")
        self.cols, self.rows = cols, rows
        self.screen = FastScreen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)

    def feed(self, data: bytes) -> None:
        self.stream.feed(data)

    def reset(self) -> None:
        """A fresh screen and parser (before a snapshot is fed)."""
        self.screen.reset()
        self.stream = pyte.ByteStream(self.screen)

    @property
    def idle(self) -> bool:
        """The parser is between sequences (a snapshot describes the state exactly)."""
        return bool(self.stream._taking_plain_text) and self.stream.use_utf8

    def text(self) -> str:
        """The screen as text: one line a row, trailing blanks trimmed."""
        # Not pyte's ``display``: it fails on a lone wide-character tail cell.
        buffer, cols = self.screen.buffer, self.cols
        lines = ("".join(buffer[y][x].data for x in range(cols)) for y in range(self.rows))
        return "\n".join(line.rstrip() for line in lines)

    @property
    def cursor(self) -> tuple[int, int]:
        return self.screen.cursor.x, self.screen.cursor.y

    # ------------------------------------------------------------ floods
    def plain_cut(self, data: bytes) -> tuple[bytes, int]:
        """``(prefix, skip)``: feed ``prefix + data[skip:]`` instead of ``data``.

        Only when ``data`` starts with a run of plain text (printable ASCII,
        TAB, CR, LF) holding at least ``2 * rows`` line feeds, the parser is
        idle, and no scroll margins or origin mode are set: the first half's
        line feeds leave the cursor on the bottom row, the last ``rows`` ones
        scroll everything before them off. The cut falls just after a CR LF
        (the cursor is then in column 0) with ``rows`` line feeds after it."""
        screen = self.screen
        if not self.idle or screen.margins is not None or mo.DECOM in screen.mode:
            return b"", 0
        run = _PLAIN.match(data)
        end = run.end() if run else 0
        if data.count(b"\n", 0, end) < 2 * self.rows:
            return b"", 0
        cut = end
        for _ in range(self.rows + 1):
            cut = data.rfind(b"\n", 0, cut)
        # cut: the LF before the last `rows` ones; find one that follows a CR.
        while cut > 0 and data[cut - 1] != 0x0D:
            cut = data.rfind(b"\n", 0, cut)
        if cut <= 0 or data.count(b"\n", 0, cut + 1) < self.rows:
            return b"", 0
        return f"\x1b[{self.rows};1H".encode(), cut + 1

    # ------------------------------------------------------------ snapshots
    def snapshot(self, limit: int | None = None) -> bytes:
        """ANSI bytes that turn a fresh terminal of this size into this screen
        (cells and colours, cursor and its attributes, margins, modes; not the
        saved cursor, tab stops or charsets). Longer than ``limit`` (a huge
        screen changing colour every cell), the text alone, without colours."""
        data = self._snapshot(colour=True)
        if limit is not None and len(data) > limit:
            data = self._snapshot(colour=False)
        return data

    def _snapshot(self, *, colour: bool) -> bytes:
        screen = self.screen
        out = [_RESET.decode(), "\x1b[?7l"]  # no autowrap while painting the last column
        current = ""
        for y in range(self.rows):
            line = screen.buffer[y]
            out.append(f"\x1b[{y + 1};1H")
            last = max(
                (x for x, c in line.items() if x < self.cols and c != screen.default_char),
                default=-1,
            )
            for x in range(last + 1):
                char = line[x]
                if not char.data:  # the second cell of a wide character
                    continue
                sgr = _sgr(char) if colour else "\x1b[0m"
                if sgr != current:
                    out.append(sgr)
                    current = sgr
                out.append(char.data)
        if screen.margins is not None:
            out.append(f"\x1b[{screen.margins.top + 1};{screen.margins.bottom + 1}r")
        for mode in _MODES:
            private = mode >= 1 << 5
            code, prefix = (mode >> 5, "?") if private else (mode, "")
            if mode in screen.mode:
                out.append(f"\x1b[{prefix}{code}h")
            else:
                out.append(f"\x1b[{prefix}{code}l")
        cur = screen.cursor
        origin = screen.margins.top if screen.margins and mo.DECOM in screen.mode else 0
        row = cur.y - origin + 1
        if cur.x >= self.cols:
            # pyte's pending wrap (the cursor past the last column): redraw that cell.
            char = screen.buffer[cur.y][self.cols - 1]
            out.append(f"\x1b[{row};{self.cols}H{_sgr(char)}{char.data or ' '}")
        else:
            out.append(f"\x1b[{row};{min(cur.x, self.cols - 1) + 1}H")
        out.append(_sgr(cur.attrs))
        return "".join(out).encode("utf-8", "replace")
