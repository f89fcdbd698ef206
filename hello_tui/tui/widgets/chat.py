"""The call screen's chat pane, and the unread badge shown while it is closed.

:class:`ChatPane` follows the call's events itself (``follow_call``, the one
adapter, aimed at the pane) and keeps one line per chat message, plus "X
joined" / "X left" in a room (the display name the other side gave). Every
line is someone's text: escaped (:func:`printable`: no ESC, no newline
obeyed) and shown as a literal ``Text`` in a :class:`RichLog` (markup off). An Input sends
(``call.send_chat``; a refusal is one notice line); ``escape`` closes the pane.
While closed, each received message counts in the :class:`ChatBadge`.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import var
from textual.widgets import Input, Label, RichLog

from hello_tui.call.chat import MAX_CHARS
from hello_tui.tui.messages import CallEventMessage, follow_call
from hello_tui.util.display import printable

LINES_KEPT = 500  # shown in the pane; the call's whole chat stays in Call.chat_log


def chat_line(event: Any, *, room: bool = False, peer_name: str = "") -> str | None:
    """The pane's line for a call event, None for an event it does not show."""
    from hello_tui.call import events as ev

    stamp = time.strftime("%H:%M", time.localtime(event.t))
    match event:
        case ev.ChatMessage():
            return f"{stamp} {event.line()}"
        case ev.PeerName(name=name):
            return f"{stamp} — {printable(name, 40)} joined"
        case ev.Ended(stage="connected") if room:
            return f"{stamp} — {printable(peer_name, 40) or 'they'} left"
    return None


class ChatBadge(Label):
    """``chat: N new (c)`` while the pane is closed and messages came; else empty."""

    DEFAULT_CSS = """
    ChatBadge { height: 1; color: $accent; text-style: bold; }
    ChatBadge.-empty { display: none; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, classes="-empty", **kwargs)

    def show(self, unread: int) -> None:
        self.update(f"💬 chat: {unread} new (c)" if unread else "")
        self.set_class(not unread, "-empty")


class ChatPane(Vertical):
    """The chat of one call; hidden until :meth:`toggle` opens it."""

    SCOPED_CSS = False  # one rule depends on the screen's class (a video call)
    DEFAULT_CSS = """
    ChatPane { display: none; height: 1fr; min-height: 6; margin: 0 1;
               border-top: solid $accent; }
    ChatPane.-open { display: block; }
    CallScreen.-video ChatPane { height: 8; }
    ChatPane #chat-log { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    ChatPane #chat-input { height: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close chat", show=False),
    ]

    unread: var[int] = var(0, init=False)

    def __init__(self, call: Any, *, follow: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.call = call
        self.follow = follow
        self.lines: list[str] = []  # as shown, oldest first

    def compose(self) -> ComposeResult:
        yield RichLog(id="chat-log", max_lines=LINES_KEPT, wrap=True, markup=False, highlight=False)
        yield Input(
            placeholder="Message (enter: send · esc: close)",
            max_length=MAX_CHARS,
            compact=True,
            id="chat-input",
        )

    def on_mount(self) -> None:
        if self.follow and self.call is not None:
            self.run_worker(follow_call(self.call, self), group="chat-events", exit_on_error=False)

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def toggle(self) -> None:
        self.close() if self.is_open else self.open()

    def open(self) -> None:
        """Show the pane (the screen's ``-chat`` class lets it take room) and focus the Input."""
        self.add_class("-open")
        self.screen.add_class("-chat")
        self.unread = 0
        self.query_one("#chat-input", Input).focus()

    def close(self) -> None:
        self.remove_class("-open")
        self.screen.remove_class("-chat")
        self.screen.set_focus(None)

    def action_close(self) -> None:
        self.close()

    def watch_unread(self, unread: int) -> None:
        for badge in self.screen.query(ChatBadge):
            badge.show(unread)

    @on(CallEventMessage)
    def _event(self, message: CallEventMessage) -> None:
        message.stop()
        self.add(message.event)

    def add(self, event: Any) -> None:
        """Show ``event``'s line, if it has one; a received message counts as
        unread while the pane is closed."""
        call = self.call
        room = bool(getattr(call, "is_room", False))
        line = chat_line(event, room=room, peer_name=getattr(call, "peer_name", "") or "")
        if line is None:
            return
        self.lines.append(line)
        self.query_one("#chat-log", RichLog).write(Text(line))  # Text(str): never parsed
        if getattr(event, "sender", "") == "remote" and not self.is_open:
            self.unread += 1

    @on(Input.Submitted, "#chat-input")
    def _send(self, message: Input.Submitted) -> None:
        message.stop()
        text = message.value
        if not text.strip() or self.call is None:
            return
        try:
            self.call.send_chat(text)
        except (RuntimeError, ValueError) as exc:  # ChatError: too fast, too long, over
            self.notify(str(exc), severity="warning", markup=False)
            return
        message.input.clear()
