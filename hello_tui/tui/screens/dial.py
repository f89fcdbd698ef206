"""The dial prompt (``o`` on the main screen): one line that takes an account
name, a contact (completed from the contacts: → accepts the suggestion), a room
URL or ``echo``. Its result is the text; the app resolves it (``tui/dial.py``).
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Static

from hello_tui.contacts.store import ContactStore
from hello_tui.tui.dial import MAX_DIAL, resolve, suggestions
from hello_tui.tui.screens.typeahead import TypeAheadDialog
from hello_tui.tui.text import plain


class DialPrompt(TypeAheadDialog[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, store: ContactStore, value: str = "") -> None:
        super().__init__(id="dial-prompt")
        self.store = store
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Call or open", classes="title")
            yield Static("an account name, a contact, a room URL, or echo", classes="hint")
            yield Input(
                self.value,
                placeholder="alice@example.org · Bob · https://…/r/…#k=… · echo",
                id="dial-input",
                max_length=MAX_DIAL,
                suggester=SuggestFromList(suggestions(self.store), case_sensitive=False),
            )
            yield Static("", id="dial-error", classes="hint")
            yield Static("enter: go   →: complete   esc: cancel", classes="hint")

    @on(Input.Submitted, "#dial-input")
    def _submit(self, event: Input.Submitted) -> None:
        try:
            resolve(event.value, self.store)
        except ValueError as exc:
            self.query_one("#dial-error", Static).update(plain(f"✕ {exc}"))
            return
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
