"""The Textual app: ``hello-tui`` with no command, on a TTY.

Opens on the main screen at once; the server connection (the embedded
default, or ``[server] url`` with the account signed in) is made in a worker.
Incoming calls are awaited in another worker and prompted over whatever
screen is open.

The app owns the backend, calls and the connection; screens get what they
show passed down (the backend) and send requests up as messages
(``tui/messages.py``). What the status line shows is the ``status`` reactive,
set when the backend says it changed (``Backend.on_change``).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from typing import Any, ClassVar, NamedTuple

from rich.console import Console
from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.dom import DOMNode
from textual.markup import escape
from textual.reactive import var
from textual.screen import Screen

from hello_tui.config.paths import Paths
from hello_tui.config.settings import Settings
from hello_tui.contacts.model import Contact
from hello_tui.tui.backend import Backend, Status
from hello_tui.tui.feedback import Feedback, record_feedback
from hello_tui.tui.messages import AccountChanged, CallContact, Dial, JoinRoom
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.text import printable


class HelloApp(App[None]):
    """hello-tui: contacts, calls with a live quality panel, settings."""

    TITLE = "hello-tui"
    CSS_PATH = "styles.tcss"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),  # asks during a call
        Binding("question_mark", "keys", "Help"),
        # Both keys here: with any binding to command_palette Textual no longer
        # adds its own ctrl+p (the status line's "^p commands" would do nothing). The
        # footers leave it out (show_command_palette=False): the status line says it.
        Binding("ctrl+p,f1", "command_palette", "Commands", show=False, priority=True),
    ]

    # What the status lines show (widgets.status.StatusLine watches it).
    status: var[Status] = var(Status(None, "embedded", "connecting", "", False))

    def __init__(
        self,
        paths: Paths | None = None,
        settings: Settings | None = None,
        *,
        connect: bool = True,
        ring_bell: bool | None = None,
        ring_output: str | None = None,
        start_echo: bool = False,
    ) -> None:
        super().__init__()
        self.backend = Backend(paths, settings)
        self.auto_connect = connect
        # `hello-tui --echo` (and `./dev.sh run`): a newcomer hears themselves at once.
        self.start_echo = start_echo
        self.ring_bell = ring_bell  # None: ring the bell when there is no output device
        # Where the ring tone plays (an audio-sink spec; tests pass `file:`). None: on
        # `device:` when there is an output device, else the bell (unless ring_bell=False).
        self.ring_output = ring_output
        self.ringer: Any = None  # the last incoming call's Ringer (stopped once answered)
        self.in_call = False
        self.last_call: Any = None
        self.last_dial: LastDial | None = None  # how the last outgoing call was placed (Retry)
        self.call_server = ""  # the server the current/last call went through ("" embedded)
        self.ready = asyncio.Event()  # set once the backend connected (or failed)
        self.set_reactive(HelloApp.status, self.backend.status())

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: Any = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification (screens' too: ``Widget.notify`` calls this) is plain
        text: messages carry callers' and contacts' names and servers' errors.
        On the call screen it joins the call's notice list instead of a toast,
        which could cover the check code."""
        add_notice = getattr(self.screen, "add_notice", None) if self.screen_stack else None
        if add_notice is not None:
            # The title (often a caller's name: any length) is cut short, so it can
            # never push the message itself out of the line.
            text = printable(message, 1000)
            add_notice(f"{printable(title, 60)}: {text}" if title else text)
            return
        super().notify(
            printable(message, 1000),
            title=printable(title, 200),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    # ------------------------------------------------------------ life
    def on_mount(self) -> None:
        self.backend.on_change = self.backend_changed
        self.backend.bell = self._sound_bell
        self.push_screen(MainScreen(self.backend))
        self.screen_change_signal.subscribe(self, lambda _: self.call_after_refresh(self.on_resize))
        if self.auto_connect:
            self.action_retry()

    def _sound_bell(self) -> None:
        """A call sound's stand-in when there is no output (not when the bell is off)."""
        if self.ring_bell is not False:
            self.bell()

    async def on_unmount(self) -> None:
        self.backend.on_change = None
        self.backend.bell = None
        await self.backend.close()

    def backend_changed(self) -> None:
        """Watchers run only when the value differs (``Status`` compares by value)."""
        self.status = self.backend.status()

    # ------------------------------------------------------------ server
    def action_retry(self) -> None:
        self.ready.clear()
        self.connect_backend()

    @work(exclusive=True, group="backend", exit_on_error=False)
    async def connect_backend(self) -> None:
        try:
            await self.backend.connect_until_up()  # retried while the server is down
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.notify(
                f"Cannot connect to the server: {self.backend.error or exc}. "
                "Press r to retry, or s to change the server in Settings.",
                severity="error",
                timeout=8,
            )
        else:
            if self.backend.phone is not None:
                self.backend.phone.on_missed = self.missed_call
                from hello_tui.tui.screens.room_waiting import install  # "someone is waiting"

                install(self)
            if self.backend.account:
                self.receive_calls()
            if self.backend.telemetry_server:
                self.send_telemetry()  # what earlier runs left queued
            if self.start_echo:
                self.start_echo = False
                self.action_echo()
        finally:
            self.ready.set()

    def missed_call(self, name: str) -> None:
        """Someone called while a call was on: they heard busy; the user hears
        who it was (the history has it too)."""
        self.notify(f"Missed call from {name}: you were in a call", timeout=10, markup=False)

    @work(exclusive=True, group="incoming", exit_on_error=False)
    async def receive_calls(self) -> None:
        phone = self.backend.phone
        while phone is not None and phone is self.backend.phone:
            call = await phone.next_incoming()
            if self.in_call:  # one call at a time: the second caller hears busy
                await call.reject("busy")
                continue
            await self.prompt_incoming(call)

    async def prompt_incoming(self, call: Any) -> None:
        from hello_tui.tui.screens.incoming import IncomingCall

        caller = call.caller
        # Not the contact's photo for a key that differs from the pinned one.
        shown = getattr(call, "contact_shown", True)
        contact = self.backend.contact_for(caller) if shown else None
        photo = self.backend.contacts.photo_bytes(contact) if contact else None
        ringer = await self._start_ringing()
        # No tone (no output device, or it could not be opened): the terminal bell.
        bell = ringer is None and self.ring_bell is not False
        try:
            choice = await self.push_screen_wait(IncomingCall(call, photo=photo, bell=bell))
        finally:
            if ringer is not None:
                await ringer.stop()
        if choice in ("accept", "video") and call.ended is None:
            await self._accept(call, video=choice == "video")
            self.show_call(call, photo)
        elif choice in ("decline", "block"):
            await call.reject("rejected")
            if choice == "block" and caller:
                blocked = self.backend.block_caller(caller)
                self.notify(f"Declined and blocked {blocked.name}")
                self._refresh_main()
            else:
                self.notify(f"Declined the call from {call.peer}")
        elif choice == "gone":
            self.notify(f"Missed call from {call.peer}")
            self._refresh_main()

    async def _start_ringing(self) -> Any:
        """The ring tone on ``ring_output`` (or ``device:`` when there is an output
        device and the bell is not forced); None: nothing plays (the bell may)."""
        spec = self.ring_output
        if spec is None and self.ring_bell is None:
            spec = "device:" if await asyncio.to_thread(_has_output_device) else None
        if spec is None:
            return None
        from hello_tui.media.ring import Ringer

        try:
            self.ringer = await Ringer.open(spec)
        except Exception as exc:  # no usable device after all: the bell rings instead
            self.log.warning(f"ring tone on {spec}: {exc!r}")
            return None
        return self.ringer

    async def _accept(self, call: Any, *, video: bool) -> None:
        """Answer; with ``video`` the ``[video]`` source and size (a camera that
        cannot be opened falls back, and the call screen shows the notice)."""
        if not video:
            await call.accept()
            return
        v = self.backend.settings.video
        await call.accept(replace(call.options, video_source=v.source, video_width=v.width,
                                  video_height=v.height, video_fps=v.fps))  # fmt: skip

    @on(AccountChanged)
    def _account_changed(self) -> None:
        """Signed in: wait for calls; signed out or deleted: stop."""
        if self.backend.account:
            self.receive_calls()
        else:
            self.workers.cancel_group(self, "incoming")

    # ------------------------------------------------------------ calls
    def action_echo(self) -> None:
        self.place_call("echo", "echo")

    def action_echo_video(self) -> None:
        self.place_call("echo", "echo", video=True)

    @on(CallContact)
    def _call_contact(self, message: CallContact) -> None:
        self.call_contact(message.contact, video=message.video)

    @on(JoinRoom)
    def _join_room(self, message: JoinRoom) -> None:
        self.join_room(message.url, message.name)

    @on(Dial)
    def _dial(self, message: Dial) -> None:
        self.dial(message.text)

    def dial(self, text: str) -> None:
        """Dial anything: echo, a room URL (joined), a contact, an account name."""
        from hello_tui.tui.dial import resolve

        try:
            target = resolve(text, self.backend.contacts)
        except ValueError as exc:
            self.notify(f"Cannot dial that: {exc}", severity="warning")
            return
        if target.kind == "echo":
            self.action_echo()
        elif target.kind == "room":
            self.join_room(target.value)
        elif target.contact is not None:
            self.call_contact(target.contact)
        else:
            self.place_call(target.value, target.value)

    def call_contact(self, contact: Contact, *, video: bool = False) -> None:
        if contact.blocked:
            self.notify(f"{contact.name} is blocked: unblock them (b) to call", severity="warning")
            return
        if not contact.emails:
            self.notify(f"{contact.name} has no e-mail to call: add one (E)", severity="warning")
            return
        photo = self.backend.contacts.photo_bytes(contact)
        self.place_call(contact.emails[0], contact.name, photo, video=video)

    def _can_start(self, verb: str) -> bool:
        """Whether a call or a room can start now; if not, the notification says why."""
        if self.in_call:
            self.notify("Already in a call", severity="warning")
            return False
        if self.backend.phone is None or not self.backend.online:
            # At once, with the reason: never a call left "Calling…" on a dead line.
            status = self.backend.status()
            why = status.error or ("still connecting to the server" if status.link ==
                                   "connecting" else "not connected to the server")  # fmt: skip
            secs = status.retry_in(time.monotonic())
            then = f" (retrying in {secs}s)" if secs is not None else ". Press r to retry"
            self.notify(f"Cannot {verb}: offline: {why}{then}.", severity="warning")
            return False
        return True

    def place_call(
        self, to: str, shown: str, photo: bytes | None = None, *, video: bool = False
    ) -> None:
        if not self._can_start("call"):
            return
        # "Video on by default" ([video] enabled) makes every call a video call.
        video = video or self.backend.settings.video.enabled
        self.last_dial = LastDial(to, shown, photo, video)
        try:
            call = self.backend.dial(to, peer=shown, video=video)
        except Exception as exc:
            self.notify(f"Cannot call {shown}: {exc}", severity="error")
            return
        self.show_call(call, photo)

    def join_room(self, url: str, name: str = "") -> None:
        """Join a room by URL through the same flow as a call (``Phone.join``)."""
        if not self._can_start("join"):
            return
        try:
            call = self.backend.join(url, peer=name or "room")
        except Exception as exc:
            self.notify(f"Cannot join the room: {exc}", severity="error")
            return
        self.show_call(call)

    def show_call(self, call: Any, photo: bytes | None = None) -> None:
        from hello_tui.tui.screens.call import CallScreen

        self.in_call = True
        self.last_call = call
        self.call_server = self.backend.telemetry_server
        screen = CallScreen(call, photo=photo)
        self._main_notes([])  # a new call: the last one's notices are old news

        def ended(result: Any) -> None:
            self._main_notes(screen.notices)  # shown on the main screen until seen
            self._call_ended(result)

        self.push_screen(screen, ended)

    def _main_notes(self, notes: list[str]) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.show_call_notes(notes)

    def _call_ended(self, ended: Any) -> None:
        self.in_call = False
        self._refresh_main()
        if ended is None:
            return
        from hello_tui.tui.screens.call_ended import offer_for

        offer = offer_for(self, ended)
        if offer is not None:  # did not connect: Retry, or Share a link (the prompt says why)
            self.offer_recovery(ended, offer.share)
        else:
            severity = "information" if ended.stage == "connected" else "warning"
            self.notify(ended.line(), severity=severity)  # notify() escapes it
        self.queue_call_report(self.last_call)
        if ended.stage == "connected":
            self.ask_feedback(ended)
        elif self.call_server:
            self.send_telemetry()

    def offer_recovery(self, ended: Any, share: bool) -> None:
        """Like Hello: call again, or make a room named for them and show its link."""
        from hello_tui.tui.screens.call_ended import RetryOrShare

        dial = self.last_dial
        if dial is None:
            return

        def chosen(choice: str | None) -> None:
            if choice == "retry":
                self.place_call(dial.to, dial.shown, dial.photo, video=dial.video)
            elif choice == "share":
                self.share_link(dial.shown)

        self.push_screen(RetryOrShare(ended.line(), share=share), chosen)

    @work(exclusive=True, group="share", exit_on_error=False)
    async def share_link(self, shown: str) -> None:
        """A room named for ``shown``, its URL shown as text and QR code, copied."""
        from hello_tui.session.recovery import share_room_name
        from hello_tui.tui.screens.call_ended import ShareLink
        from hello_tui.util.qr import qr_lines

        name = share_room_name(shown)
        try:
            room = await self.backend.create_room(name)
        except Exception as exc:  # the embedded server keeps no rooms; offline; refused
            self.notify(f"No link made: {exc}", severity="warning", timeout=10)
            return
        url = room.url or ""

        def chosen(choice: str | None) -> None:
            if choice == "join":
                self.join_room(url, name)

        self.push_screen(ShareLink(name, url, qr_lines(url)), chosen)

    def queue_call_report(self, call: Any) -> None:
        """The call's report, queued when consent allows (sent with the feedback,
        or at once). Never breaks anything."""
        from hello_tui.telemetry.after_call import queue_call_report
        from hello_tui.telemetry.store import TelemetryStore

        store = TelemetryStore(self.backend.paths.data_dir)
        queue_call_report(store, call, self.backend.settings, self.call_server)

    def ask_feedback(self, ended: Any, server: str | None = None) -> None:
        """The after-call prompt; the answer goes to ``server`` (default: the
        server of the last call) unless it is the embedded one."""
        from hello_tui.tui.screens.feedback import FeedbackPrompt

        to = self.call_server if server is None else server

        def done(answer: Feedback | None) -> None:
            queued = False
            if answer is not None:
                try:
                    queued = record_feedback(answer, self.backend.paths.data_dir, to)
                except (OSError, ValueError) as exc:
                    self.notify(f"Feedback not kept: {exc}", severity="error")
                else:
                    self.notify("Thanks for the feedback")
            if to and (queued or self.backend.settings.telemetry.enabled):
                self.send_telemetry()

        self.push_screen(FeedbackPrompt(ended.call_id, ended.duration, sent_to=to), done)

    @work(exclusive=True, group="telemetry", exit_on_error=False)
    async def send_telemetry(self) -> None:
        """Send the telemetry queue (bounded in time; what is not sent stays queued
        for the next try). Nothing is sent unless something was queued."""
        from hello_tui.telemetry.sender import flush_for
        from hello_tui.telemetry.store import TelemetryStore

        store = TelemetryStore(self.backend.paths.data_dir)
        if not store.queued():
            return
        counts = await flush_for(store, 5.0)
        if counts is None or counts.get("failed"):
            self.notify(
                "Feedback/report not sent yet (server unreachable): kept for the next try. "
                "Settings › What was sent (ctrl+t) lists it.",
                severity="warning",
            )

    def _refresh_main(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.refresh_contacts()
                screen.refresh_history()

    # ------------------------------------------------------------ rooms
    def action_rooms(self) -> None:
        from hello_tui.tui.screens.rooms import RoomsScreen

        if not isinstance(self.screen, RoomsScreen):
            self.push_screen(RoomsScreen(self.backend))

    def action_devices(self) -> None:
        from hello_tui.tui.screens.devices import DevicesScreen

        if not isinstance(self.screen, DevicesScreen):
            self.push_screen(DevicesScreen(self.backend))

    # ------------------------------------------------------------ settings
    def action_settings(self) -> None:
        from hello_tui.tui.screens.settings import SettingsScreen

        server = self.backend.settings.server.url

        def done(saved: bool | None) -> None:
            if saved and self.backend.settings.server.url != server:
                self.action_retry()  # a new server: connect to it

        self.push_screen(SettingsScreen(self.backend), done)

    def action_toggle_dnd(self) -> None:
        self.backend.set_dnd(not self.backend.dnd)
        self.notify("Do not disturb: on (calls answered busy)" if self.backend.dnd else
                    "Do not disturb: off")  # fmt: skip

    # ------------------------------------------------------------ keys
    async def action_quit(self) -> None:
        """Quitting during a call asks first (ctrl+q is one slip away from ctrl+w)."""
        from hello_tui.tui.screens.forms import Confirm

        if not self.in_call:
            self.exit()
            return
        if any(isinstance(s, Confirm) and s.id == "confirm-quit" for s in self.screen_stack):
            return

        async def done(yes: bool | None) -> None:
            if yes:
                if self.last_call is not None:
                    await self.last_call.hangup()
                self.exit()

        self.push_screen(
            Confirm("End the call and quit?", "y: hang up and quit · n: stay in the call",
                    id="confirm-quit"),
            done,
        )  # fmt: skip

    def action_keys(self) -> None:
        """``?``: every key of the current screen (from its active bindings)."""
        from hello_tui.tui.screens.keys import KeysHelp, key_rows

        if not isinstance(self.screen, KeysHelp):
            name = self.screen.__class__.__name__.removesuffix("Screen") or "screen"
            self.push_screen(KeysHelp(name, key_rows(self.screen)))

    def on_resize(self, event: events.Resize | None = None) -> None:
        """Below the smallest laid-out size, one clear line instead of a broken layout
        (the event's size: ``self.size`` follows it a frame later)."""
        from hello_tui.tui.screens.keys import fit_notice

        if self.screen_stack:
            fit_notice(self.screen, event.size if event is not None else self.size)

    # ------------------------------------------------------------ palette
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Every key of the current screen, plus the app's own commands."""
        for builtin in super().get_system_commands(screen):
            if builtin.title != "Keys":  # Textual's key panel: ours is `?` (a modal)
                yield builtin
        yield SystemCommand("Keys", "Every key of this screen (?)", self.action_keys)
        seen: set[str] = {"quit", "app.quit", "command_palette"}
        # The keys Textual would dispatch on this screen (focused widget, screen, app),
        # minus those the screen's check_action hides.
        for node, binding, _enabled, _tooltip in screen.active_bindings.values():
            action = binding.action
            if not binding.description or action in seen:
                continue
            seen.update((action, binding.description.lower()))
            yield SystemCommand(
                binding.description,
                escape(f"key: {binding.key_display or binding.key}"),
                _runner(self, node, action),
            )
        for title, help_, command in (
            ("Echo test", "Call the echo service: hear yourself (e)", self.action_echo),
            ("Echo test with video", "Call the echo service with [video] source: see yourself",
             self.action_echo_video),
            ("Rooms", "Conversation URLs: create, list, rename, delete, join (R)",
             self.action_rooms),
            ("Settings", "Audio devices, server, account, telemetry, do-not-disturb (s)",
             self.action_settings),
            ("Devices", "This account's devices: approve a new one, revoke (D)",
             self.action_devices),
            ("Toggle do-not-disturb", "Answer calls busy without a prompt (d)",
             self.action_toggle_dnd),
            ("Reconnect", "Reach the server again (r)", self.action_retry),
        ):  # fmt: skip
            if title.lower() not in seen:  # the palette reads help as markup: "[video]"
                yield SystemCommand(title, escape(help_), command)


class LastDial(NamedTuple):
    """What Retry calls again."""

    to: str
    shown: str
    photo: bytes | None
    video: bool


def _runner(app: App[Any], node: DOMNode, action: str) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await app.run_action(action, node)

    return run


def _has_output_device() -> bool:
    try:
        from hello_tui.media.devices import list_devices

        return bool(list_devices("output"))
    except Exception:
        return False


def run(paths: Paths | None = None, settings: Settings | None = None, *, echo: bool = False) -> int:
    """Run the app on this terminal (``hello-tui`` with no command); ``echo``
    starts the echo test as soon as the server answers."""
    from hello_tui.media.quiet import divert_stderr

    # Before anything opens: PortAudio/ALSA noise must not reach the screen; it goes
    # to the log file (mode 0600), where `hello-tui doctor` says to look.
    divert_stderr(str(paths.log_file) if paths is not None else None)
    app = HelloApp(paths, settings, start_echo=echo)  # the config is read once
    # Textual prints an unhandled error as a screenful of traceback and still returns;
    # keep that aside: a crash is re-raised so the CLI saves a crash report and says
    # where in one line (exit 1).
    printed = io.StringIO()
    app.error_console = Console(file=printed, markup=False, highlight=False)
    with contextlib.suppress(KeyboardInterrupt):
        app.run()
    if app.return_code:
        crash = getattr(app, "_exception", None)  # Textual keeps the first unhandled error
        if isinstance(crash, Exception):
            raise crash
        raise RuntimeError(f"the app stopped with exit code {app.return_code}")
    sys.stderr.write(printed.getvalue())  # not a crash (e.g. an exit message): show it
    return 0
