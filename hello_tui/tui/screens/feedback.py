"""After a call: "How was your conversation?" (skippable in one key)."""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, SelectionList, Static

from hello_tui.tui.feedback import REASONS, Feedback
from hello_tui.tui.text import plain


def reason_prompt(label: str, picked: bool) -> Content:
    """A word-and-glyph state, readable without colour (NO_COLOR, TERM=linux)."""
    return plain(f"{'[x]' if picked else '[ ]'} {label}")


class FeedbackPrompt(ModalScreen[Feedback | None]):
    """``y`` happy, ``n`` sad (then pick reasons, enter sends), escape skips, ``q`` skips
    and quits."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "happy", "Happy"),
        Binding("n", "sad", "Sad"),
        Binding("escape", "skip", "Skip"),
        # The prompt follows a hang-up: a user leaving the app should not have to skip first.
        Binding("q", "skip_and_quit", "Skip & quit"),
        Binding("enter", "send", "Send", show=False, priority=True),
    ]

    def __init__(self, call_id: str = "", duration: float = 0.0, *, sent_to: str = "") -> None:
        super().__init__()
        self.call_id, self.duration = call_id, duration
        self.sent_to = sent_to  # the server it goes to; "" (embedded): kept on this device
        self.sad = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="feedback"):
            yield Label("How was your conversation?", classes="title")
            with Horizontal(classes="buttons", id="feedback-buttons"):
                yield Button("☺ Good (y)", variant="success", id="happy")
                yield Button("☹ Bad (n)", variant="error", id="sad")
                yield Button("Skip (esc)", id="skip")
            label = Static("What went wrong? (space: pick, enter: send)", id="reasons-label")
            reasons = SelectionList[str](
                *[(reason_prompt(label, False), key) for key, label in REASONS], id="reasons"
            )
            label.display = reasons.display = False  # shown after "sad"
            yield label
            yield reasons
            yield Static(self._where(), classes="hint", id="feedback-where")
        yield Footer(compact=True, show_command_palette=False)  # this dialog's keys

    def _where(self) -> str:
        if not self.sent_to:
            return "Optional. Kept on this device (the embedded server is sent nothing)."
        host = urlsplit(self.sent_to).netloc or self.sent_to
        return (
            f"Optional. Sent to {host}: the answer only, nothing about the call or you "
            "(Settings › What was sent shows it)."
        )

    @on(Button.Pressed, "#happy")
    def action_happy(self) -> None:
        if not self.sad:
            self.dismiss(Feedback(happy=True, call_id=self.call_id, duration=self.duration))

    @on(Button.Pressed, "#sad")
    def action_sad(self) -> None:
        if self.sad:
            return
        self.sad = True
        self.query_one("#feedback-buttons").display = False
        self.query_one("#reasons-label").display = True
        reasons = self.query_one("#reasons", SelectionList)
        reasons.display = True
        reasons.focus()

    @on(SelectionList.SelectedChanged, "#reasons")
    def _picked(self) -> None:
        reasons = self.query_one("#reasons", SelectionList)
        for index, (key, label) in enumerate(REASONS):
            reasons.replace_option_prompt_at_index(
                index, reason_prompt(label, key in reasons.selected)
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "send":
            return self.sad  # until "sad", enter presses the focused button
        return True

    def action_send(self) -> None:
        if not self.sad:
            return
        picked = tuple(self.query_one("#reasons", SelectionList).selected)
        self.dismiss(
            Feedback(happy=False, reasons=picked, call_id=self.call_id, duration=self.duration)
        )

    @on(Button.Pressed, "#skip")
    def action_skip(self) -> None:
        self.dismiss(None)

    async def action_skip_and_quit(self) -> None:
        """Nothing recorded, then the app's own quit (which still asks during a call)."""
        self.dismiss(None)
        await self.app.run_action("app.quit")
