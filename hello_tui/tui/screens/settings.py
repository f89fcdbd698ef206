"""Settings: audio endpoints and the microphone's processing, server, account,
telemetry, do-not-disturb.

Saved with ``save_config`` (atomic) after the config's own validator accepted
the new values; a refused value is shown with the validator's reason and
nothing is written.

The account buttons act at once on the connected server (not on ctrl+s),
through the core's ``hello_tui.signaling.account_local`` (what ``hello-tui
account`` runs): register (a new key, ``[account] name`` written), sign in
again with the key kept on this device, sign out (the name cleared, the key
kept), delete (on the server, then the key and the name; asks y/n).
"What was sent" shows the telemetry log, the same text as ``hello-tui privacy``.

While the screen is shown, the selected audio input is open and its level is
drawn about 10 times a second (``hello_tui.media.levels``); it is closed when
the screen is left or covered. ``ctrl+n`` plays a 1 s 440 Hz test tone on the
selected output (``hello_tui.media.ring.play_tone``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import msgspec
import tomli_w
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static, Switch, TextArea

from hello_tui.config.loader import ConfigError, parse_config, save_config, settings_to_dict
from hello_tui.config.settings import Settings
from hello_tui.media.cameras import Camera, list_cameras
from hello_tui.signaling.account_local import explain, key_path
from hello_tui.tui.backend import Backend
from hello_tui.tui.messages import AccountChanged
from hello_tui.tui.text import plain, printable
from hello_tui.tui.widgets.quality import meter
from hello_tui.tui.widgets.status import StatusLine

BASIC_IN = ("device:", "sine:440", "null:")
BASIC_OUT = ("device:", "null:")
METER_EVERY = 0.1  # seconds between input level redraws
RELIST_EVERY = 3.0  # seconds between device re-lists while Settings is shown (hot-plug)
TONE_HZ, TONE_SECONDS = 440.0, 1.0
# The microphone's processing switches ([audio] keys), in the order shown.
PROCESSING = (
    ("aec", "Echo cancellation (the far side does not hear itself)"),
    ("noise_suppression", "Noise suppression"),
    ("auto_gain", "Automatic gain (an even microphone level)"),
)


def endpoint_options(
    current: str, basics: tuple[str, ...], devices: list[str]
) -> list[tuple[str, str]]:
    values = list(dict.fromkeys([current, *basics, *(f"device:{d}" for d in devices)]))
    labels = {"device:": "device: (system default)", "null:": "null: (silence / discard)"}
    return [(labels.get(v, v), v) for v in values]


def validate(settings: Settings, path: Path) -> Settings:
    """Run the config file's validator over ``settings`` (raises ConfigError)."""
    raw = tomli_w.dumps(settings_to_dict(settings)).encode()
    return parse_config(raw, path)


class SettingsScreen(Screen[bool]):
    """Dismissed with True when saved (the app then reconnects if the server URL
    changed). Handed the backend; account changes are told to the app at once
    (:class:`AccountChanged`)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "close", "Back"),
        Binding("ctrl+t", "sent", "What was sent"),
        # priority: the name typed right behind it reaches the prompt (typeahead.py)
        Binding("ctrl+r", "register", "Register / sign in", priority=True),
        Binding("ctrl+o", "sign_out", "Sign out"),
        Binding("ctrl+g", "delete_account", "Delete account"),
        Binding("ctrl+l", "app.devices", "Devices", show=False),
        Binding("ctrl+n", "test_tone", "Test tone"),
    ]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.input_dbfs: float | None = None  # the loudest frame since the last redraw
        self.input_error = ""
        self.meter_source: Any = None  # the open input while the meter runs
        self.tones_played = 0
        self.relisting = False  # the meter is closed while PortAudio re-lists devices
        self.device_options: dict[str, list[tuple[str, str]]] = {}  # as last set, per Select

    def compose(self) -> ComposeResult:
        s = self.backend.settings
        dnd = self.backend.dnd
        yield StatusLine(id="status")
        with VerticalScroll(id="settings"):
            yield Label("Settings", classes="title")
            yield Label("Audio input (microphone)")
            yield Select(
                endpoint_options(s.audio.input, BASIC_IN, []),
                value=s.audio.input,
                allow_blank=False,
                id="audio-in",
            )
            yield Static("", id="input-level")
            yield Label("Audio output (speaker)")
            yield Select(
                endpoint_options(s.audio.output, BASIC_OUT, []),
                value=s.audio.output,
                allow_blank=False,
                id="audio-out",
            )
            with Horizontal(classes="buttons-left"):
                yield Button("Test tone (^n)", id="test-tone")
                yield Static("", id="tone-note", classes="hint")
            yield Static("", id="devices-note", classes="hint")
            # [audio] aec / noise_suppression / auto_gain: the processing of a device:
            # microphone (media/audio_processing.py); other inputs are not processed.
            for key, label in PROCESSING:
                with Horizontal(classes="switch-row"):
                    on = getattr(s.audio, key) not in (False, "off")  # aec: also "auto"/"on"
                    yield Switch(on, id=f"audio-{key}")
                    yield word_for(f"audio-{key}", on)
                    yield Label(label)
            # [audio] echo_tuning: our AEC3 tuning (the shim) or WebRTC's own, the escape
            # hatch for a room where ours does worse; stored as "tuned" / "default".
            tuned = s.audio.echo_tuning != "default"
            with Horizontal(classes="switch-row"):
                yield Switch(tuned, id="audio-echo_tuning")
                yield word_for("audio-echo_tuning", tuned)
                yield Label("Tuned echo canceller (off: WebRTC's default settings)")
            yield Label("Camera (for video calls: C, or v when a call rings)")
            yield Select(
                camera_options(s.video.source, list_cameras()),
                value=s.video.source,
                allow_blank=False,
                id="camera",
            )
            with Horizontal(classes="switch-row"):
                yield Switch(s.video.enabled, id="video-default")
                yield word_for("video-default", s.video.enabled)
                yield Label("Video on by default (every call, echo included, sends video)")
            yield Label("Server URL (empty: the embedded server, echo test only)")
            yield Input(s.server.url, placeholder="wss://hello.example.org", id="server-url")
            yield Label("Account")
            yield Static("", id="account-info")
            with Horizontal(classes="buttons-left"):
                yield Button("Register (^r)", id="register")
                yield Button("Sign out (^o)", id="sign-out")
                yield Button("Delete (^g)", variant="error", id="delete-account")
            with Horizontal(classes="switch-row"):
                yield Switch(s.telemetry.enabled, id="telemetry")
                yield word_for("telemetry", s.telemetry.enabled)
                yield Label("Send anonymous call-quality telemetry")
            with Horizontal(classes="buttons-left"):
                yield Button("What was sent (^t)", id="sent")
            with Horizontal(classes="switch-row"):
                yield Switch(dnd, id="dnd")
                yield word_for("dnd", dnd)
                yield Label("Do not disturb (calls answered busy, no prompt)")
            yield from sound_switches(s.sounds)
        # Pinned below the scrolling body: a refusal and Save are always in view.
        yield Static("", id="settings-error", classes="error")
        with Horizontal(classes="buttons", id="settings-buttons"):
            yield Button("Save (ctrl+s)", variant="primary", id="save")
            yield Button("Back (esc)", id="back")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.load_devices()
        self.show_account()
        self.set_interval(METER_EVERY, self.show_level)
        self.set_interval(RELIST_EVERY, self._relist)
        self.set_focus(self.query_one("#audio-in", Select))  # keys work at once

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Only the account keys that mean something now (shown in the footer)."""
        named = bool(self.backend.settings.account.name)
        if action == "register":
            return not named
        if action in ("sign_out", "delete_account"):
            return named
        return True

    @on(Switch.Changed)
    def _switched(self, event: Switch.Changed) -> None:
        """Each switch says its state in a word too (readable without colour)."""
        if event.switch.id:
            self.query_one(f"#{event.switch.id}-word", Static).update(switch_word(event.value))

    def on_screen_resume(self) -> None:
        self.show_account()
        self.start_meter()
        self.load_devices()

    def _relist(self) -> None:
        if self.is_current:  # hot-plug: devices plugged in while Settings is open
            self.load_devices()

    def on_screen_suspend(self) -> None:
        self.stop_meter()

    def on_unmount(self) -> None:
        self.stop_meter()

    # ------------------------------------------------------------ audio check
    def start_meter(self) -> None:
        self.input_dbfs = None
        self.input_error = ""
        self.run_meter(str(self.query_one("#audio-in", Select).value))

    def stop_meter(self) -> None:
        self.workers.cancel_group(self, "meter")
        if self.meter_source is not None:
            self.meter_source.stop()
            self.meter_source = None

    @on(Select.Changed, "#audio-in")
    def _input_changed(self) -> None:
        if self.is_current:
            self.stop_meter()
            self.start_meter()

    @work(exclusive=True, group="meter", exit_on_error=False)
    async def run_meter(self, spec: str) -> None:
        """Read the input's frames as they come; ``show_level`` draws the loudest."""
        import asyncio

        import av

        from hello_tui.media.levels import frame_dbfs
        from hello_tui.media.sources import open_audio_source

        try:
            source = await asyncio.to_thread(open_audio_source, spec)
        except Exception as exc:
            self.input_error = str(exc)
            return
        self.meter_source = source
        if source.notice is not None:
            self.input_error = str(source.notice)
        try:
            while True:
                frame = await source.recv()
                if not isinstance(frame, av.AudioFrame):  # an audio source sends audio
                    continue
                dbfs = frame_dbfs(frame)
                self.input_dbfs = dbfs if self.input_dbfs is None else max(dbfs, self.input_dbfs)
        except Exception as exc:  # the source ended or was closed under us
            if source.readyState == "live":
                self.input_error = f"input stopped ({exc!r})"
        finally:
            source.stop()
            if self.meter_source is source:
                self.meter_source = None

    def show_level(self) -> None:
        from hello_tui.media.levels import FLOOR_DBFS, dbfs_to_level

        dbfs = self.input_dbfs
        if dbfs is None and self.relisting:
            return  # the meter reopens in a moment: keep the last level
        self.input_dbfs = None
        if dbfs is None:
            text = f"Level {meter(None, 24)}  {self.input_error or 'opening…'}"
        else:
            shown = "−∞" if dbfs <= FLOOR_DBFS else f"{dbfs:.0f}"
            note = f"  ({self.input_error})" if self.input_error else ""
            text = f"Level {meter(dbfs_to_level(dbfs), 24)} {shown} dBFS{note}"
        self.query_one("#input-level", Static).update(plain(text))

    @on(Button.Pressed, "#test-tone")
    def action_test_tone(self) -> None:
        self.play_test_tone(str(self.query_one("#audio-out", Select).value))

    @work(exclusive=True, group="tone", exit_on_error=False)
    async def play_test_tone(self, spec: str) -> None:
        from hello_tui.media.ring import play_tone

        note = self.query_one("#tone-note", Static)
        note.update(plain(f"playing {TONE_HZ:g} Hz on {spec}…"))
        try:
            sink = await play_tone(spec, TONE_HZ, TONE_SECONDS)
        except Exception as exc:
            note.update(plain(f"no test tone: {exc}"))
            self.notify(f"No test tone on {spec}: {exc}. Choose another output.",
                        severity="error")  # fmt: skip
            return
        self.tones_played += 1
        if sink.notice is not None:
            note.update(plain(f"not heard: {sink.notice}"))
            self.notify(f"Test tone: {sink.notice}", severity="warning")
        else:
            note.update(plain(f"played {TONE_SECONDS:g} s of {TONE_HZ:g} Hz on {spec}"))

    @work(exclusive=True, group="devices", exit_on_error=False)
    async def load_devices(self) -> None:
        """List the devices; re-list them first (hot-plug) when no stream but this
        screen's meter is open. PortAudio re-lists only by re-initialising, which
        closes every stream: never during a call, a ring or a tone, and the meter
        is closed for that moment (its last level stays drawn)."""
        import asyncio

        from hello_tui.media import devices
        from hello_tui.media.sources import DeviceSource

        metering = isinstance(self.meter_source, DeviceSource)
        # PortAudio streams only: re-initialising PortAudio never touches a pulse one.
        relist = len(devices.portaudio_streams_open()) <= int(metering)
        if relist and metering:
            self.relisting = True
            self.stop_meter()
        try:
            ins, outs, note = await asyncio.to_thread(self._list_devices, relist)
        finally:
            if self.relisting:
                self.relisting = False
                if self.is_current:
                    self.start_meter()
        self._set_devices(ins, outs, note)

    @staticmethod
    def _list_devices(relist: bool) -> tuple[list[str], list[str], str]:
        from hello_tui.media.devices import list_devices, refresh_if_idle
        from hello_tui.media.errors import AudioUnavailable

        try:
            relisted = relist and refresh_if_idle()
            ins = [d.name for d in list_devices("input")]
            outs = [d.name for d in list_devices("output")]
            note = f"{len(ins)} input and {len(outs)} output devices found"
            if not ins and not outs:
                note = "no audio devices found: calls send silence and discard what they receive"
            if not relisted:
                note += " (the list is re-read when no call or sound is playing)"
        except (AudioUnavailable, OSError) as exc:
            ins, outs = [], []
            note = f"no audio devices ({exc}): calls use the fallback (silence)"
        return ins, outs, note

    def _set_devices(self, ins: list[str], outs: list[str], note: str) -> None:
        s = self.backend.settings
        for wid, current, basics, names in (
            ("#audio-in", s.audio.input, BASIC_IN, ins),
            ("#audio-out", s.audio.output, BASIC_OUT, outs),
        ):
            select = self.query_one(wid, Select)
            value = select.value
            options = endpoint_options(str(value), (current, *basics), names)
            if options == self.device_options.get(wid):
                continue  # unchanged: an open drop-down stays open
            self.device_options[wid] = options
            select.set_options(options)
            select.value = value
        self.query_one("#devices-note", Static).update(plain(note))

    def build(self) -> Settings:
        s = self.backend.settings
        tuned = self.query_one("#audio-echo_tuning", Switch).value
        audio = msgspec.structs.replace(
            s.audio,
            input=str(self.query_one("#audio-in", Select).value),
            output=str(self.query_one("#audio-out", Select).value),
            **{key: self.query_one(f"#audio-{key}", Switch).value for key, _ in PROCESSING},
            echo_tuning="tuned" if tuned else "default",
        )
        server = msgspec.structs.replace(
            s.server, url=self.query_one("#server-url", Input).value.strip()
        )
        telemetry = msgspec.structs.replace(
            s.telemetry, enabled=self.query_one("#telemetry", Switch).value
        )
        video = msgspec.structs.replace(
            s.video,
            source=str(self.query_one("#camera", Select).value),
            enabled=self.query_one("#video-default", Switch).value,
        )
        sounds = msgspec.structs.replace(
            s.sounds,
            **{key: self.query_one(f"#sound-{key}", Switch).value for key, _ in SOUND_SWITCHES},
        )
        return msgspec.structs.replace(
            s, audio=audio, video=video, server=server, telemetry=telemetry, sounds=sounds
        )

    @on(Button.Pressed, "#save")
    @on(Input.Submitted, "#server-url")
    def action_save(self) -> None:
        backend = self.backend
        path = backend.paths.config_file
        error = self.query_one("#settings-error", Static)
        try:
            new = validate(self.build(), path)
        except ConfigError as exc:
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(path)) else str(exc)
            error.update(plain(f"Not saved: {reason}"))
            self.notify(f"Not saved: {reason}", severity="error")
            return
        error.update("")
        save_config(new, path)
        backend.reload_settings(new)  # telemetry switched off: no call report waits
        dnd = self.query_one("#dnd", Switch).value
        if dnd != backend.dnd:
            backend.set_dnd(dnd)
        self.notify(f"Saved to {path}")
        self.dismiss(True)

    def changed(self) -> bool:
        """Whether the form differs from what is saved."""
        dnd = self.query_one("#dnd", Switch).value
        return self.build() != self.backend.settings or dnd != self.backend.dnd

    @on(Button.Pressed, "#back")
    def action_close(self) -> None:
        """Back; with unsaved changes it asks first (save / discard / stay)."""
        from hello_tui.tui.screens.forms import UnsavedChanges

        if not self.changed():
            self.dismiss(False)
            return

        def chosen(choice: str | None) -> None:
            if choice == "save":
                self.action_save()
            elif choice == "discard":
                self.dismiss(False)

        self.app.push_screen(UnsavedChanges(), chosen)

    # ------------------------------------------------------------ account
    def key_exists(self) -> bool:
        return key_path(self.backend.paths, self.backend.settings).exists()

    def show_account(self) -> None:
        b = self.backend
        name = b.settings.account.name
        key = self.key_exists()
        if name and b.account == name:
            text = f"signed in as {name}"
        elif name:
            text = f"{name} (not signed in: {'no server' if b.embedded else 'not connected'})"
        elif key:
            text = "anonymous (signed out: ^r signs in again with the key kept on this device)"
        else:
            text = "anonymous (^r registers a name on the server, no password: a key file)"
        if b.embedded:
            text += " · accounts need a real server: set Server URL and save"
        self.query_one("#account-info", Static).update(plain(text))
        self.query_one("#register", Button).label = (
            "Sign in (^r)" if key and not name else "Register (^r)"
        )
        self.query_one("#register", Button).disabled = bool(name)
        self.query_one("#sign-out", Button).disabled = not name
        self.query_one("#delete-account", Button).disabled = not (name and key)
        self.refresh_bindings()  # the footer offers Register only when it applies

    def _account_done(self, message: str) -> None:
        self.show_account()
        self.notify(message)

    def _account_failed(self, what: str, exc: BaseException) -> None:
        why = explain(exc)
        self.query_one("#settings-error", Static).update(plain(f"{what}: {why}"))
        self.notify(f"{what}: {why}", severity="error", timeout=8)
        self.show_account()

    @on(Button.Pressed, "#register")
    def action_register(self) -> None:
        from hello_tui.tui.screens.forms import TextPrompt

        b = self.backend
        if b.settings.account.name:
            self.notify(f"This profile already has an account ({b.settings.account.name}): "
                        "sign out or delete it first", severity="warning")  # fmt: skip
            return
        sign_in = self.key_exists()
        if sign_in:
            title = "Sign in"
            hint = "The account name this device's key was registered with."
        else:
            title = "Register an account"
            where = key_path(b.paths, b.settings)
            hint = (
                "A name others call you by. A key is made and kept on this device "
                f"({where}): keep it, it is your password."
            )

        def done(name: str | None) -> None:
            if name:
                self.account_work("sign-in" if sign_in else "register", name)

        self.app.push_screen(TextPrompt(title, hint, placeholder="Account name",
                                        prompt_id="account-prompt"), done)  # fmt: skip

    @on(Button.Pressed, "#sign-out")
    def action_sign_out(self) -> None:
        if self.backend.settings.account.name:
            self.account_work("sign-out")

    @on(Button.Pressed, "#delete-account")
    def action_delete_account(self) -> None:
        from hello_tui.tui.screens.forms import Confirm

        name = self.backend.settings.account.name
        if not name or not self.key_exists():
            why = ("Signed out: sign in first (^r) to delete the account" if self.key_exists()
                   else "No account on this device to delete")  # fmt: skip
            self.notify(why, severity="warning")
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.account_work("delete")

        self.app.push_screen(
            Confirm(
                f"Delete account {name}?",
                "The server forgets the name and everything it holds for it; the key on "
                "this device is removed. This cannot be undone.",
            ),
            done,
        )

    @work(exclusive=True, group="account", exit_on_error=False)
    async def account_work(self, what: str, name: str = "") -> None:
        b = self.backend
        try:
            if what == "register":
                done = await b.register(name)
                message = f"Registered and signed in as {name} (key: {done.key_file})"
            elif what == "sign-in":
                await b.sign_in(name)
                message = f"Signed in as {name}"
            elif what == "sign-out":
                await b.sign_out()
                message = "Signed out: anonymous (the key stays on this device)"
            else:
                old = b.settings.account.name
                await b.delete_account()
                message = f"Deleted account {old}"
        except Exception as exc:
            failed = {"register": "Not registered", "sign-in": "Not signed in",
                      "sign-out": "Not signed out"}  # fmt: skip
            self._account_failed(failed.get(what, "Not deleted"), exc)
            return
        self.query_one("#settings-error", Static).update("")
        self.post_message(AccountChanged())
        self._account_done(message)

    # ------------------------------------------------------------ telemetry
    @on(Button.Pressed, "#sent")
    def action_sent(self) -> None:
        self.app.push_screen(SentScreen(self.backend))


class SentScreen(Screen[None]):
    """Read-only: every telemetry body sent (byte for byte), and what waits."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Back")]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend

    def compose(self) -> ComposeResult:
        from hello_tui.telemetry.shown import privacy_lines
        from hello_tui.telemetry.store import TelemetryStore

        b = self.backend
        store = TelemetryStore(b.paths.data_dir)
        lines = privacy_lines(
            store, enabled=b.settings.telemetry.enabled, config_file=b.paths.config_file
        )
        yield StatusLine(id="status")
        yield Label("What telemetry sent (as in 'hello-tui privacy')", id="sent-title",
                    classes="title")  # fmt: skip
        yield TextArea("\n".join(lines), read_only=True, soft_wrap=True, id="sent-log")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#sent-log", TextArea).focus()

    def action_close(self) -> None:
        self.dismiss(None)


def camera_options(current: str, cameras: list[Camera]) -> list[tuple[str, str]]:
    """Video sources to pick from: the cameras that exist (by their names), the
    test picture and none; the configured one first when it is none of those
    (a configured camera that is not there says so)."""
    options = [(f"{c.endpoint} ({printable(c.name, 40)})", c.endpoint) for c in cameras]
    options += [("pattern: (a moving test picture)", "pattern:"), ("null: (no video)", "null:")]
    if current not in {value for _, value in options}:
        gone = " not found" if current.startswith("camera:") else ""
        options.insert(0, (f"{printable(current, 60)} (configured{gone})", current))
    return options


# Call sounds ([sounds], session/sounds.py): their own group, one switch per cue.
SOUND_SWITCHES: tuple[tuple[str, str], ...] = (
    ("enabled", "Call sounds (never while do not disturb is on)"),
    ("connecting", "Sound: connecting (dialing out)"),
    ("connected", "Sound: connected"),
    ("failed", "Sound: call failed or not answered"),
    ("joined", "Sound: someone joined your room"),
    ("left", "Sound: conversation ended"),
    ("message", "Sound: chat message"),
)


def sound_switches(sounds: Any) -> ComposeResult:
    """The call sounds group: a title, then a switch and its word per key."""
    where = sounds.output or "the audio output if a device, else the terminal bell"
    yield Label(plain(f"Call sounds (on {where})"), id="sounds-title")
    for key, label in SOUND_SWITCHES:
        on = bool(getattr(sounds, key))
        with Horizontal(classes="switch-row"):
            yield Switch(on, id=f"sound-{key}")
            yield word_for(f"sound-{key}", on)
            yield Label(label)


def switch_word(on: bool) -> Content:
    return Content("[x] on" if on else "[ ] off")  # literal: "[x]" is not markup


def word_for(switch_id: str, on: bool) -> Static:
    """The word beside switch ``switch_id`` (kept in step by ``_switched``)."""
    return Static(switch_word(on), id=f"{switch_id}-word", classes="switch-word")
