"""The last call's notes in full (``n`` on the main screen): the strip above the
footer shows each on one line, cut with an ellipsis; here they wrap."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Static

from hello_tui.tui.text import plain


class CallNotes(ModalScreen[None]):
    """Every note of the call that ended, wrapped, newest last; escape closes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,n,q", "close", "Close")]

    def __init__(self, notes: list[str]) -> None:
        super().__init__()
        self.notes = list(notes)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="call-notes-view"):
            yield Label("Last call: notes", classes="title")
            with VerticalScroll(classes="form-body"):
                # One paragraph each; text from the call (device names, peers): never markup.
                yield Static(Content("\n").join(plain(f"• {n}") for n in self.notes),
                             id="call-notes-full")  # fmt: skip
        yield Footer(compact=True, show_command_palette=False)

    def action_close(self) -> None:
        self.dismiss(None)
