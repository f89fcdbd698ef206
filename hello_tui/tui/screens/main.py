"""The main screen: contacts on the left, the selected contact (or the call
history) on the right.

It is handed the backend (its contacts and history); a call is asked of the
app with a :class:`CallContact` message.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import events, on, work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import (
    DataTable,
    Footer,
    Input,
    OptionList,
    Static,
    TabbedContent,
    TabPane,
)
from textual.widgets.option_list import Option
from textual.worker import Worker, WorkerState

from hello_tui.contacts.model import Contact
from hello_tui.contacts.store import ContactStore
from hello_tui.history.store import CallRecord
from hello_tui.tui.backend import Backend
from hello_tui.tui.messages import CallContact, Dial, JoinRoom
from hello_tui.tui.text import plain, printable
from hello_tui.tui.widgets.history import HistoryTable
from hello_tui.tui.widgets.photo import Photo
from hello_tui.tui.widgets.status import StatusLine

STORE_POLL = 1.0  # seconds between looks at the contacts file (a stat: no busy loop)
NOTES_SHOWN = 4  # the last call's notes in the strip (the newest; n shows them all)
LIST_LIMIT = 100  # contacts listed at once (a screenful is ~20): typing narrows the rest down


# Contacts come from vCard/CSV files: every field goes through printable() and
# into Text.append (never parsed as markup).
def contact_prompt(contact: Contact) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    name = printable(contact.name, 200)
    if contact.blocked:
        text.append("⊘ " + name, "dim strike")
    elif contact.favourite:
        text.append("★ ", "yellow")
        text.append(name)
    else:
        text.append("  " + name)
    return text


def details_text(contact: Contact) -> Text:
    text = Text()
    text.append(printable(contact.name), "bold")
    if contact.favourite:
        text.append("  ★ favourite", "yellow")
    if contact.blocked:
        text.append("  ⊘ blocked", "bold red")
    text.append("\n")
    for email in contact.emails:
        text.append("\n✉ " + printable(email))
    for phone in contact.phones:
        text.append("\n☎ " + printable(phone))
    if not contact.emails:
        text.append("\n(no e-mail: add one to call this contact)", "dim")
    if contact.notes:
        notes = "\n".join(printable(line) for line in contact.notes.splitlines())
        text.append("\n\n" + notes, "italic")
    return text


class MainScreen(Screen[None]):
    # Below 80 columns the contacts list narrows (styles.tcss): the History table
    # needs the room for its four columns.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (80, "-wide")]  # noqa: RUF012 (mypy: ClassVar here clashes with Screen)

    BINDINGS: ClassVar[list[BindingType]] = [
        # The footer shows the essentials (at 80 columns all of them, with the app's
        # `? Help`); the rest are in the help (?) and the command palette (ctrl+p).
        Binding("c", "call", "Call"),
        # priority: run as the key arrives, so the keys behind it in a burst (a paste,
        # tmux send-keys) are sent on to the search box, not to the list (see action_search)
        Binding("slash", "search", "Find", priority=True),
        Binding("question_mark", "app.keys", "Help"),  # the app's, shown early
        Binding("q", "app.quit", "Quit"),
        Binding("C", "call_video", "Video"),
        Binding("e", "app.echo", "Echo"),
        Binding("a", "add", "Add", priority=True),  # (priority: see typeahead.py)
        Binding("E", "edit", "Edit", show=False, priority=True),
        Binding("t", "toggle_tab", "History"),
        Binding("s", "app.settings", "Settings"),
        Binding("d", "app.toggle_dnd", "DND"),
        Binding("R", "app.rooms", "Rooms", show=False),
        Binding("D", "app.devices", "Devices", show=False),
        Binding("x,delete", "delete", "Delete", show=False),
        Binding("f", "favourite", "Favourite", show=False),
        Binding("b", "block", "Block", show=False),
        Binding("i", "import", "Import", show=False, priority=True),
        Binding("r", "app.retry", "Reconnect", show=False),  # hinted on the status line
        # account, contact, room URL, echo
        Binding("o", "dial", "Dial", show=False, priority=True),
        Binding("n", "call_notes", "Last call's notes", show=False),
    ]

    # The list, not the first focusable widget (the search box: keys sent while the
    # app starts, e.g. "a", were typed into it when the screen's resume won the race).
    AUTO_FOCUS = "#contacts"

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self._listing = 0  # bumped by each synchronous listing (see search_contacts)
        self._history: list[CallRecord] = []  # the History tab's rows, in order
        self.call_notes: list[str] = []  # the last call's notices, shown until seen
        self._stamp: tuple[tuple[int, int, int], ...] = ()  # the store file as last listed

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Input(placeholder="Search contacts (/)", id="search")
                yield OptionList(id="contacts")
                yield Static("", id="count")
            with TabbedContent(id="tabs", initial="tab-contact"):
                with TabPane("Contact", id="tab-contact"), Horizontal(id="contact-view"):
                    yield Photo(id="photo")
                    with VerticalScroll(id="details-scroll"):
                        yield Static("", id="details")
                with TabPane("History", id="tab-history"):
                    yield HistoryTable(id="history")
        yield Static("", id="call-notes", classes="-empty")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.refresh_contacts()
        self.refresh_history()
        self.set_focus(self.query_one("#contacts", OptionList))  # synchronous: see AUTO_FOCUS
        # Contacts changed by another process (hello-tui contact ..., an import from the
        # CLI) appear here: the file's stamp is looked at once a second.
        self.set_interval(STORE_POLL, self._store_changed)

    def _store_changed(self) -> None:
        if self.backend.contacts_stamp() != self._stamp:
            self.refresh_contacts()

    # ------------------------------------------------------------ contacts
    @property
    def store(self) -> ContactStore:
        return self.backend.contacts

    def refresh_contacts(self, select: str | None = None) -> None:
        self._listing += 1  # a search still in flight read the store before this: drop it
        self._stamp = self.backend.contacts_stamp()  # before reading: a later write shows
        query = self.query_one("#search", Input).value
        self.show_contacts(self.store.search(query, limit=LIST_LIMIT), query, select)

    def show_contacts(
        self, found: list[Contact], query: str, select: str | None = None, total: int | None = None
    ) -> None:
        found.sort(key=lambda c: c.blocked)  # stable: favourites first, blocked at the end
        olist = self.query_one("#contacts", OptionList)
        current = self.selected_id()
        olist.clear_options()
        olist.add_options([Option(contact_prompt(c), id=c.id) for c in found])
        total = self.store.count() if total is None else total
        shown = f"{len(found)} of {total}" if query or len(found) < total else f"{total}"
        self.query_one("#count", Static).update(
            f" {shown} contact{'s' if total != 1 else ''}" if total else " no contacts: a to add"
        )
        keep = select or current
        index = next((i for i, c in enumerate(found) if c.id == keep), 0)
        if found:
            olist.highlighted = index
        self.show_contact(found[index] if found else None)

    def selected_id(self) -> str | None:
        olist = self.query_one("#contacts", OptionList)
        if olist.highlighted is None or olist.option_count == 0:
            return None
        return olist.get_option_at_index(olist.highlighted).id

    def selected(self) -> Contact | None:
        cid = self.selected_id()
        if cid is None:
            return None
        try:
            return self.store.get(cid)
        except KeyError:
            return None

    def show_contact(self, contact: Contact | None) -> None:
        photo = self.query_one("#photo", Photo)
        details = self.query_one("#details", Static)
        if contact is None:
            photo.display = False
            details.update(
                Text.from_markup(
                    "[b]No contact selected[/b]\n\n[dim]a[/] add a contact   [dim]i[/] import "
                    "a vCard/CSV\n[dim]e[/] echo test: hear yourself through the server"
                )
            )
            return
        photo.display = True
        photo.show(contact.name, self.store.photo_bytes(contact))
        details.update(details_text(contact))

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        self.search_contacts(event.value, self._listing)

    @work(thread=True, exclusive=True, group="search", exit_on_error=False)
    def search_contacts(self, query: str, listing: int) -> tuple[str, list[Contact], int, int]:
        """Search as you type, off the UI thread (a file store of thousands of
        contacts takes tens of ms a key); the newest query wins, and a listing
        made since (an edit, an import) wins over a search that started before it."""
        return query, self.store.search(query, limit=LIST_LIMIT), self.store.count(), listing

    @on(Worker.StateChanged)
    def _searched(self, event: Worker.StateChanged) -> None:
        result = event.worker.result
        if event.worker.group != "search" or event.state != WorkerState.SUCCESS or not result:
            return
        query, found, total, listing = result
        if listing != self._listing:
            return  # the store changed after this search read it: the list is newer
        if query == self.query_one("#search", Input).value:  # else a newer search is coming
            self.show_contacts(found, query, total=total)

    @on(Input.Submitted, "#search")
    def _search_done(self) -> None:
        self.set_focus(self.query_one("#contacts", OptionList))

    @on(OptionList.OptionHighlighted, "#contacts")
    def _highlighted(self) -> None:
        self.show_contact(self.selected())

    @on(OptionList.OptionSelected, "#contacts")
    def _selected(self) -> None:
        self.action_call()

    def key_escape(self) -> None:
        search = self.query_one("#search", Input)
        if search.has_focus:
            if search.value:
                search.value = ""
            self.set_focus(self.query_one("#contacts", OptionList))
        elif self.call_notes:  # the topmost thing here: the last call's notices
            self.show_call_notes([])

    # ------------------------------------------------------------ the last call's notices
    def show_call_notes(self, notes: list[str]) -> None:
        """The notices of the call that just ended (an input fallback over SSH, a
        missed caller...), kept in view until seen: escape, or the next call."""
        self.call_notes = list(notes)
        strip = self.query_one("#call-notes", Static)
        strip.set_class(not notes, "-empty")
        self.set_class(bool(notes), "-call-notes")  # toasts go above the strip (styles.tcss)
        if notes:
            # One line each, cut with an ellipsis (styles.tcss); n shows them in full.
            count = f"{len(notes)} note{'s' if len(notes) != 1 else ''}"
            head = plain(f"Last call ({count}, n: read in full, esc: dismiss):")
            shown = notes[-NOTES_SHOWN:]
            strip.update(Content("\n").join([head, *(plain(f"• {n}") for n in shown)]))

    def action_call_notes(self) -> None:
        """The last call's notes in full (wrapped), while the strip shows them."""
        from hello_tui.tui.screens.notes import CallNotes

        if not self.call_notes:
            self.notify("No notes from the last call")
            return
        self.app.push_screen(CallNotes(self.call_notes))

    def key_down(self) -> None:
        if self.query_one("#search", Input).has_focus:
            self.set_focus(self.query_one("#contacts", OptionList))

    # ------------------------------------------------------------ history
    def refresh_history(self) -> None:
        self._history = self.backend.history.list(limit=200)
        seen = self.backend.history_seen
        # fitted to its width (widgets/history.py): a missed call not seen yet says "● new"
        self.query_one("#history", HistoryTable).show(self._history, seen)
        new = sum(rec.outcome == "missed" and rec.start > seen for rec in self._history)
        tab = self.query_one("#tabs", TabbedContent).get_tab("tab-history")
        tab.label = f"History ({new} missed)" if new else "History"

    def action_toggle_tab(self) -> None:
        tabs = self.query_one("#tabs", TabbedContent)
        tabs.active = "tab-history" if tabs.active == "tab-contact" else "tab-contact"
        if tabs.active == "tab-history":
            self.refresh_history()
            self.set_focus(self.query_one("#history", DataTable))
            if self._history:  # seen now: marked this time, not the next
                self.backend.mark_history_seen(max(rec.start for rec in self._history))

    def history_selected(self) -> CallRecord | None:
        table = self.query_one("#history", DataTable)
        row = table.cursor_row
        return self._history[row] if 0 <= row < len(self._history) else None

    @on(DataTable.RowSelected, "#history")
    def _history_chosen(self) -> None:
        self.action_call_back()

    def action_call_back(self) -> None:
        """Call back (or open again) the selected History entry: a room by the URL
        its record keeps; else the name it shows, resolved like the dial prompt
        (a contact, an account, echo)."""
        rec = self.history_selected()
        if rec is None:
            self.notify("No call selected in the History tab")
            return
        if rec.room_url:
            self.post_message(JoinRoom(rec.room_url, rec.peer))
            return
        self.post_message(Dial(rec.peer))

    # ------------------------------------------------------------ dial anything
    def action_dial(self, value: str = "") -> None:
        self._not_while_typing()
        from hello_tui.tui.screens.dial import DialPrompt

        def done(text: str | None) -> None:
            if text:
                self.post_message(Dial(text))

        self.app.push_screen(DialPrompt(self.store, value), done)

    def on_paste(self, event: events.Paste) -> None:
        """A room URL pasted on the main screen (not into the search box): offer
        to join it."""
        from hello_tui.tui.dial import room_url
        from hello_tui.tui.screens.forms import Confirm

        url = room_url(event.text)
        if url is None:
            return
        event.stop()

        def done(yes: bool | None) -> None:
            if yes:
                self.post_message(JoinRoom(url))

        self.app.push_screen(Confirm("Join this room?", printable(url, 300)), done)

    # ------------------------------------------------------------ actions
    def action_search(self) -> None:
        """Focus the search box. The binding is a priority one: the app runs it as it
        takes the key from the terminal, before it sends on the next key, and
        set_focus is synchronous (widget.focus() is deferred), so every key behind "/"
        goes to the search box. A plain binding would run only once the key had
        bubbled up from the focused list, after the app had sent the keys behind it
        to the list (where "a" adds a contact)."""
        self._not_while_typing()  # "/" typed in the search box is a character
        self.set_focus(self.query_one("#search", Input))

    def action_call(self, video: bool = False) -> None:
        if self.query_one("#tabs", TabbedContent).active == "tab-history":
            self.action_call_back()  # c on the History tab: call the entry back
            return
        contact = self.selected()
        if contact is None:
            self.notify("Select a contact first (or press e for the echo test)")
            return
        self.post_message(CallContact(contact, video=video))

    def action_call_video(self) -> None:
        self.action_call(video=True)

    def _not_while_typing(self) -> None:
        """The keys that open a dialog with a text field are priority bindings (the
        keys typed behind them then reach its field: screens/typeahead.py); typed in
        the search box they are characters."""
        if isinstance(self.focused, Input):
            raise SkipAction()

    def action_add(self) -> None:
        self._not_while_typing()
        self._contact_form(None, "Added")

    def action_edit(self) -> None:
        self._not_while_typing()
        contact = self.selected()
        if contact is not None:
            self._contact_form(contact, "Saved")
        elif self.selected_id() is not None:  # listed, but deleted elsewhere since
            self.refresh_contacts()
            self.notify("That contact no longer exists (deleted elsewhere): list refreshed",
                        severity="warning")  # fmt: skip

    def _contact_form(self, contact: Contact | None, done_word: str) -> None:
        """The form for a new contact (``None``) or ``contact``; selects what it saved."""
        from hello_tui.tui.screens.forms import ContactForm

        def done(saved: Contact | None) -> None:
            if saved is not None:
                self.refresh_contacts(select=saved.id)
                self.notify(f"{done_word} {saved.name}")

        self.app.push_screen(ContactForm(self.store, contact), done)

    def action_delete(self) -> None:
        from hello_tui.tui.screens.forms import Confirm

        contact = self.selected()
        if contact is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.store.delete(contact.id)
                self.refresh_contacts()
                self.notify(f"Deleted {contact.name}")

        self.app.push_screen(Confirm(f"Delete {contact.name}?", "This cannot be undone."), done)

    def action_favourite(self) -> None:
        contact = self.selected()
        if contact is not None:
            saved = self.store.set_favourite(contact.id, not contact.favourite)
            self.refresh_contacts(select=saved.id)

    def action_block(self) -> None:
        contact = self.selected()
        if contact is not None:
            saved = self.store.set_blocked(contact.id, not contact.blocked)
            self.refresh_contacts(select=saved.id)
            self.notify(
                f"Blocked {saved.name}: their calls are refused"
                if saved.blocked
                else f"Unblocked {saved.name}"
            )

    def action_import(self) -> None:
        from hello_tui.tui.screens.forms import ImportFile

        self._not_while_typing()

        def done(summary: str | None) -> None:
            if summary:
                self.refresh_contacts()
                self.notify(summary)

        self.app.push_screen(ImportFile(self.store), done)
