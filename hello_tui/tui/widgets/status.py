"""The status line: who we are, whether the server answers, do-not-disturb.

It shows the app's ``status`` reactive (``HelloApp.status``), watched from
mount: nothing polls, every status line redraws when the status changes.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from hello_tui.tui.backend import Status
from hello_tui.tui.text import printable


def status_text(status: Status) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(" hello-tui ", "bold reverse")
    text.append("  ")
    if status.account:
        text.append(f"signed in as {printable(status.account, 100)}", "bold")
    else:
        text.append("anonymous")
    text.append("  ·  ")
    server = "embedded server" if status.server == "embedded" else printable(status.server, 100)
    if status.reachable is not None and not status.reachable and status.server == "embedded":
        server = "embedded"
    if status.reachable is None:
        text.append(f"{server}: connecting…", "yellow")
    elif status.reachable:
        text.append(f"{server}: reachable", "green")
    else:
        text.append(f"{server}: unreachable (r: retry)", "bold red")
    text.append("  ·  ")
    text.append("do not disturb" if status.dnd else "DND off", "bold magenta" if status.dnd else "")
    text.append("  ·  ")
    text.append("^p commands", "dim")
    return text


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine { height: 1; background: $panel; }
    """

    def on_mount(self) -> None:
        if hasattr(self.app, "status"):  # the HelloApp (not a bare App hosting the widget)
            self.watch(self.app, "status", self.show)

    def show(self, status: Status) -> None:
        self.update(status_text(status))
