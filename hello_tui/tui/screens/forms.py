"""Small modal forms: add/edit a contact, confirm, import a file."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Footer, Input, Label, Static
from textual.worker import Worker, WorkerState

from hello_tui.contacts.model import Contact, ContactError
from hello_tui.contacts.store import ContactStore
from hello_tui.tui.screens.typeahead import TypeAheadDialog
from hello_tui.tui.text import plain


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


class ContactForm(TypeAheadDialog[Contact | None]):
    """Add (``contact`` None) or edit a contact. Enter moves to the next field,
    ctrl+s saves, escape cancels. The fields scroll; the error line and the
    buttons stay in view (a refused save must show why at 60×20)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),  # not priority: typed keys before it land first
        Binding("escape", "cancel", "Cancel"),
        # priority: enter moves the focus as the key arrives (see action_next_field)
        Binding("enter", "next_field", "Next field", show=False, priority=True),
    ]
    FIRST_FIELD = "#name"

    def __init__(self, store: ContactStore, contact: Contact | None) -> None:
        super().__init__()
        self.store = store
        self.contact = contact

    def compose(self) -> ComposeResult:
        c = self.contact
        emails = ", ".join(c.emails) if c else ""
        phones = ", ".join(c.phones) if c else ""
        with Vertical(classes="dialog form", id="contact-form"):
            yield Label("Edit contact" if c else "Add a contact", classes="title")
            with VerticalScroll(classes="form-body"):
                for wid, label, value, placeholder in (
                    ("name", "Name", c.name if c else "", ""),
                    ("emails", "E-mails (comma-separated)", emails, "e.g. ana@example.org"),
                    ("phones", "Phones (comma-separated)", phones, "e.g. +33 6 12 34 56 78"),
                    ("notes", "Notes", c.notes if c else "", ""),
                    ("photo-path", "Photo: a PNG or JPEG file (empty: keep)", "", "e.g. ~/ana.jpg"),
                ):
                    yield Label(label, classes="field-label")
                    yield Input(value, placeholder=placeholder, id=wid)
                yield Checkbox("Favourite", c.favourite if c else False, id="favourite")
            yield Static("", id="form-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save (^s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer(compact=True, show_command_palette=False)  # this dialog's keys

    def action_next_field(self) -> None:
        """Enter in a field moves on (saving half-typed forms by accident helped nobody).

        A priority binding, run by the app as it takes the key from the terminal:
        the focus has moved before the app sends on the keys typed behind enter
        (tmux send-keys, a paste), so they land in the next field. The keys before
        enter are already queued for this field and still reach it. The Input's own
        enter (Submitted, handled once the key came back up) moved the focus only
        after the keys behind it had been sent to the field it left."""
        if not isinstance(self.focused, Input):
            raise SkipAction()  # enter on a button presses it, on the checkbox toggles it
        self.focus_next()

    async def field_entered(self, field: Input) -> None:
        self.action_next_field()  # keys that reached the screen before the field had focus

    def _value(self, wid: str) -> str:
        return self.query_one(f"#{wid}", Input).value

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        error = self.query_one("#form-error", Static)
        edited = Contact(
            name=self._value("name").strip(),
            emails=_split(self._value("emails")),
            phones=_split(self._value("phones")),
            notes=self._value("notes").strip(),
            favourite=self.query_one("#favourite", Checkbox).value,
        )
        changes: dict[str, object] = {
            k: getattr(edited, k) for k in ("name", "emails", "phones", "notes", "favourite")
        }
        photo_path = self._value("photo-path").strip()
        try:
            if photo_path:
                try:
                    changes["photo"] = edited.photo = Path(photo_path).expanduser().read_bytes()
                except OSError as exc:
                    raise ContactError(f"{photo_path}: {exc.strerror}") from None
            if self.contact is None:
                saved = self.store.add(edited)
            else:
                saved = self.store.update(self.contact.copy(**changes))
        except (ContactError, ValueError) as exc:
            error.update(plain(exc))
            return
        self.dismiss(saved)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """Yes / no. ``y`` or enter confirms; ``n`` or escape declines."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, detail: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.question, self.detail = question, detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm"):
            yield Label(plain(self.question), classes="title")  # names a contact
            if self.detail:
                yield Static(plain(self.detail))
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")
        yield Footer(compact=True, show_command_palette=False)  # this dialog's keys

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class UnsavedChanges(ModalScreen[str]):
    """Leaving a screen with changes: ``save``, ``discard`` or ``cancel`` (escape:
    stay, the changes kept)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "choose('save')", "Save"),
        Binding("d", "choose('discard')", "Discard"),
        Binding("escape,c", "choose('cancel')", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="unsaved"):
            yield Label("Save your changes?", classes="title")
            with Horizontal(classes="buttons"):
                yield Button("Save (s)", variant="primary", id="save")
                yield Button("Discard (d)", variant="error", id="discard")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class ImportFile(TypeAheadDialog[str | None]):
    """A path input; imports a vCard (.vcf) or Google Contacts CSV file.

    The import runs in a thread worker (a file of thousands of cards takes
    seconds): the app keeps drawing and taking keys, the dialog shows how far
    it got, and it is dismissed with the import's summary once done."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    PROGRESS_EVERY = 250  # cards between two progress lines

    class Progress(Message):
        """Posted from the import thread: ``done`` of ``total`` cards in ``phase``."""

        bubble = False

        def __init__(self, phase: str, done: int, total: int) -> None:
            super().__init__()
            self.phase, self.done, self.total = phase, done, total

    def __init__(self, store: ContactStore) -> None:
        super().__init__()
        self.store = store
        self.importing = False
        self.summary: str | None = None  # the result, kept while a screen covers this one

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="import"):
            yield Label("Import contacts", classes="title")
            yield Static("A vCard (.vcf, 3.0/4.0) or Google Contacts .csv file:")
            yield Input(placeholder="~/contacts.vcf", id="path")
            yield Static("", id="import-progress", classes="hint")
            yield Static("", id="import-error", classes="error")
        yield Footer(compact=True, show_command_palette=False)  # this dialog's keys

    @on(Input.Submitted, "#path")
    def _import(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.importing:
            return
        self.importing = True
        self.query_one("#path", Input).disabled = True
        self.query_one("#import-error", Static).update("")
        self.query_one("#import-progress", Static).update("importing…")
        self.run_import(Path(text).expanduser())

    @work(thread=True, exclusive=True, group="import", exit_on_error=False)
    def run_import(self, path: Path) -> str:
        from hello_tui.contacts.importer import import_file

        def progress(phase: str, done: int, total: int) -> None:
            if done == total or done % self.PROGRESS_EVERY == 0:
                self.post_message(self.Progress(phase, done, total))  # thread-safe

        return import_file(self.store, path, progress=progress).summary()

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        if self.importing:
            what = "reading" if message.phase == "reading" else "merging"
            self.query_one("#import-progress", Static).update(
                plain(f"{what} {message.done:,} of {message.total:,} cards…")
            )

    @on(Worker.StateChanged)
    def _done(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "import":
            return
        if event.state == WorkerState.SUCCESS:
            self.importing = False
            self.summary = event.worker.result
            if self.is_active:  # else on resume: dismiss() pops whatever screen is on top
                self.on_screen_resume()
        elif event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.importing = False
            path = self.query_one("#path", Input)
            path.disabled = False
            path.focus()
            self.query_one("#import-progress", Static).update("")
            if event.worker.error is not None:
                self.query_one("#import-error", Static).update(plain(event.worker.error))

    def on_screen_resume(self) -> None:
        summary, self.summary = self.summary, None  # once: a resume may come twice
        if summary is not None:
            self.dismiss(summary)

    def action_cancel(self) -> None:
        if self.importing:  # the file is being written into the store: let it finish
            self.notify("Still importing: this closes once it is done", severity="warning")
            return
        self.dismiss(None)


class TextPrompt(TypeAheadDialog[str | None]):
    """One line of text (a room name, an account name). Enter submits the value
    (``allow_empty``: even empty); escape cancels (None)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        hint: str = "",
        value: str = "",
        *,
        placeholder: str = "",
        allow_empty: bool = False,
        prompt_id: str = "text-prompt",
    ) -> None:
        super().__init__(id=prompt_id)
        self.title_text, self.hint, self.value = title, hint, value
        self.placeholder, self.allow_empty = placeholder, allow_empty

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="title")
            if self.hint:
                yield Static(self.hint, classes="hint")
            yield Input(self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static("enter: OK   esc: cancel", classes="hint")
        yield Footer(compact=True, show_command_palette=False)  # this dialog's keys

    @on(Input.Submitted, "#prompt-input")
    def _submit(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text or self.allow_empty:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
