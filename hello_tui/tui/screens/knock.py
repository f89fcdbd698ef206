"""Knock to enter, the owner's side: "Vic is knocking" with *Let in* / *Decline*.

Shown over the call screen of a room we own (the call's ``Knock`` event); the
choice goes to the server through the call (``admit`` / ``decline``). A knock
that ends meanwhile (the visitor gave up, timed out, another device answered)
closes its prompt. The visitor's name is their own words: shown as text.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from hello_tui.tui.text import plain


class KnockPrompt(ModalScreen[str]):
    """Dismissed with ``admit``, ``decline`` or ``gone`` (the knock ended elsewhere)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a,enter", "choose('admit')", "Let in"),
        Binding("x", "choose('decline')", "Decline"),
    ]

    def __init__(self, knock: Any) -> None:
        super().__init__()
        self.knock = knock  # the call's ev.Knock

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="knock"):
            yield Label("Someone is knocking at your room", classes="title")
            yield Label(plain(self.knock.name or "Someone (no name given)"), id="knock-visitor")
            with Horizontal(classes="buttons"):
                yield Button("Let in (a)", variant="success", id="admit")
                yield Button("Decline (x)", variant="error", id="decline")
            yield Static("a: let them in · x: decline", classes="hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#admit", Button).focus()
        self.app.bell()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "decline")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


def ask(screen: Any, call: Any, knock: Any) -> KnockPrompt:
    """Push the prompt for ``knock`` over ``screen``; the answer goes to the server."""
    from hello_tui.signaling.errors import SignalingClientError

    async def answer(choice: str) -> None:
        try:
            if choice == "admit":
                await call.admit(knock.knock)
            elif choice == "decline":
                await call.decline(knock.knock)
        except SignalingClientError as exc:  # already gone, or answered elsewhere
            screen.notify(f"Could not answer the knock: {exc}", severity="warning")

    def chosen(choice: str | None) -> None:
        if choice in ("admit", "decline"):
            screen.run_worker(answer(choice), group="knock", exit_on_error=False)

    prompt = KnockPrompt(knock)
    screen.app.push_screen(prompt, chosen)
    return prompt


def knock_over(prompt: KnockPrompt | None, knock_id: str) -> None:
    """The knock ``knock_id`` ended: its prompt (if still shown) closes."""
    if prompt is None or prompt.knock.knock != knock_id or not prompt.is_attached:
        return
    if prompt.app.screen is prompt:  # still shown (an answered one has gone already)
        prompt.dismiss("gone")
