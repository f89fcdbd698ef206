"""Untrusted text made safe to show on a terminal line.

A caller's name, a contact from a vCard, a room name or a server's error text
may hold anything: ESC sequences that clear the screen or set the window title,
a newline that forges a line of its own ("Incoming call from Your Bank"), bidi
overrides that reverse what follows, zero-width characters that hide a
difference. :func:`printable` keeps the text readable and makes such characters
visible instead: a C0 control becomes its Unicode control picture (``␛``,
``␊``), any other control, format or separator character becomes ``�``.
It is the one filter both faces use (the CLI's human lines, the TUI's labels);
JSON output needs none (the encoder escapes).
"""

from __future__ import annotations

import unicodedata
from typing import Final

from hello_tui.signaling.names import MAX_COMBINING, ignorable

REPLACEMENT: Final = "\ufffd"
ELLIPSIS: Final = "…"
# Drawn as nothing, or acted on by the terminal: never shown raw.
_HIDDEN: Final = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _visible(char: str) -> str:
    code = ord(char)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (␛ for ESC, ␊ for LF)
    if code == 0x7F:
        return "\u2421"  # ␡
    return REPLACEMENT


def printable(text: object, max_chars: int | None = None) -> str:
    """``text`` with every control, format (bidi, zero-width), separator and
    default-ignorable character made visible, combining marks capped at
    ``MAX_COMBINING`` in a row, and (with ``max_chars``) cut with an ellipsis."""
    text = str(text)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)] + ELLIPSIS
    out: list[str] = []
    combining = 0
    for char in text:
        category = unicodedata.category(char)
        if category in _HIDDEN or ignorable(char):
            out.append(_visible(char))
            combining = 0
        elif category in ("Mn", "Me"):
            combining += 1
            if combining <= MAX_COMBINING:
                out.append(char)
        else:
            combining = 0
            out.append(char)
    return "".join(out)


def safe(text: object) -> bool:
    """True when :func:`printable` would leave ``text`` as it is."""
    return printable(text) == str(text)


__all__ = ["ELLIPSIS", "REPLACEMENT", "printable", "safe"]
