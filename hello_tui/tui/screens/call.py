"""The call screen: who, state, timer, check code, live quality panel.

Everything shown comes from the call's events (:func:`follow_call`, the one
adapter) and its quality samples; the screen dismisses itself with the
``Ended`` event.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Digits, Footer, Label, Static

from hello_tui.tui.messages import CallEventMessage, QualityUpdate, follow_call
from hello_tui.tui.widgets.photo import Photo
from hello_tui.tui.widgets.quality import QualityPanel
from hello_tui.tui.widgets.status import StatusLine

STATE_TEXT = {
    "dialing": "Calling…",
    "ringing": "Ringing…",
    "waiting": "In the room, waiting for someone…",
    "connecting": "Connecting…",
    "connected": "Connected · encrypted (DTLS-SRTP)",
}


def clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60:02d}:{s % 60:02d}"


class CallScreen(Screen[Any]):
    """One call; dismissed with its ``Ended`` event."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "mute", "Mute"),
        Binding("h,escape", "hangup", "Hang up"),
        Binding("v", "camera", "Camera", show=False),
    ]

    def __init__(self, call: Any, *, photo: bytes | None = None, follow: bool = True) -> None:
        super().__init__()
        self.call = call
        self.photo = photo
        self.follow = follow
        self.state = "dialing" if call is None else call.stage
        self.connected_at: float | None = None
        self.sas = ""
        self.ended: Any = None

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="call-top"):
            yield Photo(cols=16, rows=8, id="call-photo")
            with Vertical(id="call-info"):
                yield Label(self._peer(), id="call-peer")
                with Horizontal(id="call-state-row"):
                    yield Label(STATE_TEXT.get(self.state, self.state), id="call-state")
                    yield Label("", id="call-timer")
                yield Label("", id="call-mute")
                yield Label("Check code (read it aloud, both sides see the same):", id="sas-label")
                yield Digits("", id="sas")
        yield QualityPanel(id="quality")
        yield Static("", id="call-notice")
        yield Footer(compact=True)

    def _peer(self) -> str:
        return getattr(self.call, "peer", "") or "call"

    def on_mount(self) -> None:
        self.query_one("#call-photo", Photo).show(self._peer(), self.photo)
        self.query_one("#sas-label").display = False
        self.set_interval(1.0, self._tick)
        if self.follow and self.call is not None:
            self.run_worker(follow_call(self.call, self), group="call-events", exit_on_error=False)

    def _tick(self) -> None:
        if self.connected_at is not None and self.ended is None:
            self.query_one("#call-timer", Label).update(clock(time.time() - self.connected_at))

    def set_state(self, state: str) -> None:
        self.state = state
        self.query_one("#call-state", Label).update(STATE_TEXT.get(state, state))

    def show_sas(self, sas: str) -> None:
        self.sas = sas
        self.query_one("#sas-label").display = True
        self.query_one("#sas", Digits).update(sas if sas.replace(" ", "").isdigit() else "------")

    @on(CallEventMessage)
    def _event(self, message: CallEventMessage) -> None:
        event = message.event
        kind = event.kind
        if kind in ("ringing", "waiting", "connecting"):
            self.set_state(kind)
        elif kind == "connected":
            self.connected_at = getattr(self.call, "connected_at", None) or time.time()
            self.set_state("connected")
            self.show_sas(event.sas)
            self._tick()
        elif kind in ("muted", "unmuted"):
            self.query_one("#call-mute", Label).update("🔇 muted" if kind == "muted" else "")
        elif kind == "notice":
            self.query_one("#call-notice", Static).update(f"Note: {event.text}")
        elif kind == "ended":
            self.ended = event
            self.dismiss(event)

    @on(QualityUpdate)
    def _quality(self, message: QualityUpdate) -> None:
        self.query_one(QualityPanel).add_sample(message.sample)

    def action_mute(self) -> None:
        if self.call is not None:
            self.call.mute(not self.call.muted)

    def action_hangup(self) -> None:
        if self.call is not None:
            self.run_worker(self.call.hangup(), group="hangup", exclusive=True)

    def action_camera(self) -> None:
        try:
            self.call.set_camera(True)
        except NotImplementedError as exc:
            self.notify(str(exc), severity="warning")
