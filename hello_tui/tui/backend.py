"""What the TUI drives: the local stores and, once connected, a :class:`Phone`.

No Textual here: this is the same glue the CLI's ``Session`` does (server
configured or embedded, a connected client, an optional login, call options
from the config), kept in one object the app owns for its whole life. The
heavy imports (aiortc, aiohttp, the server for the embedded default) happen
in :meth:`Backend.connect`, which the app runs in a worker after the first
paint, so the UI is interactive at once.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from hello_tui.config.loader import load_config
from hello_tui.config.paths import Paths, resolve_paths
from hello_tui.config.settings import Settings
from hello_tui.contacts.model import Contact
from hello_tui.contacts.pins import KeyPins
from hello_tui.contacts.search import fold_key
from hello_tui.contacts.store import ContactStore, open_store
from hello_tui.history.store import HistoryStore
from hello_tui.signaling.account_local import has_account
from hello_tui.util.atomic import atomic_write_text

if TYPE_CHECKING:
    from hello_tui.call.engine import Call, Phone
    from hello_tui.signaling.account_local import Registered
    from hello_tui.signaling.client import SignalingClient
    from hello_tui.signaling.rooms_local import Room

STATE_FILE = "tui-state.toml"  # front-end state that has no config key (do-not-disturb)


@dataclass(frozen=True, slots=True)
class Status:
    """What the status line shows."""

    account: str | None  # signed in as; None: anonymous
    server: str  # "embedded" or the URL
    reachable: bool | None  # None: still connecting
    error: str
    dnd: bool


class NeedsServer(RuntimeError):
    """Rooms and accounts need a configured server (the embedded one dies with the app)."""


def contacts_path(paths: Paths, settings: Settings) -> Path:
    return paths.contacts_location(settings.contacts.backend, settings.contacts.path)


class Backend:
    """The local stores, the server connection and the phone of one TUI run."""

    def __init__(self, paths: Paths | None = None, settings: Settings | None = None) -> None:
        self.paths = paths or resolve_paths()
        self.settings = settings if settings is not None else load_config(self.paths.config_file)
        self.paths.private_data_dir()
        self.contacts: ContactStore = open_store(
            self.settings.contacts.backend, contacts_path(self.paths, self.settings)
        )
        self.history = HistoryStore(
            self.paths.history_file, max_entries=self.settings.history.max_entries
        )
        self.dnd = bool(self._read_state().get("do_not_disturb", False))
        self.phone: Phone | None = None
        self.client: SignalingClient | None = None
        self.identity: Any = None  # the account's name and key while signed in
        self.account: str | None = None
        self.error = ""
        self.connecting = False
        self._stack: contextlib.AsyncExitStack | None = None
        # Called whenever status() may have changed (the TUI shows it from a reactive).
        self.on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------ state file
    @property
    def state_path(self) -> Path:
        return self.paths.data_dir / STATE_FILE

    def _read_state(self) -> dict[str, Any]:
        try:
            return tomllib.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            return {}

    def set_dnd(self, on: bool) -> None:
        """Do-not-disturb: incoming calls are answered ``busy`` before ringing."""
        self.dnd = on
        atomic_write_text(self.state_path, f"do_not_disturb = {'true' if on else 'false'}\n")
        self._changed()

    # ------------------------------------------------------------ status
    @property
    def embedded(self) -> bool:
        return not self.settings.server.url

    @property
    def has_account(self) -> bool:
        return has_account(self.paths, self.settings)

    @property
    def telemetry_server(self) -> str:
        """Where telemetry and feedback go: the configured server; "" for the
        embedded one (nothing is sent, as in the CLI)."""
        return "" if self.embedded else self.settings.server.url

    def status(self) -> Status:
        reachable: bool | None
        if self.client is not None and self.client.is_connected:
            reachable = True
        elif self.connecting:
            reachable = None
        else:
            reachable = False
        return Status(
            account=self.account,
            server="embedded" if self.embedded else self.settings.server.url,
            reachable=reachable,
            error=self.error,
            dnd=self.dnd,
        )

    # ------------------------------------------------------------ connecting
    async def connect(self) -> None:
        """Start the embedded server (no ``[server] url``) or reach the configured
        one, sign in when an account is configured, and make the phone."""
        import asyncio
        import importlib

        await self.disconnect()
        self.connecting = True
        self.error = ""
        self._changed()
        try:
            # Import the heavy modules off the event loop: the UI stays live.
            for name in ("hello_tui.call.engine", "hello_tui.call.embedded"):
                await asyncio.to_thread(importlib.import_module, name)
            await self._connect()
        except BaseException as exc:
            self.error = _one_line(exc)
            await self.disconnect()
            raise
        finally:
            self.connecting = False
            self._changed()

    async def _connect(self) -> None:
        from hello_tui.call.embedded import LOOPBACK, embedded_server
        from hello_tui.call.engine import CallOptions, Phone
        from hello_tui.call.peer import ice_servers
        from hello_tui.signaling.client import SignalingClient

        stack = contextlib.AsyncExitStack()
        self._stack = stack
        await stack.__aenter__()
        settings = self.settings
        url = settings.server.url
        if not url:
            url = (await stack.enter_async_context(embedded_server())).url
        timeout = settings.server.connect_timeout
        if self.embedded:  # in this process: nothing to reconnect to
            client = SignalingClient(connect_timeout=timeout, reconnect=None)
        else:
            client = SignalingClient(connect_timeout=timeout)
        stack.push_async_callback(client.close)
        await client.connect(url)
        self.client = client
        turn: list[Any] = []
        if self.has_account and not self.embedded:
            turn = await self._login(client)
        options = CallOptions(
            audio_in=settings.audio.input,
            audio_out=settings.audio.output,
            ice_servers=ice_servers(settings.ice, turn),
            host_addresses=LOOPBACK if self.embedded else None,
            identity=self.identity,
        )
        phone = Phone(client, options)
        # SHIM until the session layer (issue 12) attaches the history where it makes phones.
        from hello_tui.call.history_recorder import HistoryRecorder

        HistoryRecorder(self.history).attach(phone)
        phone.pins = self.pins
        phone.screen = self.screen_caller
        phone.name_of = self.name_of
        stack.push_async_callback(phone.close)
        phone.start()
        self.phone = phone

    async def _login(self, client: SignalingClient) -> list[Any]:
        """Sign in as the configured account; returns the TURN servers it was given."""
        from hello_tui.call.identity_proof import Identity
        from hello_tui.signaling.account_local import account_key

        name, key = account_key(self.paths, self.settings)
        turn = list((await client.login(name, key)).ice)
        self.account = name
        self.identity = Identity(name, key)
        self._changed()
        if self.phone is not None:  # calls from now on sign with it
            self.phone.options = replace(self.phone.options, identity=self.identity)
        return turn

    async def disconnect(self) -> None:
        stack, self._stack = self._stack, None
        self.phone = None
        self.client = None
        self.account = None
        self.identity = None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.__aexit__(None, None, None)
        self._changed()

    async def close(self) -> None:
        await self.disconnect()
        self.contacts.close()
        self.history.close()

    def reload_settings(self, settings: Settings) -> None:
        """New settings (saved by the settings screen): audio applies to the next call."""
        self.settings = settings
        if self.phone is not None:
            self.phone.options = replace(
                self.phone.options, audio_in=settings.audio.input, audio_out=settings.audio.output
            )
        self._changed()

    # ------------------------------------------------------------ calls
    @property
    def pins(self) -> KeyPins:
        """The account keys seen on calls (trust on first use: contacts/pins.py)."""
        return KeyPins.in_dir(self.paths.data_dir)

    def contact_for(self, caller: str) -> Contact | None:
        """The contact a caller's account name belongs to: by e-mail, else by an
        exact (folded) name."""
        if not caller:
            return None
        found = self.contacts.find_by_email(caller) if "@" in caller else None
        if found is not None:
            return found
        key = fold_key(caller)
        return next((c for c in self.contacts.all() if fold_key(c.name) == key), None)

    def screen_caller(self, caller: str) -> str | None:
        """Refuse before ringing: do-not-disturb and blocked contacts get ``busy``."""
        if self.dnd:
            return "busy"
        contact = self.contact_for(caller)
        if contact is not None and contact.blocked:
            return "busy"
        return None

    def name_of(self, caller: str) -> str:
        contact = self.contact_for(caller)
        return contact.name if contact is not None else caller

    def block_caller(self, caller: str) -> Contact:
        """Block the contact behind ``caller`` (added as a blocked contact if unknown)."""
        contact = self.contact_for(caller)
        if contact is not None:
            return self.contacts.set_blocked(contact.id, True)
        emails = [caller] if "@" in caller else []
        notes = "" if emails else f"account name: {caller}"
        return self.contacts.add(Contact(name=caller, emails=emails, notes=notes, blocked=True))

    def dial(self, to: str, *, peer: str | None = None, video: bool = False) -> Call:
        """Call ``to``; ``video``: with the ``[video]`` source and size."""
        if self.phone is None:
            raise RuntimeError(self.error or "not connected to a server yet")
        if not video:
            return self.phone.dial(to, peer=peer or to)
        v = self.settings.video
        return self.phone.dial(to, peer=peer or to, video_source=v.source, video_width=v.width,
                               video_height=v.height, video_fps=v.fps)  # fmt: skip

    def join(self, url: str, *, peer: str | None = None) -> Call:
        """Join a room by its URL (the existing call flow: ``Phone.join``)."""
        if self.phone is None:
            raise RuntimeError(self.error or "not connected to a server yet")
        return self.phone.join(url, peer=peer or "room")

    # ------------------------------------------------------------ rooms
    @property
    def rooms_path(self) -> Path:
        from hello_tui.signaling.rooms_local import rooms_file

        return rooms_file(self.paths.data_dir)

    def _server_client(self) -> SignalingClient:
        """The live client of a configured server (rooms and accounts need one)."""
        if self.embedded:
            raise NeedsServer(
                "rooms and accounts need a real server (the embedded one stops with the app): "
                "set Server URL in Settings"
            )
        if self.client is None:
            raise RuntimeError(self.error or "not connected to the server yet")
        return self.client

    async def list_rooms(self) -> list[Room]:
        from hello_tui.signaling.rooms_local import list_rooms

        return await list_rooms(self._server_client(), self.rooms_path)

    async def create_room(self, name: str) -> Room:
        from hello_tui.signaling.roomcrypt import check_name
        from hello_tui.signaling.rooms_local import create_room

        check_name(name)
        client = self._server_client()
        return await create_room(client, self.rooms_path, self.settings.server.url, name)

    async def rename_room(self, room: Room, name: str) -> None:
        from hello_tui.signaling.roomcrypt import check_name
        from hello_tui.signaling.rooms_local import rename_room, resolve

        check_name(name)
        token, key = resolve(self.rooms_path, room.url or room.token)
        if key is None:
            raise RuntimeError(f"no key for room {token} on this device: cannot encrypt a name")
        await rename_room(self._server_client(), self.rooms_path, token, key, name)

    async def delete_room(self, room: Room) -> None:
        from hello_tui.signaling.rooms_local import delete_room

        await delete_room(self._server_client(), self.rooms_path, room.token)

    # ------------------------------------------------------------ account
    async def register(self, name: str, invite: str = "") -> Registered:
        """Register ``name`` (a new key, saved; ``[account] name`` written), then
        sign in on the live connection."""
        from hello_tui.signaling.account_local import register

        client = self._server_client()
        done = await register(client, self.paths, self.settings, name.strip(), invite.strip())
        self.settings = done.settings
        await self._apply_login(client)
        return done

    async def _apply_login(self, client: SignalingClient) -> None:
        from hello_tui.call.peer import ice_servers

        turn = await self._login(client)
        if self.phone is not None:
            self.phone.options = replace(
                self.phone.options, ice_servers=ice_servers(self.settings.ice, turn)
            )

    async def sign_in(self, name: str) -> None:
        """Sign in as ``name`` with the key already on this device (after a sign
        out): ``[account] name`` is written only once the server accepted it."""
        from hello_tui.signaling.account_local import set_account_name

        client = self._server_client()
        saved = self.settings
        self.settings = msgspec.structs.replace(
            saved, account=msgspec.structs.replace(saved.account, name=name.strip())
        )
        try:
            await self._apply_login(client)
        except BaseException:
            self.settings = saved
            raise
        self.settings = set_account_name(self.paths, saved, name.strip())

    async def sign_out(self) -> None:
        """Clear ``[account] name`` (the key stays) and sign out on the live connection."""
        from hello_tui.signaling.account_local import sign_out

        self.settings = sign_out(self.paths, self.settings)
        client, self.account, self.identity = self.client, None, None
        if self.phone is not None:
            self.phone.options = replace(self.phone.options, identity=None)
        self._changed()
        if client is not None and client.is_connected and client.name:
            with contextlib.suppress(Exception):
                await client.logout()

    async def delete_account(self) -> None:
        """Delete the account on the server (signed in first if need be), then
        the local key and ``[account] name``."""
        from hello_tui.signaling.account_local import delete_account

        client = self._server_client()
        if not client.name:
            await self._login(client)
        self.settings = await delete_account(client, self.paths, self.settings)
        self.account = self.identity = None
        if self.phone is not None:
            self.phone.options = replace(self.phone.options, identity=None)
        self._changed()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
