"""What the TUI drives: the local stores and, once connected, a :class:`Phone`.

No Textual here. The connection itself (server configured or embedded, a
connected client, an optional login, call options from the config) is the
session layer's :class:`~hello_tui.session.connect.Session`, the same one
the CLI uses; this object keeps what the UI shows about it (:meth:`status`,
told through :attr:`Backend.on_change`) and the operations the screens call.
The heavy imports (aiortc, aiohttp, the server for the embedded default)
happen in :meth:`Backend.connect`, which the app runs in a worker after the
first paint, so the UI is interactive at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from hello_tui.config.loader import load_config
from hello_tui.config.paths import Paths, resolve_paths
from hello_tui.config.settings import Settings
from hello_tui.contacts.model import Contact
from hello_tui.contacts.pins import KeyPins
from hello_tui.contacts.store import ContactStore, open_store
from hello_tui.history.store import HistoryStore
from hello_tui.session.callers import Callers
from hello_tui.signaling.account_local import has_account
from hello_tui.util.atomic import atomic_write_text

if TYPE_CHECKING:
    from hello_tui.call.engine import Call, Phone
    from hello_tui.session.connect import Session
    from hello_tui.signaling.account_local import Registered
    from hello_tui.signaling.client import ReconnectPolicy, SignalingClient
    from hello_tui.signaling.rooms_local import Room

STATE_FILE = "tui-state.toml"  # front-end state that has no config key (do-not-disturb)


@dataclass(frozen=True, slots=True)
class Status:
    """What the status line shows: the connection as the client last told it."""

    account: str | None  # signed in as; None: anonymous
    server: str  # "embedded" or the URL
    link: str  # "connecting" | "online" | "reconnecting" | "offline"
    error: str  # why not online (the last failure), "" when online
    dnd: bool
    retry_at: float | None = None  # time.monotonic() of the next attempt (reconnecting)

    @property
    def reachable(self) -> bool | None:
        """True online, None connecting, False otherwise."""
        return {"online": True, "connecting": None}.get(self.link, False)

    def retry_in(self, now: float) -> int | None:
        """Whole seconds until the next attempt (rounded up), if one is planned."""
        if self.retry_at is None:
            return None
        return max(0, math.ceil(self.retry_at - now))


# Failures worth trying again (the server is down or the network is): anything
# else (a refused login, not a hello-tui server, a bad URL) stays offline until
# the user acts (r, or Settings).
TRANSIENT = ("ServerUnreachable", "RequestTimeout", "ConnectionLost", "NotConnected")


class NeedsServer(RuntimeError):
    """Rooms and accounts need a configured server (the embedded one dies with the app)."""


def contacts_path(paths: Paths, settings: Settings) -> Path:
    return paths.contacts_location(settings.contacts.backend, settings.contacts.path)


class Backend:
    """The local stores, the server connection and the phone of one TUI run.

    ``on_change`` is called (on the event loop) whenever :meth:`status` may
    read differently: connecting, connected, failed, signed in or out, server
    lost or back, do-not-disturb switched.
    """

    def __init__(self, paths: Paths | None = None, settings: Settings | None = None) -> None:
        self.paths = paths or resolve_paths()
        self.settings = settings if settings is not None else load_config(self.paths.config_file)
        from hello_tui.media.devices import set_backend  # stdlib only: no audio stack loads

        set_backend(self.settings.audio.backend)
        self.paths.private_data_dir()
        self.contacts: ContactStore = open_store(
            self.settings.contacts.backend, contacts_path(self.paths, self.settings)
        )
        self.history = HistoryStore(
            self.paths.history_file, max_entries=self.settings.history.max_entries
        )
        state = self._read_state()
        self.dnd = bool(state.get("do_not_disturb", False))
        # Missed calls after this time are marked in the History tab until it is seen.
        seen = state.get("history_seen", 0.0)
        self.history_seen = float(seen) if isinstance(seen, (int, float)) else 0.0
        self.callers = Callers(store=self.contacts, dnd=lambda: self.dnd)
        self.session: Session | None = None
        self.error = ""
        self.link = "offline"  # see Status.link
        self.retry_at: float | None = None
        # The backoff between attempts (start-up and after a drop); None: the client's.
        self.retry_policy: ReconnectPolicy | None = None
        self._rng = random.Random()
        self._relogin: asyncio.Task[None] | None = None  # signing in again after a reconnect
        self.on_change: Callable[[], None] | None = None
        # The terminal bell for call sounds when there is no sound output (the app's).
        self.bell: Callable[[], None] | None = None

    def contacts_stamp(self) -> tuple[tuple[int, int, int], ...]:
        """The contacts file as last written (mtime, size, inode; and an SQLite
        store's WAL): another process (the CLI) editing the store changes it."""
        path = contacts_path(self.paths, self.settings)
        stamps = []
        for p in (path, path.with_name(path.name + "-wal")):
            try:
                st = p.stat()
            except OSError:
                stamps.append((0, 0, 0))
            else:
                stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # ------------------------------------------------------------ the session's parts
    @property
    def phone(self) -> Phone | None:
        return self.session.phone if self.session is not None else None

    @property
    def client(self) -> SignalingClient | None:
        return self.session.client if self.session is not None else None

    @property
    def account(self) -> str | None:
        return self.session.account if self.session is not None else None

    @property
    def identity(self) -> Any:
        """The account's name and key while signed in."""
        return self.session.identity if self.session is not None else None

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
        self._write_state()
        self._changed()

    def mark_history_seen(self, when: float) -> None:
        """The History tab was shown: missed calls up to ``when`` are no longer new."""
        self.history_seen = max(self.history_seen, when)
        self._write_state()

    def _write_state(self) -> None:
        atomic_write_text(
            self.state_path,
            f"do_not_disturb = {'true' if self.dnd else 'false'}\n"
            f"history_seen = {self.history_seen!r}\n",
        )

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

    @property
    def online(self) -> bool:
        return self.link == "online"

    @property
    def connecting(self) -> bool:
        return self.link == "connecting"

    def status(self) -> Status:
        # Not online: the account this profile signs in as (the line says who is
        # connecting, or who could not sign in), not "anonymous".
        configured = self.settings.account.name if self.has_account else None
        return Status(
            account=self.account if self.link == "online" else self.account or configured,
            server="embedded" if self.embedded else self.settings.server.url,
            link=self.link,
            error="" if self.link == "online" else self.error,
            dnd=self.dnd,
            retry_at=self.retry_at if self.link == "reconnecting" else None,
        )

    def _set_link(self, link: str, error: str | None = None, delay: float | None = None) -> None:
        self.link = link
        if error is not None:
            self.error = error
        self.retry_at = None if delay is None else time.monotonic() + delay
        self._changed()

    def _connection(self, up: bool) -> None:
        """The client's Disconnected / Reconnected (through the phone)."""
        if not up:
            if self.link != "reconnecting":  # on_retry may have told the wait already
                self._set_link("reconnecting", self.error or "connection lost")
            return
        session, client = self.session, self.client
        if session is not None and client is not None and session.account and not client.name:
            # Back, but the client's automatic re-login failed: not "online as NAME"
            # (nobody can call us). Sign in again here, where the failure has a type.
            self._set_link("connecting", "signing in again")
            if self._relogin is None or self._relogin.done():
                self._relogin = asyncio.get_running_loop().create_task(self._sign_in_again())
            return
        self._set_link("online", "")

    async def _sign_in_again(self) -> None:
        """After a failed re-login: retried with the backoff while the failure is
        transient; a refusal (unknown account, bad key) stays offline with the
        server's reason until the user acts (r, Settings)."""
        from hello_tui.signaling.account_local import explain
        from hello_tui.signaling.client import ReconnectPolicy

        policy = self.retry_policy or ReconnectPolicy()
        attempt = 0
        while (session := self.session) is not None and self.link != "online":
            try:
                await session.sign_in()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                why = f"sign-in refused: {explain(exc)}"
                if type(exc).__name__ not in TRANSIENT:
                    session.signed_out()  # calls are not signed with a refused account
                    self._set_link("offline", why)
                    return
                delay = policy.delay(attempt, self._rng)
                attempt += 1
                self._set_link("reconnecting", why, delay)
                await asyncio.sleep(delay)
            else:
                self._set_link("online", "")

    def _retrying(self, delay: float, reason: str) -> None:
        self._set_link("reconnecting", reason, delay)

    async def connect_until_up(self) -> None:
        """:meth:`connect`, tried again with the client's backoff and jitter while
        the server cannot be reached (a TUI started before its server); other
        failures (a refused login, a bad URL) raise at once."""
        from hello_tui.signaling.client import ReconnectPolicy

        policy = self.retry_policy or ReconnectPolicy()
        attempt = 0
        while True:
            try:
                await self.connect()
                return
            except Exception as exc:
                if self.embedded or type(exc).__name__ not in TRANSIENT:
                    raise
                reason = getattr(exc, "reason", "") or _one_line(exc)
            delay = policy.delay(attempt, self._rng)
            attempt += 1
            self._set_link("reconnecting", reason, delay)
            await asyncio.sleep(delay)

    # ------------------------------------------------------------ connecting
    async def connect(self) -> None:
        """Start the embedded server (no ``[server] url``) or reach the configured
        one, sign in when an account is configured, and make the phone."""
        import asyncio
        import importlib

        await self.disconnect()
        self._set_link("connecting")
        try:
            # Import the heavy modules off the event loop: the UI stays live.
            for name in ("hello_tui.call.engine", "hello_tui.session.embedded"):
                await asyncio.to_thread(importlib.import_module, name)
            from hello_tui.session.connect import Session

            self.session = Session(
                self.paths,
                self.settings,
                reconnect=True,
                history=self.history,
                callers=self.callers,
                policy=self.retry_policy,
                face="tui",
                sounds=True,  # [sounds] says which (session/sounds.py)
            )
            self.session.bell = lambda: self.bell() if self.bell is not None else None
            self.session.on_connection = self._connection
            self.session.on_retry = self._retrying
            await self.session.open()
        except BaseException as exc:
            self.error = _one_line(exc)
            await self.disconnect()
            self._set_link("offline")
            raise
        self._set_link("online", "")

    async def disconnect(self) -> None:
        if self._relogin is not None:
            self._relogin.cancel()
            self._relogin = None
        session, self.session = self.session, None
        if session is not None:
            session.on_connection = session.on_retry = None
            with contextlib.suppress(Exception):
                await session.close()
            self._set_link("offline")

    async def close(self) -> None:
        await self.disconnect()
        self.contacts.close()
        self.history.close()

    def reload_settings(self, settings: Settings) -> None:
        """New settings (saved by the settings screen): audio applies to the next
        call; telemetry switched off leaves no call report waiting."""
        from hello_tui.telemetry.consent import enforce_off
        from hello_tui.telemetry.store import TelemetryStore

        self.settings = settings
        from hello_tui.media.devices import set_backend

        set_backend(settings.audio.backend)  # the next stream opened uses it
        if self.session is not None:
            self.session.reload(settings)
        enforce_off(TelemetryStore(self.paths.data_dir), settings)
        self._changed()

    # ------------------------------------------------------------ calls
    @property
    def pins(self) -> KeyPins:
        """The account keys seen on calls (trust on first use: contacts/pins.py)."""
        return KeyPins.in_dir(self.paths.data_dir)

    def contact_for(self, caller: str) -> Contact | None:
        return self.callers.contact_for(caller)

    def screen_caller(self, caller: str) -> str | None:
        return self.callers.screen(caller)

    def name_of(self, caller: str) -> str:
        return self.callers.name_of(caller)

    def block_caller(self, caller: str) -> Contact:
        return self.callers.block(caller)

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

        return await list_rooms(self._server_client(), self.rooms_path, self.settings.server.url)

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
    def _live_session(self) -> Session:
        self._server_client()  # a configured server, connected
        assert self.session is not None
        return self.session

    async def register(self, name: str, invite: str = "") -> Registered:
        """Register ``name`` (a new key, saved; ``[account] name`` written), then
        sign in on the live connection."""
        from hello_tui.signaling.account_local import register

        session = self._live_session()
        assert session.client is not None
        done = await register(
            session.client, self.paths, self.settings, name.strip(), invite.strip()
        )
        self.settings = done.settings
        await session.sign_in(self.settings)
        self._changed()
        return done

    async def sign_in(self, name: str) -> None:
        """Sign in as ``name`` with the key already on this device (after a sign
        out): ``[account] name`` is written only once the server accepted it."""
        from hello_tui.signaling.account_local import set_account_name

        session = self._live_session()
        trying = msgspec.structs.replace(
            self.settings, account=msgspec.structs.replace(self.settings.account, name=name.strip())
        )
        await session.sign_in(trying)
        self.settings = set_account_name(self.paths, self.settings, name.strip())
        self._changed()

    async def sign_out(self) -> None:
        """Clear ``[account] name`` (the key stays) and sign out on the live connection."""
        from hello_tui.signaling.account_local import sign_out

        self.settings = sign_out(self.paths, self.settings)
        client = self.client
        if self.session is not None:
            self.session.signed_out()
        self._changed()
        if client is not None and client.is_connected and client.name:
            with contextlib.suppress(Exception):
                await client.logout()

    async def delete_account(self) -> None:
        """Delete the account on the server (signed in first if need be), then
        the local key and ``[account] name``."""
        from hello_tui.signaling.account_local import delete_account

        session = self._live_session()
        client = self._server_client()
        if not client.name:
            await session.sign_in(self.settings)
        self.settings = await delete_account(client, self.paths, self.settings)
        session.signed_out()
        self._changed()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
