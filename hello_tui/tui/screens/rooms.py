"""Rooms (conversation URLs): create, list, rename, delete, join.

The logic is the core's (``hello_tui.signaling.rooms_local``, the same the
``hello-tui room`` commands run): names are encrypted with a fresh key that
lives only in the URL's ``#k=`` fragment and in the profile's ``rooms.toml``,
so the list shows names decrypted here. Rooms need a real server: the
embedded one stops with the app, so on it the screen says so in one line.

The screen is handed the backend and follows the app's ``status`` reactive:
while not online it says why (and lists again by itself once the link is
back); joining a room is asked of the app with a
:class:`JoinRoom` message.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import urlsplit

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from hello_tui.signaling.account_local import HINTS, explain
from hello_tui.signaling.rooms_local import Room
from hello_tui.tui.backend import Backend, Status
from hello_tui.tui.messages import JoinRoom
from hello_tui.tui.text import printable
from hello_tui.tui.widgets.status import StatusLine
from hello_tui.util.timestamps import local_time

NO_SERVER = "Rooms need a real server (not the embedded one): set its URL in Settings (s)."
NO_SERVER_HINT = "e.g. one started with 'hello-tui serve', or [server] url in the config file"
UNKNOWN = "(name unknown: no key on this device)"


def room_label(room: Room) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    if room.name is None:
        text.append(UNKNOWN, "dim italic")
    else:
        text.append(printable(room.name, 200) or "(unnamed)", "" if room.name else "dim")
    people = f"  · {room.participants} in it" if room.participants else ""
    text.append(f"{people}  · until {local_time(room.expires)}", "dim")
    return text


def offline_line(status: Status) -> str:
    """Why the rooms cannot be listed now, and what happens next."""
    if status.link == "connecting":
        return "connecting to the server… (the list follows)"
    why = f": {status.error}" if status.error else ""
    if status.link == "offline":
        return f"offline{why}. r: retry, s: settings"
    return f"reconnecting{why}. The list comes back by itself when the server does."


class RoomsScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: the keys typed right behind them reach the name prompt, not the
        # list (where x deletes, j joins): see screens/typeahead.py
        Binding("n", "create", "New room", priority=True),
        Binding("j", "join", "Join"),
        Binding("c", "copy", "Copy URL"),
        Binding("e", "rename", "Rename", priority=True),
        Binding("x,delete", "delete", "Del"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape,q", "close", "Back"),
        Binding("s", "app.settings", "Settings"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self._online = False  # the link as last seen (a change to online lists again)
        self.rooms: list[Room] = []
        self.loaded = False
        self.select_token: str | None = None

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static("", id="rooms-title")
        yield OptionList(id="rooms")
        yield Static("", id="room-details")
        yield Static("", id="rooms-note", classes="hint")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.show_state()
        self.query_one("#rooms", OptionList).focus()
        self._online = self.backend.online
        if hasattr(self.app, "status"):  # the HelloApp: follow the connection as pushed
            self.watch(self.app, "status", self._link_changed, init=False)
        if not self.backend.embedded:
            self.load_rooms()

    def _link_changed(self, status: Status) -> None:
        """Offline: say why at once (never "connecting…" forever); back online:
        list again by itself."""
        was, self._online = self._online, status.link == "online"
        if self.backend.embedded:
            return
        if self._online and not was:
            self.load_rooms()
        elif not self._online:
            self.note(offline_line(status), error=status.link == "offline")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # On the embedded server only Back and Settings mean anything (hidden otherwise).
        if action in ("create", "join", "copy", "rename", "delete", "refresh"):
            return not self.backend.embedded
        return True

    def on_screen_resume(self) -> None:
        self.refresh_bindings()
        self.show_state()
        if not self.backend.embedded and self.loaded:
            self.load_rooms()  # after a call or a settings change

    # ------------------------------------------------------------ drawing
    def show_state(self) -> None:
        embedded = self.backend.embedded
        title = self.query_one("#rooms-title", Static)
        olist = self.query_one("#rooms", OptionList)
        olist.display = not embedded
        self.query_one("#room-details", Static).display = not embedded
        if embedded:
            title.update(Text(NO_SERVER, "bold"))
            self.note(NO_SERVER_HINT)
            return
        host = urlsplit(self.backend.settings.server.url).netloc or self.backend.settings.server.url
        title.update(
            Text.assemble(
                ("Rooms on ", "bold"),
                (printable(host), "bold"),
                ("  names encrypted here; keys only on this device", "dim"),
            )
        )

    def note(self, text: str, error: bool = False) -> None:
        note = self.query_one("#rooms-note", Static)
        note.set_class(error, "error")
        note.update(Text(printable(text)))  # plain: "[server] url" is not markup

    def show_rooms(self, rooms: list[Room]) -> None:
        self.rooms = rooms
        self.loaded = True
        olist = self.query_one("#rooms", OptionList)
        keep = self.select_token or self.selected_token()
        self.select_token = None
        olist.clear_options()
        olist.add_options([Option(room_label(r), id=r.token) for r in rooms])
        if rooms:
            index = next((i for i, r in enumerate(rooms) if r.token == keep), 0)
            olist.highlighted = index
        self.note(
            "n: new room" if not rooms else f"{len(rooms)} room{'s' if len(rooms) != 1 else ''}"
        )
        self.show_details()

    def selected_token(self) -> str | None:
        olist = self.query_one("#rooms", OptionList)
        if olist.highlighted is None or olist.option_count == 0:
            return None
        return olist.get_option_at_index(olist.highlighted).id

    def selected(self) -> Room | None:
        token = self.selected_token()
        return next((r for r in self.rooms if r.token == token), None)

    def show_details(self) -> None:
        details = self.query_one("#room-details", Static)
        room = self.selected()
        if room is None:
            details.update(
                Text("No rooms yet: press n to create one, then send its URL.", "dim")
                if self.loaded
                else Text("Loading…", "dim")
            )
            return
        text = Text()
        text.append(printable(room.name) if room.name is not None else UNKNOWN, "bold")
        text.append(f"\nexpires {local_time(room.expires)}", "dim")
        text.append(f" · {room.participants} in the room now\n", "dim")
        # The room's context (decrypted here): someone's words and a link, as text only.
        if room.description:
            text.append(f"About: {printable(room.description, 200)}\n")
        if room.context_url:
            text.append(f"Link (not opened): {printable(room.context_url, 500)}\n", "dim")
        if room.knock:
            text.append("Knock to enter: visitors wait until you let them in\n", "dim")
        if room.url:
            text.append(room.url, "underline")
            text.append("\nc: copy  j/enter: join  e: rename  x: delete", "dim")
        else:
            text.append(f"token {room.token} (no #k= key here: made on another device)", "dim")
        details.update(text)

    @on(OptionList.OptionHighlighted, "#rooms")
    def _highlighted(self) -> None:
        self.show_details()

    @on(OptionList.OptionSelected, "#rooms")
    def _selected(self) -> None:
        self.action_join()

    # ------------------------------------------------------------ server work
    def _failed(self, what: str, exc: BaseException) -> None:
        why = explain(exc, HINTS)
        self.note(f"{what}: {why}", error=True)
        self.notify(f"{what}: {why}. Press r to retry.", severity="error", timeout=8)

    def _usable(self) -> bool:
        if self.backend.embedded:
            self.notify(NO_SERVER, severity="warning")
            return False
        return True

    async def action_refresh(self) -> None:
        if self.backend.link == "offline" and not self.backend.embedded:
            await self.run_action("app.retry")  # nothing would retry by itself
        elif not self.backend.embedded:
            self.load_rooms()

    @work(exclusive=True, group="rooms", exit_on_error=False)
    async def load_rooms(self) -> None:
        if not self.backend.online:  # listed again when the link comes back
            self.note(offline_line(self.backend.status()), error=self.backend.link == "offline")
            return
        try:
            rooms = await self.backend.list_rooms()
        except Exception as exc:
            self._failed("Cannot list the rooms", exc)
            return
        self.show_rooms(rooms)

    def action_create(self) -> None:
        from hello_tui.tui.screens.forms import TextPrompt

        if not self._usable():
            return

        def done(name: str | None) -> None:
            if name is not None:
                self.create(name)

        self.app.push_screen(
            TextPrompt(
                "New room",
                "Its name is encrypted here; the server never sees it. May be empty.",
                placeholder="Room name",
                allow_empty=True,
            ),
            done,
        )

    @work(group="rooms-edit", exit_on_error=False)
    async def create(self, name: str) -> None:
        try:
            room = await self.backend.create_room(name)
        except Exception as exc:
            self._failed("Room not created", exc)
            return
        self.select_token = room.token
        self.show_rooms([*[r for r in self.rooms if r.token != room.token], room])
        self.copy(room, created=True)
        self.load_rooms()

    def copy(self, room: Room, *, created: bool = False) -> None:
        if not room.url:
            self.notify("No URL with its key on this device for this room", severity="warning")
            return
        # OSC 52: terminals that allow it put it on the clipboard; it is shown anyway.
        self.app.copy_to_clipboard(room.url)
        first = "Room created. " if created else ""
        self.notify(f"{first}URL copied to the clipboard (if the terminal allows): {room.url}",
                    timeout=10)  # fmt: skip

    def action_copy(self) -> None:
        room = self.selected()
        if room is not None:
            self.copy(room)

    def action_join(self) -> None:
        room = self.selected()
        if room is None:
            self.notify("No room selected: n creates one")
            return
        self.post_message(JoinRoom(room.url or room.token, room.name or "room"))

    def action_rename(self) -> None:
        from hello_tui.tui.screens.forms import TextPrompt

        room = self.selected()
        if room is None or not self._usable():
            return
        if room.url is None:
            self.notify("This room's key is not on this device: it cannot be renamed here",
                        severity="warning")  # fmt: skip
            return

        def done(name: str | None) -> None:
            if name is not None:
                self.rename(room, name)

        self.app.push_screen(
            TextPrompt("Rename room", "The new name is encrypted with the room's key.",
                       room.name or "", allow_empty=True),
            done,
        )  # fmt: skip

    @work(group="rooms-edit", exit_on_error=False)
    async def rename(self, room: Room, name: str) -> None:
        try:
            await self.backend.rename_room(room, name)
        except Exception as exc:
            self._failed("Not renamed", exc)
            return
        self.notify(f"Renamed to {name or '(unnamed)'}")
        self.select_token = room.token
        self.load_rooms()

    def action_delete(self) -> None:
        from hello_tui.tui.screens.forms import Confirm

        room = self.selected()
        if room is None or not self._usable():
            return
        label = room.name or room.token

        def done(yes: bool | None) -> None:
            if yes:
                self.delete(room)

        self.app.push_screen(
            Confirm(f"Delete room {label}?", "Its URL stops working for everyone."), done
        )

    @work(group="rooms-edit", exit_on_error=False)
    async def delete(self, room: Room) -> None:
        try:
            await self.backend.delete_room(room)
        except Exception as exc:
            self._failed("Not deleted", exc)
            return
        self.notify(f"Deleted room {room.name or room.token}")
        self.show_rooms([r for r in self.rooms if r.token != room.token])
        self.load_rooms()

    def action_close(self) -> None:
        self.dismiss(None)
