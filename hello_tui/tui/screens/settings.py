"""Settings: audio endpoints, server, telemetry, do-not-disturb.

Saved with ``save_config`` (atomic) after the config's own validator accepted
the new values; a refused value is shown with the validator's reason and
nothing is written.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec
import tomli_w
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static, Switch

from hello_tui.config.loader import ConfigError, parse_config, save_config, settings_to_dict
from hello_tui.config.settings import Settings
from hello_tui.tui.widgets.status import StatusLine

BASIC_IN = ("device:", "sine:440", "null:")
BASIC_OUT = ("device:", "null:")


def endpoint_options(
    current: str, basics: tuple[str, ...], devices: list[str]
) -> list[tuple[str, str]]:
    values = list(dict.fromkeys([current, *basics, *(f"device:{d}" for d in devices)]))
    labels = {"device:": "device: (system default)", "null:": "null: (silence / discard)"}
    return [(labels.get(v, v), v) for v in values]


def validate(settings: Settings, path: object) -> Settings:
    """Run the config file's validator over ``settings`` (raises ConfigError)."""
    raw = tomli_w.dumps(settings_to_dict(settings)).encode()
    return parse_config(raw, path)  # type: ignore[arg-type]


class SettingsScreen(Screen[bool]):
    """Dismissed with True when saved."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "close", "Back"),
    ]

    def compose(self) -> ComposeResult:
        s: Settings = self.app.backend.settings  # type: ignore[attr-defined]
        dnd: bool = self.app.backend.dnd  # type: ignore[attr-defined]
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
            yield Label("Audio output (speaker)")
            yield Select(
                endpoint_options(s.audio.output, BASIC_OUT, []),
                value=s.audio.output,
                allow_blank=False,
                id="audio-out",
            )
            yield Static("", id="devices-note", classes="hint")
            yield Label("Server URL (empty: the embedded server, echo test only)")
            yield Input(s.server.url, placeholder="wss://hello.example.org", id="server-url")
            with Horizontal(classes="switch-row"):
                yield Switch(s.telemetry.enabled, id="telemetry")
                yield Label("Send anonymous call-quality telemetry")
            with Horizontal(classes="switch-row"):
                yield Switch(dnd, id="dnd")
                yield Label("Do not disturb (calls answered busy, no prompt)")
            yield Static("", id="settings-error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Back (esc)", id="back")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.load_devices()

    @work(thread=True, exit_on_error=False)
    def load_devices(self) -> None:
        from hello_tui.media.devices import list_devices
        from hello_tui.media.errors import AudioUnavailable

        try:
            ins = [d.name for d in list_devices("input")]
            outs = [d.name for d in list_devices("output")]
            note = f"{len(ins)} input and {len(outs)} output devices found"
            if not ins and not outs:
                note = "no audio devices found: calls send silence and discard what they receive"
        except (AudioUnavailable, OSError) as exc:
            ins, outs = [], []
            note = f"no audio devices ({exc}): calls use the fallback (silence)"
        self.app.call_from_thread(self._set_devices, ins, outs, note)

    def _set_devices(self, ins: list[str], outs: list[str], note: str) -> None:
        s: Settings = self.app.backend.settings  # type: ignore[attr-defined]
        for wid, current, basics, names in (
            ("#audio-in", s.audio.input, BASIC_IN, ins),
            ("#audio-out", s.audio.output, BASIC_OUT, outs),
        ):
            select = self.query_one(wid, Select)
            value = select.value
            select.set_options(endpoint_options(current, basics, names))
            select.value = value
        self.query_one("#devices-note", Static).update(note)

    def build(self) -> Settings:
        s: Settings = self.app.backend.settings  # type: ignore[attr-defined]
        audio = msgspec.structs.replace(
            s.audio,
            input=str(self.query_one("#audio-in", Select).value),
            output=str(self.query_one("#audio-out", Select).value),
        )
        server = msgspec.structs.replace(
            s.server, url=self.query_one("#server-url", Input).value.strip()
        )
        telemetry = msgspec.structs.replace(
            s.telemetry, enabled=self.query_one("#telemetry", Switch).value
        )
        return msgspec.structs.replace(s, audio=audio, server=server, telemetry=telemetry)

    @on(Button.Pressed, "#save")
    @on(Input.Submitted, "#server-url")
    def action_save(self) -> None:
        backend = self.app.backend  # type: ignore[attr-defined]
        path = backend.paths.config_file
        error = self.query_one("#settings-error", Static)
        try:
            new = validate(self.build(), path)
        except ConfigError as exc:
            reason = str(exc).split(": ", 1)[-1] if str(exc).startswith(str(path)) else str(exc)
            error.update(f"Not saved: {reason}")
            self.notify(f"Not saved: {reason}", severity="error")
            return
        error.update("")
        server_changed = new.server.url != backend.settings.server.url
        path.parent.mkdir(parents=True, exist_ok=True)
        save_config(new, path)
        backend.reload_settings(new)
        dnd = self.query_one("#dnd", Switch).value
        if dnd != backend.dnd:
            backend.set_dnd(dnd)
        self.notify(f"Saved to {path}")
        if server_changed:
            self.app.action_retry()  # type: ignore[attr-defined]
        self.dismiss(True)

    @on(Button.Pressed, "#back")
    def action_close(self) -> None:
        self.dismiss(False)
