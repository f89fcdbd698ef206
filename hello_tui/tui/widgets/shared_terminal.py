"""The call screen's view of a shared terminal (docs/sharing.md), and the banner
that says, always visible, that we let the other side type in ours.

:class:`SharePane` shows theirs while they share, else ours while we do (the
sharer sees what they share, and types in it). It looks at the call's
:class:`~hello_tui.share.session.ShareSession` :data:`POLL` times a second
and redraws the rows pyte marked dirty, so each frame shows: no per-frame
hook in the core, and a flood costs the view at most that many redraws.

Every cell is remote text: it goes into a :class:`rich.segment.Segment`,
never parsed as markup, and a cell that is not printable shows as ``?``.
Colours and bold/italic/underline/reverse/strike are kept (a style per
distinct cell attributes, cached). ``p`` freezes the view (the emulator goes
on underneath); a shared size larger than the pane scrolls (wheel,
scrollbars). A viewer's terminal keeps the lines that scrolled off its top
(:mod:`hello_tui.share.scrollback`): PageUp/PageDown (a page), shift+up/down
(a line) move into them, and the view stays on the same lines while new
ones arrive, until End (or PageDown to the bottom) returns to the live
screen. ``y`` copies what is shown (scrolled back or not), ``Y`` a range of
lines of the history and screen. While :class:`SharedTerminal` has focus (``i``) keys and pastes
are typed into the shared terminal (:meth:`ShareSession.send_input`: ours,
or theirs once they granted control); escape gives the keys back to the call.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.color import Color, ColorParseError
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Label

from hello_tui.util.display import printable

POLL = 20  # looks at the shared screen a second (the sharer sends at most 30 frames)
STYLES_KEPT = 512  # distinct cell attributes whose Style is cached

BANNER = "CONTROL GRANTED: they can type in your terminal · g revokes"

# Keys without a character of their own, as an xterm sends them.
KEY_BYTES = {
    "enter": "\r", "tab": "\t", "backspace": "\x7f", "delete": "\x1b[3~",
    "up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D",
    "home": "\x1b[H", "end": "\x1b[F", "pageup": "\x1b[5~", "pagedown": "\x1b[6~",
    "insert": "\x1b[2~", "shift+tab": "\x1b[Z",
    "f1": "\x1bOP", "f2": "\x1bOQ", "f3": "\x1bOR", "f4": "\x1bOS", "f5": "\x1b[15~",
    "f6": "\x1b[17~", "f7": "\x1b[18~", "f8": "\x1b[19~", "f9": "\x1b[20~",
    "f10": "\x1b[21~", "f11": "\x1b[23~", "f12": "\x1b[24~",
}  # fmt: skip


def _ctrl(key: str) -> str:
    """``ctrl+c`` as ``\\x03`` (not every driver gives the key its character)."""
    if len(key) == 6 and key.startswith("ctrl+") and "a" <= key[5] <= "z":
        return chr(ord(key[5]) - 96)
    return ""


def _colour(name: str) -> Color | None:
    """pyte's colour name (``red``, ``brightred``, ``brown``, or ``rrggbb``) as Rich's."""
    if name == "default":
        return None
    if len(name) == 6 and all(c in "0123456789abcdefABCDEF" for c in name):
        return Color.parse(f"#{name}")
    bright = name.startswith(("bright", "bfight"))  # pyte's own table misspells one
    base = name[6:] if bright else name
    base = "yellow" if base == "brown" else base
    try:
        return Color.parse(f"bright_{base}" if bright else base)
    except ColorParseError:
        return None


def cell_style(char: Any, cache: dict[Any, Style]) -> Style:
    key = (char.fg, char.bg, char.bold, char.italics, char.underscore,
           char.strikethrough, char.reverse)  # fmt: skip
    style = cache.get(key)
    if style is None:
        if len(cache) >= STYLES_KEPT:
            cache.clear()
        style = cache[key] = Style(
            color=_colour(char.fg), bgcolor=_colour(char.bg), bold=char.bold or None,
            italic=char.italics or None, underline=char.underscore or None,
            strike=char.strikethrough or None, reverse=char.reverse or None,
        )  # fmt: skip
    return style


def row_strip(buffer_row: Any, cols: int, cache: dict[Any, Style], cursor: int = -1) -> Strip:
    """One row of a pyte screen: runs of equally styled cells, literal text only."""
    segments: list[Segment] = []
    run: list[str] = []
    run_style: Style | None = None
    for x in range(cols):
        char = buffer_row[x]
        data = char.data
        if not data:  # the second cell of a wide character
            continue
        if not data.isprintable():
            data = "?"
        style = cell_style(char, cache)
        if x == cursor:
            style = style + Style(reverse=not char.reverse)
        if style is not run_style and run:
            segments.append(Segment("".join(run), run_style))
            run = []
        run_style = style
        run.append(data)
    if run:
        segments.append(Segment("".join(run), run_style))
    return Strip(segments).adjust_cell_length(cols)


class SharedTerminal(ScrollView, can_focus=False):
    """A shared terminal's screen, as the last poll saw it (or as it was when paused).
    Focusable only while typing (:meth:`SharePane.type_in`): the screen's first
    focus, or tab, must not send the call's keys to a shared program."""

    DEFAULT_CSS = """
    SharedTerminal { height: 1fr; scrollbar-size: 1 1; background: $surface-darken-1; }
    SharedTerminal:focus { background-tint: $accent 8%; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.terminal: Any = None
        self.paused = False
        self.lines: list[Strip] = []  # the rows shown, full width
        self.texts: list[str] = []  # ... and as plain text (copy)
        self._styles: dict[Any, Style] = {}
        self._cursor: tuple[int, int] = (-1, -1)
        self.back = 0  # lines scrolled back into the history (0: the live screen)
        self._scrolled = 0  # the screen's count of lines pushed off its top, last look
        self._redraw = False

    def show(self, terminal: Any) -> None:
        """Follow ``terminal`` (a :class:`~hello_tui.share.terminal.Terminal`, or None)."""
        if terminal is not self.terminal:
            self.terminal = terminal
            self.lines, self.texts = [], []
            self.back = 0
            if terminal is not None:
                terminal.screen.dirty.update(range(terminal.rows))
                self.virtual_size = Size(terminal.cols, terminal.rows)
                self._scrolled = getattr(terminal.screen, "scrolled", 0)
        self.update()

    @property
    def history(self) -> Any:
        """The lines above the screen (a viewer's terminal keeps them; ours does not)."""
        return getattr(self.terminal, "history", ())

    def scroll_back(self, lines: int) -> int:
        """Move ``lines`` back into the history (negative: towards the live screen);
        the number of lines now scrolled back."""
        self.back = max(0, min(len(self.history), self.back + lines))
        self.paused = False  # scrolled back, the view stays on its lines anyway
        self._redraw = True
        self.update()
        return self.back

    def update(self) -> None:
        """Redraw the rows that changed since the last look (nothing while paused)."""
        term = self.terminal
        if term is None or self.paused:
            return
        screen = term.screen
        scrolled = getattr(screen, "scrolled", 0)
        if self.back:  # keep showing the same lines while new ones push the old up
            self.back = min(len(self.history), self.back + scrolled - self._scrolled)
        moved, self._scrolled = scrolled != self._scrolled, scrolled
        if self.back or self._redraw:
            if self._redraw or moved or screen.dirty:  # else nothing shown has changed
                self._redraw = False
                self._window(term)  # at live: once, then only the rows that change
            return
        cur = screen.cursor
        cursor = (cur.x, cur.y) if not cur.hidden else (-1, -1)
        dirty = set(screen.dirty)
        if cursor != self._cursor:
            dirty.update(y for _, y in (cursor, self._cursor) if y >= 0)
            self._cursor = cursor
        if len(self.lines) != term.rows:
            self.lines = [Strip.blank(term.cols)] * term.rows
            self.texts = [""] * term.rows
            dirty = set(range(term.rows))
        screen.dirty.clear()
        if not dirty:
            return
        for y in dirty:
            if 0 <= y < term.rows:
                row = screen.buffer[y]
                x = cursor[0] if cursor[1] == y and self.has_focus else -1
                self.lines[y] = row_strip(row, term.cols, self._styles, x)
                self.texts[y] = "".join(row[i].data for i in range(term.cols)).rstrip()
        self.refresh()

    def _window(self, term: Any) -> None:
        """Draw ``rows`` lines ending ``back`` lines above the live screen's bottom."""
        screen, history, cols = term.screen, self.history, term.cols
        screen.dirty.clear()
        self._cursor = (-2, -2)  # the next live draw redraws the cursor's row
        start = len(history) - self.back
        rows = [
            history[i] if i < len(history) else screen.buffer[i - len(history)]
            for i in range(start, start + term.rows)
        ]
        self.lines = [row_strip(row, cols, self._styles) for row in rows]
        self.texts = ["".join(row[x].data for x in range(cols)).rstrip() for row in rows]
        if not self.back:
            screen.dirty.update(range(term.rows))
        self.refresh()

    def text(self) -> str:
        """What is shown, as text: one line a row, trailing blanks trimmed."""
        return "\n".join(printable(line) for line in self.texts).rstrip("\n")

    def lines_text(self, first: int, last: int) -> str:
        """Lines ``first`` to ``last`` (1-based, inclusive) of the history and screen
        together (history first), as text."""
        term = self.terminal
        if term is None:
            return ""
        rows = [*self.history, *(term.screen.buffer[y] for y in range(term.rows))]
        cols = term.cols
        picked = rows[max(0, first - 1) : max(0, last)]
        texts = ("".join(row[x].data for x in range(cols)).rstrip() for row in picked)
        return "\n".join(printable(line) for line in texts).rstrip("\n")

    def line_count(self) -> int:
        """Lines in the history and the screen together."""
        return len(self.history) + (self.terminal.rows if self.terminal is not None else 0)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        width = self.scrollable_content_region.width
        if row >= len(self.lines):
            return Strip.blank(width, self.rich_style)
        return self.lines[row].crop(scroll_x, scroll_x + width).extend_cell_length(width)

    # ------------------------------------------------------------ typing
    def on_focus(self) -> None:
        self._cursor = (-2, -2)  # the cursor cell is drawn only while keys come here
        self.update()

    def on_blur(self) -> None:
        self.can_focus = False
        self._cursor = (-2, -2)
        self.update()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape":
            return  # the pane's binding: keys go back to the call
        data = KEY_BYTES.get(event.key) or _ctrl(event.key) or event.character
        if not data:
            return
        event.stop()
        event.prevent_default()
        self._send(data)

    def on_paste(self, event: events.Paste) -> None:
        event.stop()
        from hello_tui.share.wire import MAX_INPUT_CHARS

        text = event.text.replace("\r\n", "\r").replace("\n", "\r")
        for pos in range(0, len(text), MAX_INPUT_CHARS):
            if not self._send(text[pos : pos + MAX_INPUT_CHARS]):
                break

    def _send(self, data: str) -> bool:
        pane = self.parent
        share = getattr(getattr(pane, "call", None), "share", None)
        if share is None:
            return False
        from hello_tui.share.wire import ShareError

        try:
            share.send_input(data)
        except ShareError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            self.screen.set_focus(None)
            return False
        return True


class SharePane(Vertical):
    """A title line and the :class:`SharedTerminal`; shown while a terminal is shared
    (the screen's ``-share`` class lets it take the quality panel's place)."""

    SCOPED_CSS = False
    DEFAULT_CSS = """
    SharePane { display: none; height: 1fr; min-height: 5; margin: 0 1; }
    SharePane.-open { display: block; }
    SharePane #share-title { height: 1; color: $accent; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Leave the terminal", show=False),
    ]

    def __init__(self, call: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.call = call
        self.side = ""  # "remote" (theirs), "local" (ours) or "" (nothing shared)
        self.titles = {"local": "", "remote": ""}  # what each side named its share

    def compose(self) -> ComposeResult:
        yield Label("", id="share-title", markup=False)
        yield SharedTerminal(id="share-view")

    def on_mount(self) -> None:
        self.set_interval(1 / POLL, self.poll)

    @property
    def view(self) -> SharedTerminal:
        return self.query_one(SharedTerminal)

    @property
    def share(self) -> Any:
        return getattr(self.call, "share", None)

    def poll(self) -> None:
        """Follow what is shared: theirs first, else ours; hidden when nothing is."""
        share = self.share
        remote = getattr(share, "remote", None)
        local = getattr(share, "local", None)
        terminal = remote if remote is not None else local
        side = "remote" if remote is not None else "local" if local is not None else ""
        if side != self.side or terminal is not self.view.terminal:
            self.side = side
            self.set_class(bool(side), "-open")
            self.screen.set_class(bool(side), "-share")
            if not side and self.view.has_focus:
                self.screen.set_focus(None)
            self.view.paused = False
        self.view.show(terminal)
        self._title()
        self.banner()

    def _title(self) -> None:
        share, view = self.share, self.view
        if not self.side or view.terminal is None:
            return
        size = f"{view.terminal.cols}x{view.terminal.rows}"
        if self.side == "remote":
            title = printable(self.titles["remote"], 40)
            control = "you may type (i)" if share.control else "read-only"
            head = f"They share: {title} ({size}) · {control}"
        else:
            head = f"You share: {printable(self.titles['local'], 40)} ({size}) · i: type"
        tail = " · PAUSED (p)" if view.paused else ""
        if view.back:
            tail += f" · scrolled back {view.back} lines (End: live)"
        label = self.query_one("#share-title", Label)
        line = f"{head}{tail} · y: copy"
        if str(label.content) != line:
            label.update(line)

    def on_share(self, event: Any) -> None:
        """A share-* event of the call: keep the title, look at once."""
        if event.kind == "share-started":
            self.titles[event.side] = event.title
        self.poll()

    def banner(self) -> None:
        """The always-visible line while the other side may type in ours."""
        granted = bool(getattr(self.share, "granted", False))
        for banner in self.screen.query("#share-banner"):
            banner.display = granted

    def toggle_pause(self) -> None:
        view = self.view
        view.paused = not view.paused
        view.update()
        self._title()

    def type_in(self) -> str:
        """Focus the view (keys go to the shared terminal); a reason when not possible."""
        share = self.share
        if not self.side:
            return "nothing is shared"
        if self.side == "remote" and not getattr(share, "control", False):
            return "their terminal is read-only: they have not given you control"
        self.view.can_focus = True
        # Now, not Widget.focus()'s call_later: keys already queued behind this one
        # (a paste, a script, a fast typist) went to the call screen and were lost.
        self.screen.set_focus(self.view)
        return ""

    def action_leave(self) -> None:
        self.screen.set_focus(None)
