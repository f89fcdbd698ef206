"""Settings → a connected phone, for both faces.

:class:`Session` does what the CLI's call commands and the TUI's backend both
need: the server (``--server``, else ``[server] url``, else the embedded
default on loopback), a connected :class:`SignalingClient`, a login when an
account is configured (its identity signs our calls, its TURN servers join
``[ice]``), the call options and a started :class:`Phone` with the key pins,
the caller hooks and the history. Closing it hangs up, stops the phone,
closes the client and stops the embedded server, in that order.

The face keeps what is its own: the CLI its printer, arguments and exit
codes; the TUI its status line. Heavy imports happen in :meth:`Session.open`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import importlib
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from hello_tui.session.options import call_options

# The address book's module per [contacts] backend (contacts/store.py, open_store).
STORE_MODULES = {
    "toml": "hello_tui.contacts.toml_store",
    "sqlite": "hello_tui.contacts.sqlite_store",
}
GC_ENV = "HELLO_GC"  # "default": no gc.freeze at start-up (A/B runs; the server's knob too)
# gc.freeze belongs to a process's start-up: once a call has started in this process,
# or its first session has closed (a TUI reconnecting, a test worker's next test), a
# freeze would also make earlier calls' uncollected cycles permanent, streams with
# native callback threads among them (alive at exit, they crashed a test worker).
_start_up_over = False

if TYPE_CHECKING:
    from hello_tui.call.engine import Phone
    from hello_tui.call.identity_proof import Identity
    from hello_tui.config.paths import Paths
    from hello_tui.config.settings import Settings
    from hello_tui.history.store import HistoryStore
    from hello_tui.session.callers import Callers
    from hello_tui.session.control import ControlServer
    from hello_tui.session.sounds import CallSounds
    from hello_tui.signaling.client import ReconnectPolicy, SignalingClient

__all__ = ["Session"]


def _import_book(module: str) -> None:
    with contextlib.suppress(Exception):  # met again, and told, when the book is opened
        importlib.import_module(module)


class Session:
    """One connection of one face: server, client, login, phone.

    ``server_url``: overrides ``[server] url`` (``--server``); neither set
    means the embedded server. ``login``: None signs in when an account is
    configured and the server is not the embedded one (which knows no
    accounts). ``reconnect``: reconnect to a configured server after a drop
    (never to the embedded one: it lives in this process). ``history``: the
    store calls are written to; None opens one for the session's life.
    ``on_connection`` is told when the server is lost (False) or back (True),
    ``on_retry`` before each reconnect attempt (the wait, the last reason).
    ``policy``: the reconnect backoff (default: the client's).
    """

    def __init__(
        self,
        paths: Paths,
        settings: Settings,
        *,
        server_url: str | None = None,
        login: bool | None = None,
        reconnect: bool = False,
        audio_in: str | None = None,
        audio_out: str | None = None,
        video_source: str | None = None,
        video_out: str | None = None,
        history: HistoryStore | None = None,
        callers: Callers | None = None,
        policy: ReconnectPolicy | None = None,
        face: str = "",
        sounds: bool = False,
    ) -> None:
        from hello_tui.signaling.account_local import has_account

        self.paths = paths
        self.settings = settings
        self.url: str = server_url or settings.server.url or ""  # "": the embedded server
        self.embedded = not self.url
        self.login = (
            (has_account(paths, settings) and not self.embedded) if login is None else login
        )
        self.reconnect = reconnect and not self.embedded
        self.policy = policy  # the reconnect backoff; None: the client's default
        self.media = {"audio_in": audio_in, "audio_out": audio_out,
                      "video_source": video_source, "video_out": video_out}  # fmt: skip
        self.history = history
        self.callers = callers
        self.client: SignalingClient | None = None
        self.phone: Phone | None = None
        self.account: str | None = None  # signed in as; None: anonymous
        self.identity: Identity | None = None
        self.on_connection: Callable[[bool], None] | None = None
        # Before each reconnect attempt: (seconds until it, why the last one failed).
        self.on_retry: Callable[[float, str], None] | None = None
        self.face = face  # who this process is in `hello-tui ctl list` ("tui", "answer")
        self.control: ControlServer | None = None  # the control socket, if one listens
        # Call sounds (session/sounds.py) when ``sounds`` and ``[sounds] enabled``;
        # ``bell``: the face's terminal bell, for when there is no sound output.
        self.sounds = sounds
        self.bell: Callable[[], None] | None = None
        self.call_sounds: CallSounds | None = None
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Phone:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> Phone:
        """Connect (and sign in); returns the started phone. On failure what was
        opened is closed again and the error propagates."""
        await self.close()
        self._stack = contextlib.AsyncExitStack()
        await self._stack.__aenter__()
        try:
            return await self._open(self._stack)
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to tell
                await self.close()
            raise

    async def _open(self, stack: contextlib.AsyncExitStack) -> Phone:
        # Before the call stack's imports (~0.5-1 s): PortAudio's start-up runs
        # alongside them, not alongside the sign-in only (a CLI call dials right
        # after it, and its devices then waited for the rest of the warm-up).
        self._warm_audio(stack)
        self._warm_call(stack)
        from hello_tui.call.engine import Phone
        from hello_tui.call.history_recorder import HistoryRecorder
        from hello_tui.contacts.pins import KeyPins
        from hello_tui.signaling.client import SignalingClient

        url = self.url
        if self.embedded:
            from hello_tui.session.embedded import embedded_server

            url = (await stack.enter_async_context(embedded_server())).url
        timeout = self.settings.server.connect_timeout
        if self.reconnect:
            client = SignalingClient(connect_timeout=timeout)
            if self.policy is not None:
                client.reconnect_policy = self.policy
            client.on_retry = self._retrying
        else:
            client = SignalingClient(connect_timeout=timeout, reconnect=None)
        stack.push_async_callback(client.close)
        await client.connect(url)
        self.client = client
        turn = await self._login(client) if self.login else []
        self._show_as()
        history = self.history
        if history is None:
            history = self._open_history()
            stack.callback(history.close)
        options = call_options(
            self.settings,
            embedded=self.embedded,
            turn=turn,
            identity=self.identity,
            **self.media,
        )
        phone = Phone(client, options)
        HistoryRecorder(history).attach(phone)  # before any call: records precede Ended readers
        phone.pins = KeyPins.in_dir(self.paths.data_dir)
        if self.callers is not None:
            phone.screen = self.callers.screen
            phone.name_of = self.callers.name_of
        phone.on_connection = self._connection_changed
        if self.sounds:
            self._add_sounds(phone, stack)
        if self.settings.control.socket:  # closed after the phone: clients see the Ended
            await self._listen(phone, stack)
        stack.push_async_callback(phone.close)
        stack.callback(_end_start_up)  # later sessions of this process freeze nothing
        phone.start()
        self.phone = phone
        self._freeze_start_up()
        return phone

    async def _listen(self, phone: Phone, stack: contextlib.AsyncExitStack) -> None:
        """The local control socket (hello_tui.session.control); a call works without."""
        from hello_tui.session.control import ControlServer

        control = ControlServer(phone, face=self.face)
        try:
            await control.start()
        except OSError as exc:
            import logging

            logging.getLogger(__name__).warning("no control socket: %s", exc)
            return
        stack.push_async_callback(control.close)
        self.control = control

    def _warm_audio(self, stack: contextlib.AsyncExitStack) -> None:
        """Sound devices in this session's calls: load PortAudio (and the processing
        stage) in a worker thread while connecting, not on the first call's path."""
        from hello_tui.media.warmup import uses_devices, warm_audio_stack

        audio = self.settings.audio
        endpoints = (self.media["audio_in"] or audio.input, self.media["audio_out"] or audio.output)
        if not uses_devices(endpoints):
            return
        processing = audio.aec not in (False, "off") or audio.noise_suppression or audio.auto_gain
        # Submitted now (run_in_executor, not a to_thread task that would start only
        # once the loop runs again, after the imports that follow).
        task = asyncio.get_running_loop().run_in_executor(
            None, functools.partial(warm_audio_stack, processing=processing)
        )
        task.add_done_callback(lambda _: self._freeze_start_up())
        stack.push_async_callback(lambda: asyncio.wait({task}))  # no thread left behind

    def _warm_call(self, stack: contextlib.AsyncExitStack) -> None:
        """The call stack's first-use costs (DTLS certificate and handshake, Opus)
        in a worker thread now, while importing and signing in (``media/warmup.py``);
        with callers to screen and name, the address book's module too (imported
        at the first ``incoming`` otherwise: ~1-1.5 ms before the callee rings)."""
        from hello_tui.media.warmup import warm_call_stack

        book = STORE_MODULES[self.settings.contacts.backend] if self.callers is not None else None

        def warm() -> None:
            warm_call_stack()
            if book is not None:  # screening and naming a caller open the address book
                _import_book(book)

        task = asyncio.get_running_loop().run_in_executor(None, warm)
        task.add_done_callback(lambda _: self._freeze_start_up())
        stack.push_async_callback(lambda: asyncio.wait({task}))  # no thread left behind

    def _freeze_start_up(self) -> None:
        """Move what the start-up built (the imports' ~10^5 objects, the warm-ups')
        to the permanent generation (``gc.freeze``), so the young collections a
        call's setup triggers walk only what the call allocates: unfrozen, a
        generation-1 collection met on the path to first audio paused the loop
        2.5-5 ms (docs/media.md, "Where setup time goes", session 9). At the
        phone's start and again as each warm-up thread ends, but only while no
        call is live: a live call's objects (aiortc's reference cycles) frozen
        would never be collected. No ``gc.collect()`` first (tens of ms before
        the dial); the little cyclic garbage of the imports stays. Once per
        process: not after its first call started or its first session closed
        (``_start_up_over``). ``HELLO_GC=default`` leaves the collector alone
        (as for the server)."""
        global _start_up_over
        if os.environ.get(GC_ENV, "") == "default" or _start_up_over:
            return
        phone = self.phone
        if phone is None or phone.live:
            return
        if phone.calls_started:  # this process has had a call: start-up is over
            _start_up_over = True
            return
        gc.freeze()

    def _add_sounds(self, phone: Phone, stack: contextlib.AsyncExitStack) -> None:
        from hello_tui.session.sounds import CallSounds

        callers = self.callers
        sounds = CallSounds(
            self.settings.sounds,
            quiet=callers.dnd if callers is not None else lambda: False,
            bell=lambda: self.bell() if self.bell is not None else None,
        )
        phone.listeners.append(sounds)
        stack.push_async_callback(sounds.close)
        self.call_sounds = sounds

    def _open_history(self) -> HistoryStore:
        from hello_tui.history.store import HistoryStore

        self.paths.private_data_dir()
        return HistoryStore(self.paths.history_file, max_entries=self.settings.history.max_entries)

    def _retrying(self, delay: float, reason: str) -> None:
        if self.on_retry is not None:
            self.on_retry(delay, reason)

    def _connection_changed(self, up: bool) -> None:
        if self.on_connection is not None:
            self.on_connection(up)

    async def close(self) -> None:
        """Hang up, stop the phone, close the client (and the embedded server)."""
        stack, self._stack = self._stack, None
        self.phone = None
        self.client = None
        self.control = None
        self.call_sounds = None
        self.account = None
        self.identity = None
        if stack is not None:
            await stack.__aexit__(None, None, None)

    # ------------------------------------------------------------ the account
    async def _login(self, client: SignalingClient) -> list[Any]:
        """Sign in as the configured account; returns the TURN servers it was given."""
        from hello_tui.call.identity_proof import Identity
        from hello_tui.signaling.account_local import account_key

        name, key = account_key(self.paths, self.settings)
        turn = list((await client.login(name, key)).ice)
        self.account = name
        self.identity = Identity(name, key)
        self._show_as()
        return turn

    def _show_as(self) -> None:
        """Rooms: the profile's display name, else the account's where signed in."""
        if self.client is not None:
            shown = self.settings.account.display_name or (self.account or "")
            self.client.display_name = shown

    async def sign_in(self, settings: Settings | None = None) -> None:
        """Sign in on the live connection as the account of ``settings`` (default:
        the session's); calls from now on sign with it and use its TURN servers."""
        from hello_tui.call.peer import ice_servers

        if self.client is None:
            raise RuntimeError("not connected to the server yet")
        saved = self.settings
        self.settings = settings or saved
        try:
            turn = await self._login(self.client)
        except BaseException:
            self.settings = saved
            raise
        self.set_options(identity=self.identity, ice_servers=ice_servers(self.settings.ice, turn))

    def signed_out(self) -> None:
        """The account is gone from this connection: calls are anonymous again."""
        self.account = None
        self.identity = None
        self.set_options(identity=None)
        self._show_as()

    # ------------------------------------------------------------ settings
    def set_options(self, **changes: Any) -> None:
        """The phone's options for the next calls, with ``changes`` (a new object)."""
        if self.phone is not None:
            self.phone.options = replace(self.phone.options, **changes)

    def reload(self, settings: Settings) -> None:
        """New settings: the audio devices apply to the next call."""
        self.settings = settings
        self.set_options(audio_in=settings.audio.input, audio_out=settings.audio.output)
        if self.call_sounds is not None:
            self.call_sounds.settings = settings.sounds


def _end_start_up() -> None:
    global _start_up_over
    _start_up_over = True
