"""The key help (``?``) and the terminal-too-small screen.

The help lists what the screen below would do with each key: its public
``active_bindings`` (focused widget, screen, app; minus what ``check_action``
hides), never a hand-kept list, so it cannot drift from the code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.geometry import Size
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Label, Static

from hello_tui.tui.text import plain

MIN_WIDTH, MIN_HEIGHT = 60, 20  # the smallest terminal every screen is laid out for

# Keys every screen has that say nothing to a user (focus moves, copy, the app's own).
HIDDEN_ACTIONS = {"app.focus_next", "app.focus_previous", "screen.copy_text", "help_quit"}


def key_rows(screen: Screen[Any]) -> list[tuple[str, str]]:
    """(keys, what) for every described binding active on ``screen``: the
    screen's own first, then the app's, then the focused widget's (moving in a
    list); the keys of one action are joined (``h / d``)."""
    rows: dict[tuple[int, str], tuple[list[str], str]] = {}
    order = {screen: 0, screen.app: 1}
    active = sorted(screen.active_bindings.values(), key=lambda a: order.get(a.node, 2))
    for node, binding, _enabled, _tooltip in active:
        if binding.action in HIDDEN_ACTIONS or binding.system or not binding.description:
            continue
        keys, _ = rows.setdefault((id(node), binding.action), ([], binding.description))
        keys.append(screen.app.get_key_display(binding))
    return [(" / ".join(keys), what) for keys, what in rows.values()]


class KeysHelp(ModalScreen[None]):
    """Every key of the screen it was opened over; escape, ``?`` or ``q`` closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def __init__(self, title: str, rows: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.rows = title, rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="keys-help"):
            yield Label(plain(f"Keys: {self.title_text}"), classes="title")
            yield DataTable(id="keys-table", cursor_type="row", show_header=False)
            yield Static(
                "ctrl+p: every command · escape closes only what is on top; h hangs up a call",
                classes="hint",
                markup=False,
            )
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "what")
        for keys, what in self.rows:
            table.add_row(Text(keys), Text(what))  # Text: measured (and never markup)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)


class TooSmall(Static):
    """Laid over the current screen (not pushed: a screen below that dismisses
    itself would pop this one instead) while the terminal is below the minimum."""

    DEFAULT_CSS = """
    TooSmall {
        overlay: screen;
        position: absolute;
        offset: 0 0;
        width: 100%;
        height: 100%;
        content-align: center middle;
        text-align: center;
        background: $error-darken-3;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(self) -> None:
        super().__init__(
            f"Enlarge the terminal to at least {MIN_WIDTH}×{MIN_HEIGHT}\n(ctrl+q quits)",
            markup=False,
        )


def fit_notice(screen: Screen[Any], size: Size) -> None:
    """Show or remove the too-small notice on ``screen`` for a terminal of ``size``."""
    small = size.width < MIN_WIDTH or size.height < MIN_HEIGHT
    shown = screen.query(TooSmall)
    if small and not shown:
        screen.mount(TooSmall())
    elif shown and not small:
        shown.remove()
