"""The call screen's device picker (``a``): move the microphone or the speaker mid-call.

A small list of the input and output devices PortAudio knows (listed off the
event loop; not re-listed during a call, which would close its streams:
docs/media.md), each choice sent as the control commands ``audio-in`` /
``audio-out`` are (:func:`hello_tui.call.commands.run_command`), so the TUI,
``hello-tui ctl`` and the watch share one path. The switch's outcome shows as
the call's notice (its ``AudioDeviceChanged`` event); a refusal as an error toast.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, OptionList
from textual.widgets.option_list import Option

from hello_tui.tui.text import plain

MAX_SHOWN = 40  # devices per direction (a machine with more is unusual; the list scrolls)


class AudioDevicePicker(ModalScreen[None]):
    """Enter moves the call to the highlighted device; escape closes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,a", "close", "Close")]

    def __init__(self, call: Any) -> None:
        super().__init__(id="audio-devices")
        self.call = call

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Move the call to (enter)", classes="title")
            yield OptionList(id="audio-device-list")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exit_on_error=False)
    def load(self) -> None:
        from hello_tui.media.devices import list_devices
        from hello_tui.media.errors import AudioUnavailable

        try:
            ins = [d.name for d in list_devices("input")][:MAX_SHOWN]
            outs = [d.name for d in list_devices("output")][:MAX_SHOWN]
        except (AudioUnavailable, OSError) as exc:
            self.app.call_from_thread(self.notify, f"No devices: {exc}", severity="error")
            ins, outs = [], []
        self.app.call_from_thread(self._show, ins, outs)

    def _show(self, ins: list[str], outs: list[str]) -> None:
        options: list[Option | None] = []
        for direction, label, names in (("in", "Microphone", ins), ("out", "Speaker", outs)):
            options.append(Option(plain(f"{label}: the system default"), id=f"{direction}:"))
            options += [Option(plain(f"{label}: {n}"), id=f"{direction}:{n}") for n in names]
            options.append(None)  # a separator between the two directions
        option_list = self.query_one(OptionList)
        option_list.clear_options()
        option_list.add_options(options[:-1])
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        direction, _, name = (event.option.id or "").partition(":")
        self.switch(direction, f"device:{name}")
        self.dismiss(None)

    def switch(self, direction: str, endpoint: str) -> None:
        from hello_tui.call.commands import AudioIn, AudioOut, CommandError, run_command

        command = AudioIn(endpoint) if direction == "in" else AudioOut(endpoint)
        app, call = self.app, self.call

        async def run() -> None:
            try:
                await run_command(call, command)
            except CommandError as exc:
                app.notify(f"Not switched: {exc}", severity="error")

        app.run_worker(run(), group="audio-switch", exclusive=True, exit_on_error=False)

    def action_close(self) -> None:
        self.dismiss(None)


def picker_over(picker: AudioDevicePicker | None) -> None:
    """The call ended: the picker (if still shown) closes."""
    if picker is not None and picker.is_attached and picker.app.screen is picker:
        picker.dismiss(None)
