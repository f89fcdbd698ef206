"""Dialogs whose text field takes the keys typed right after the key that opened
them, however fast they came (a paste, tmux ``send-keys``, a typist over SSH).

Textual's app sends each key from the terminal on to the widget focused at that
moment (or to the screen when nothing is). A binding that is not a priority one
runs only once its key has come back up from the focused widget, so the keys
behind it were already sent on to where the focus *was*; and a pushed screen has
nothing focused until it is mounted, so the keys behind the opening key go to
the screen itself, which would drop them. Two halves fix it:

- the key that opens the dialog is a priority binding (the app runs it as it
  takes the key, before sending on the next one): see ``MainScreen``;
- :class:`TypeAheadDialog` focuses its field synchronously on mount
  (``Screen.set_focus``; ``widget.focus()`` is deferred) and types into it the
  keys that reached the screen itself: an ``Input`` stops every printable key it
  gets, so a printable key seen by the screen while a field is focused was sent
  before the field had the focus.
"""

from __future__ import annotations

from typing import TypeVar

from textual import events
from textual.screen import ModalScreen
from textual.widgets import Input

ResultT = TypeVar("ResultT")


class TypeAheadDialog(ModalScreen[ResultT]):
    """A modal dialog with a text field focused on opening (``FIRST_FIELD``)."""

    FIRST_FIELD = "Input"  # a selector for the field focused on mount

    def on_mount(self) -> None:
        # scroll_visible off: before the first layout it would scroll the form
        # past its first label (the first field is at the top anyway)
        self.set_focus(self.query(self.FIRST_FIELD).first(Input), scroll_visible=False)

    async def on_key(self, event: events.Key) -> None:
        field = self.focused
        if not isinstance(field, Input) or field.disabled:
            return  # a button or a checkbox: its keys bubble as usual
        if event.is_printable and event.character is not None:
            event.stop()
            field.insert_text_at_cursor(event.character)
        elif event.key == "backspace":
            event.stop()
            field.action_delete_left()
        elif event.key == "enter":
            # Here, not through the field's binding once the key reached the app:
            # the keys behind this one are typed in at once, after it.
            event.stop()
            await self.field_entered(field)

    async def field_entered(self, field: Input) -> None:
        """Enter in ``field``: submit it (a form moves to the next field instead)."""
        await field.action_submit()
