"""The status line: the connection as the client last told it, the account,
do-not-disturb and (on the call screen) the microphone.

It shows the app's ``status`` reactive (``HelloApp.status``), watched from
mount: nothing polls, every status line redraws when the status changes.
The only timer runs while reconnecting, to count down to the attempt the
client announced (``Status.retry_at``). Every state is a word (and a glyph),
never a colour alone; below 100 columns the short form drops the badge, the
server and the palette hint, and the reason comes last so a cut eats only it.
"""

from __future__ import annotations

import time

from rich.text import Text
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Static

from hello_tui.tui.backend import Status
from hello_tui.tui.text import printable

WIDE = 100  # columns from which the long form is shown

_LINK = {  # link → glyph, word, style
    "online": ("●", "online", "green"),
    "connecting": ("◌", "connecting…", "yellow"),
    "reconnecting": ("○", "reconnecting", "yellow"),
    "offline": ("✕", "offline", "bold red"),
}


def status_text(
    status: Status, *, width: int = 200, muted: bool | None = None, now: float | None = None
) -> Text:
    wide = width >= WIDE
    sep = "  ·  " if wide else " · "
    text = Text(no_wrap=True, overflow="ellipsis")
    if wide:
        text.append(" hello-tui ", "bold reverse")
        text.append("  ")
    glyph, word, style = _LINK.get(status.link, ("?", status.link, ""))
    if status.link == "reconnecting":
        secs = status.retry_in(time.monotonic() if now is None else now)
        word = f"reconnecting in {secs}s" if secs else "reconnecting…"
    text.append(f"{glyph} {word}", style)
    who = printable(status.account, 100 if wide else 32) if status.account else ""
    if status.link == "online" and who:
        text.append(" as ")
        text.append(who, "bold")
    else:
        text.append(sep)
        text.append(who or "anonymous", "bold" if who else "")
    text.append(sep)
    text.append("DND on" if status.dnd else "DND off", "bold magenta" if status.dnd else "")
    if muted is not None:
        text.append(sep)
        text.append("muted" if muted else "mic on", "bold red" if muted else "")
    if wide:
        text.append(sep)
        server = "embedded server" if status.server == "embedded" else status.server
        text.append(printable(server, 100), "dim")
    if status.link in ("reconnecting", "offline") and status.error:
        text.append(sep)
        text.append(printable(status.error, 200), "red")
    if status.link == "offline":
        text.append(" (r: retry)")
    if wide:
        text.append(sep)
        text.append("^p commands", "dim")
    return text


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; }
    """

    # The call screen sets it (None elsewhere: no microphone to speak of).
    muted: reactive[bool | None] = reactive(None)

    _status: Status | None = None
    _ticker: Timer | None = None

    def on_mount(self) -> None:
        if hasattr(self.app, "status"):  # the HelloApp (not a bare App hosting the widget)
            self.watch(self.app, "status", self.show)

    def show(self, status: Status) -> None:
        self._status = status
        counting = status.retry_at is not None
        if counting and self._ticker is None:
            self._ticker = self.set_interval(1.0, self._redraw)
        elif not counting and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._redraw()

    def watch_muted(self) -> None:
        self._redraw()

    def on_resize(self) -> None:
        self._redraw()

    def _redraw(self) -> None:
        if self._status is not None:
            width = self.size.width or self.app.size.width
            self.update(status_text(self._status, width=width, muted=self.muted))
