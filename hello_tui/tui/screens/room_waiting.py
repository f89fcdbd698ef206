""" "Someone is waiting in your room": a ringing-style prompt (join now / in 5
minutes / dismiss), the terminal bell, and a desktop notification where one can
be shown.

"In 5 minutes" (``5``): the chat is end to end, so telling the visitor means
being in the room. The owner joins **muted** (camera off), the message
:data:`LATER_TEXT` goes out as soon as the data channel opens (queued until
then), and the owner stays: leaving would end the visitor's call too (a room
call ends with ``peer-left``), and they would have to come back by the link.
The visitor can answer in the chat; the owner hears them. After
:data:`LATER_SECONDS`, if the owner is still muted in that room, a reminder
(notice and bell) says they are waiting and ``m`` unmutes.

The server's ``room-waiting`` reaches every signed-in session of the owner;
:func:`install` hooks it on the phone. The room's name is decrypted here
(``rooms_local.waiting_room``); the visitor's display name is their own text,
shown escaped. Do not disturb: no prompt, no bell, no notification, only a
quiet line in the notices.

Desktop notifications: the OSC 9 (iTerm2, WezTerm, Ghostty, kitty, Windows
Terminal) or OSC 777 (foot, rxvt-unicode with its notify extension, WezTerm)
escape is written only when the terminal is known to understand it (an
unknown terminal might print it); otherwise ``notify-send`` when it is on
PATH; otherwise nothing but the bell.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, Static

from hello_tui.call.phone import CallListener
from hello_tui.tui.text import plain, printable

RING_EVERY = 2.0  # seconds between bells while the prompt is up
LATER_SECONDS = 300.0  # "in 5 minutes": the owner is reminded then
LATER_TEXT = "I'll be with you in 5 minutes (muted until then; you can write here)"
Method = Literal["osc9", "osc777", "notify-send"]
_OSC9 = {"iTerm.app", "WezTerm", "ghostty", "vscode"}
_OSC9_TERMS = ("xterm-kitty", "xterm-ghostty")
_OSC777_TERMS = ("foot", "rxvt-unicode")


def notification_method(
    env: Mapping[str, str], which: Callable[[str], str | None] = shutil.which
) -> Method | None:
    """How a desktop notification can be shown from this terminal (None: not at all).
    Inside tmux or screen an escape would reach tmux, not the terminal: not used."""
    term, program = env.get("TERM", ""), env.get("TERM_PROGRAM", "")
    muxed = "TMUX" in env or term.startswith(("screen", "tmux"))
    if not muxed:
        if program in _OSC9 or term.startswith(_OSC9_TERMS) or "WT_SESSION" in env:
            return "osc9"
        if term.startswith(_OSC777_TERMS):
            return "osc777"
    if which("notify-send") and (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "notify-send"
    return None


def _osc_text(text: str) -> str:
    """One line without ESC, BEL or ';' (they would end or split the escape)."""
    return printable(text, 120).replace("\x1b", "").replace("\x07", "").replace(";", ",")


def notify_desktop(app: Any, title: str, body: str, method: Method | None) -> None:
    """Show ``title``/``body`` as a desktop notification by ``method`` (best effort)."""
    if method is None:
        return
    if method == "notify-send":
        with contextlib.suppress(OSError):  # fixed program; the texts are arguments
            subprocess.Popen(
                ["notify-send", "--app-name=hello-tui", "--", printable(title, 120),
                 printable(body, 200)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        return
    driver = getattr(app, "_driver", None)
    if driver is None or app.is_headless:
        return
    if method == "osc9":
        driver.write(f"\x1b]9;{_osc_text(title + ': ' + body)}\x07")
    else:
        driver.write(f"\x1b]777;notify;{_osc_text(title)};{_osc_text(body)}\x07")


class RoomWaitingPrompt(ModalScreen[str]):
    """Dismissed with ``join`` or ``dismiss``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,enter", "choose('join')", "Join now"),
        Binding("5", "choose('later')", "In 5 minutes"),
        Binding("d,escape", "choose('dismiss')", "Dismiss"),
    ]

    def __init__(self, found: Any, *, bell: bool = True) -> None:
        super().__init__()
        self.found = found
        self.bell = bell

    def compose(self) -> ComposeResult:
        found = self.found
        room = found.name if found.name else f"{found.token} (name unknown on this device)"
        with Vertical(classes="dialog", id="room-waiting"):
            yield Label("Someone is waiting in your room", classes="title")
            yield Label(plain(found.visitor or "Someone (no name given)"), id="waiting-visitor")
            yield Label(plain(f"in {room}"), id="waiting-room")
            with Horizontal(classes="buttons"):
                yield Button("Join now (j)", variant="success", id="join")
                yield Button("In 5 min (5)", id="later")
                yield Button("Dismiss (d)", id="dismiss")
            yield Static(
                "j: join now · 5: join muted, tell them in the chat you come in 5 minutes · "
                "d: dismiss",
                classes="hint",
                markup=False,
            )
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#join", Button).focus()
        if self.bell:
            self.app.bell()
            self.set_interval(RING_EVERY, self.app.bell)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "dismiss")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


def install(app: Any, env: Mapping[str, str] | None = None) -> None:
    """Hook ``room-waiting`` on the app's phone: prompt (or a quiet notice on DND)."""
    from hello_tui.signaling.rooms_local import rooms_file, waiting_room

    backend = app.backend
    phone = backend.phone
    if phone is None:
        return
    method = notification_method(os.environ if env is None else env)

    def heard(msg: Any) -> None:
        found = waiting_room(rooms_file(backend.paths.data_dir), msg)
        who = found.visitor or "Someone"
        where = found.name or "your room"
        if backend.dnd or app.in_call:
            app.notify(f"{who} is waiting in {where}", title="Room", timeout=10)
            return
        notify_desktop(app, "hello-tui", f"{who} is waiting in {where}", method)

        def chosen(choice: str | None) -> None:
            if choice in ("join", "later"):
                app.join_room(found.url or found.token, found.name or "room")
            if choice == "later":
                coming_later(app, app.last_call if app.in_call else None)

        app.push_screen(RoomWaitingPrompt(found, bell=app.ring_bell is not False), chosen)

    phone.on_room_waiting = heard


def coming_later(app: Any, call: Any) -> None:
    """ "In 5 minutes" on the room call just joined: muted before any audio can
    flow, the message queued, a reminder set (see the module's docstring)."""
    phone = app.backend.phone
    if call is None or not call.is_room or phone is None:
        return
    phone.listeners.append(_MuteOnEntry(call, phone))
    said = "Joining muted: they will read that you come in 5 minutes. m unmutes"
    try:
        call.send_chat(LATER_TEXT)  # queued until the data channel opens
    except Exception as exc:  # ChatError: one line, the call goes on
        said = f"Not sent: {exc}"
    # Once the call screen (just pushed) is up: it keeps the line among its notices.
    app.call_after_refresh(app.notify, said, timeout=10)

    def remind() -> None:
        if call.ended is None and call.muted:
            app.bell()
            app.notify("5 minutes are up: they are waiting in the room. m unmutes",
                       severity="warning", timeout=30)  # fmt: skip

    app.set_timer(LATER_SECONDS, remind)


class _MuteOnEntry(CallListener):
    """Mutes ``call`` at its first event once its microphone is open: the source
    opens with the offer, before the room is entered, and no audio flows until
    the other side answered that offer; so nothing is ever sent unmuted."""

    def __init__(self, call: Any, phone: Any) -> None:
        self.call, self.phone = call, phone
        self.done = False

    def call_event(self, call: Any, event: Any) -> None:
        if call is not self.call or self.done:
            return
        if call.source is not None or call.ended is not None:
            self.done = True
            call.mute(True)
            # Not while the phone is going through its listeners: just after.
            asyncio.get_running_loop().call_soon(self._remove)

    def _remove(self) -> None:
        if self in self.phone.listeners:
            self.phone.listeners.remove(self)
