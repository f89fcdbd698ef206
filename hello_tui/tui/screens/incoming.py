"""The incoming-call prompt, over whatever screen is open."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from hello_tui.tui.text import plain
from hello_tui.tui.widgets.identity import IdentityLine
from hello_tui.tui.widgets.photo import Photo

RING_EVERY = 2.0  # seconds between terminal bells (when there is no output device)


class IncomingCall(ModalScreen[str]):
    """Dismissed with ``accept``, ``video`` (accept with video), ``decline``, ``block``
    or ``gone`` (the caller hung up)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a,enter", "choose('accept')", "Accept"),
        Binding("v", "choose('video')", "Accept with video"),
        # h: the hang-up key of the call screen; escape declines nothing.
        Binding("h,d", "choose('decline')", "Decline"),
        Binding("b", "choose('block')", "Decline and block"),
    ]

    def __init__(self, call: Any, *, photo: bytes | None = None, bell: bool = False) -> None:
        super().__init__()
        self.call = call
        self.photo = photo
        self.bell = bell

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="incoming"):
            yield Label("Incoming call", classes="title")
            with Horizontal(id="incoming-who"):
                yield Photo(cols=10, rows=5, id="incoming-photo")
                yield Label(plain(self.call.peer or "anonymous"), id="incoming-peer")
            yield IdentityLine(id="incoming-identity")
            with Horizontal(classes="buttons"):
                yield Button("Accept (a)", variant="success", id="accept")
                yield Button("Video (v)", variant="primary", id="video")
                yield Button("Decline (h)", variant="error", id="decline")
                yield Button("Block (b)", id="block")
            yield Static(
                "v: accept with video ([video] source) · b: decline and block",
                classes="hint",
                markup=False,
            )
        yield Footer(compact=True, show_command_palette=False)  # this dialog's keys

    def on_mount(self) -> None:
        self.query_one("#incoming-photo", Photo).show(self.call.peer or "?", self.photo)
        self.query_one("#accept", Button).focus()
        identity = getattr(self.call, "identity", None)
        if identity is not None:  # known at ring time: the key differs from the pinned one
            self.query_one(IdentityLine).show(identity)
        if self.bell:
            self.app.bell()
            self.set_interval(RING_EVERY, self.app.bell)
        self.run_worker(self._watch_end(), exit_on_error=False)

    async def _watch_end(self) -> None:
        await self.call.wait_ended()
        if self.is_current or self in self.app.screen_stack:
            self.dismiss("gone")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "decline")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
