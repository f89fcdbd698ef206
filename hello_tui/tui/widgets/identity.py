"""One line saying who the other side is by key (the call's ``Identity`` event).

``changed`` and ``unproven`` are loud (the same warning the CLI prints);
``new``, ``known`` and ``verified`` are quiet. The account name in it is
untrusted text: the line is built as :class:`~textual.content.Content`, never
parsed as markup.
"""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

SHORT = {
    "new": "First call with this account: its key is remembered now.",
    "known": "Same account key as on earlier calls.",
    "verified": "✔ Verified account key (a check code was compared).",
}


class IdentityLine(Static):
    """Hidden until an ``Identity`` event is shown."""

    DEFAULT_CSS = """
    IdentityLine { display: none; height: auto; color: $text-muted; }
    IdentityLine.-shown { display: block; }
    IdentityLine.-warning { color: $error; text-style: bold reverse; }
    IdentityLine.-verified { color: $success; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__("", markup=False, **kwargs)
        self.status = ""

    def show(self, event: Any) -> None:
        status = str(getattr(event, "status", ""))
        self.status = status
        loud = status in ("changed", "unproven")
        text = event.line() if loud else SHORT.get(status, event.line())
        fingerprint = getattr(event, "fingerprint", "")
        if not loud and fingerprint:
            text += f" {fingerprint}"
        self.update(Content(text))
        self.add_class("-shown")
        self.set_class(loud, "-warning")
        self.set_class(status == "verified", "-verified")
