"""Untrusted text for Textual widgets: never markup, never raw control characters.

A caller's name, a contact's fields (vCard files), a room name, a server's
error text: shown with :func:`plain` (a Textual ``Content``, so ``[/]`` or
``[@click=app.quit]`` stay text) after :func:`printable` (so ESC, newlines, bidi
and zero-width characters are visible, not obeyed). Rich ``Text`` built with
``append`` is not parsed either; its pieces go through :func:`printable`.
``HelloApp.notify`` does the same for every notification.
"""

from __future__ import annotations

from textual.content import Content

from hello_tui.util.display import printable


def plain(text: object, max_chars: int | None = None) -> Content:
    """``text`` as shown: literal, control characters visible."""
    return Content(printable(text, max_chars))


__all__ = ["plain", "printable"]
