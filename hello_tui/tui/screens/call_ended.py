"""After a call that did not connect, like Hello: Retry, or Share a link instead.

:class:`RetryOrShare` says what happened ("No answer from Bob") and offers
``r`` (call again) and ``l`` (make a room named for them and show its link);
the echo test gets Retry only (session/recovery.py decides). :class:`ShareLink`
shows the new room's URL as text and as a QR code drawn in half blocks (for a
phone to scan), says whether it went to the clipboard (OSC 52, where the
terminal allows), and offers to wait in the room (``j``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from hello_tui.tui.text import plain


class RetryOrShare(ModalScreen[str | None]):
    """Dismissed with ``retry``, ``share`` or None (dismissed)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r,enter", "choose('retry')", "Retry"),
        Binding("l", "choose('share')", "Share a link"),
        Binding("escape,d", "choose('')", "Dismiss"),
    ]

    def __init__(self, line: str, *, share: bool) -> None:
        super().__init__()
        self.line = line
        self.share = share

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="call-ended"):
            yield Label(plain(self.line), classes="title", id="call-ended-line")
            with Horizontal(classes="buttons"):
                yield Button("Retry (r)", variant="primary", id="retry")
                if self.share:
                    yield Button("Share a link (l)", variant="success", id="share")
                yield Button("Dismiss (esc)", id="dismiss")
            hint = "r: call again · esc: dismiss"
            if self.share:
                hint = "r: call again · l: make a room and send them its link · esc: dismiss"
            yield Static(hint, classes="hint", markup=False)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#retry", Button).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.share or parameters != ("share",)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose("" if event.button.id == "dismiss" else event.button.id or "")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)


class ShareLink(ModalScreen[str | None]):
    """A room's link to send: URL, QR code, clipboard. Dismissed with ``join``
    (wait in the room for them) or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "choose('join')", "Join the room"),
        Binding("c", "copy", "Copy again"),
        Binding("escape,enter", "choose('')", "Close"),
    ]

    def __init__(self, name: str, url: str, qr: list[str]) -> None:
        super().__init__()
        self.room_name = name
        self.url = url
        self.qr = qr

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="share-link"):
            yield Label(plain(f"Room “{self.room_name}”: send them this link"), classes="title")
            yield Static(plain(self.url), id="share-url")
            yield Static("", id="share-copied", classes="hint")
            yield Static("\n".join(self.qr), id="share-qr", markup=False)
            yield Static(
                "Scan it with a phone, or paste the link to them. j: wait in the room · "
                "c: copy again · esc: close",
                classes="hint",
                markup=False,
            )
        yield Footer(compact=True, show_command_palette=False)

    DEFAULT_CSS = """
    ShareLink #share-qr { width: auto; height: auto; color: white; background: black; }
    """

    def on_mount(self) -> None:
        self.action_copy()

    def action_copy(self) -> None:
        # OSC 52: terminals that allow it put the link on the clipboard; it is shown anyway.
        self.app.copy_to_clipboard(self.url)
        self.query_one("#share-copied", Static).update(
            "Copied to the clipboard (if the terminal allows it; else copy it from here)"
        )

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)


def offer_for(app: Any, ended: Any) -> Any:
    """The recovery offer for the app's last call (None: none)."""
    from hello_tui.session.recovery import recovery_for

    call, dial = app.last_call, getattr(app, "last_dial", None)
    if call is None or dial is None:
        return None
    return recovery_for(ended, outgoing=call.direction == "outgoing", room=call.is_room,
                        target=dial.to)  # fmt: skip
