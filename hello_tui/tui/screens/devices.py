"""Devices: the signed-in account's devices; approve a new one by its code, revoke one.

The logic is the core's (``hello_tui.signaling.account_local``, what ``hello-tui
account devices / approve / revoke`` run): a new device shows a code
``HHHH-SSSS-SSSS`` (``hello-tui account link NAME`` on it); typed here, it is
checked against the key the server holds for it (a wrong code or a server
showing another key: nothing is approved), then this device signs the
approval. Labels are this profile's own words, never sent in plain. Revoking
asks first; revoking this device signs it out.

Handed the backend; needs a real server and a signed-in account, and says so
in one line otherwise.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from hello_tui.signaling.account_local import (
    HINTS,
    Device,
    LinkOffer,
    approve_link,
    explain,
    fetch_link,
    list_devices,
    revoke_device,
)
from hello_tui.tui.backend import Backend
from hello_tui.tui.text import printable
from hello_tui.tui.widgets.status import StatusLine

NOT_SIGNED_IN = "Devices need a signed-in account on a real server: Settings (s) › Account."
LINK_HINTS = {
    **HINTS,
    "unknown-link": "no device is waiting with that code (expired after 5 minutes, or mistyped)",
    "not-allowed": "the server refused (the account's only device cannot be revoked)",
}


def day(when: int) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(when)) if when else "?"


def device_label(device: Device) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("● " if device.current else "  ", "bold")
    text.append(printable(device.label, 40) or "(no label here)", "" if device.label else "dim")
    text.append(f"  {device.id}", "dim")
    text.append("  this device" if device.current else f"  added {day(device.added)}", "dim")
    return text


class DevicesScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "approve", "Approve code"),
        Binding("x,delete", "revoke", "Revoke"),
        Binding("r", "refresh", "Refresh"),
        Binding("escape,q", "close", "Back"),
    ]
    DEFAULT_CSS = """
    #devices-title { height: auto; padding: 0 1; }
    #devices { height: 1fr; border: none; }
    #device-details { height: auto; padding: 0 1; border-top: hkey $panel-lighten-2; }
    #devices-note { height: auto; padding: 0 1; }
    #devices-note.error { color: $error; }
    """

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.devices: list[Device] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield StatusLine(id="status")
        yield Static("", id="devices-title")
        yield OptionList(id="devices")
        yield Static("", id="device-details")
        yield Static("", id="devices-note", classes="hint")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        account = self.backend.account
        title = self.query_one("#devices-title", Static)
        if account is None or self.backend.embedded:
            title.update(Text(NOT_SIGNED_IN, "bold"))
            self.query_one("#devices", OptionList).display = False
            return
        title.update(
            Text.assemble(
                ("Devices of ", "bold"),
                (printable(account), "bold"),
                ("  each has its own key; a new one is approved by one of these", "dim"),
            )
        )
        self.query_one("#devices", OptionList).focus()
        self.load()

    def usable(self) -> bool:
        if self.backend.account is None or self.backend.embedded or self.backend.client is None:
            self.notify(NOT_SIGNED_IN, severity="warning")
            return False
        return True

    def note(self, text: str, error: bool = False) -> None:
        note = self.query_one("#devices-note", Static)
        note.set_class(error, "error")
        note.update(Text(printable(text)))

    def failed(self, what: str, exc: BaseException) -> None:
        why = explain(exc, LINK_HINTS)
        self.note(f"{what}: {why}", error=True)
        self.notify(f"{what}: {why}", severity="error", timeout=8)

    # ------------------------------------------------------------ the list
    def show(self, devices: list[Device]) -> None:
        self.devices, self.loaded = devices, True
        olist = self.query_one("#devices", OptionList)
        olist.clear_options()
        olist.add_options([Option(device_label(d), id=d.id) for d in devices])
        if devices:
            olist.highlighted = 0
        self.note(f"{len(devices)} device{'s' if len(devices) != 1 else ''} · a: approve a "
                  "new device's code (run 'hello-tui account link NAME' on it)")  # fmt: skip
        self.show_details()

    def selected(self) -> Device | None:
        olist = self.query_one("#devices", OptionList)
        if olist.highlighted is None or not self.devices:
            return None
        return self.devices[olist.highlighted]

    @on(OptionList.OptionHighlighted, "#devices")
    def show_details(self) -> None:
        device = self.selected()
        details = self.query_one("#device-details", Static)
        if device is None:
            details.update(Text("Loading…" if not self.loaded else "", "dim"))
            return
        text = Text()
        text.append(printable(device.label, 64) or device.id, "bold")
        text.append(f"\nkey {device.fingerprint}\nadded {day(device.added)}", "dim")
        by = next((d for d in self.devices if d.id == device.approved_by), None)
        if device.approved_by:
            name = printable(by.label, 40) if by is not None and by.label else device.approved_by
            text.append(f", approved by {name}", "dim")
        else:
            text.append(", the account's first key", "dim")
        text.append("\nx: revoke" + (" (signs this device out)" if device.current else ""), "dim")
        details.update(text)

    async def action_refresh(self) -> None:
        if self.usable():
            self.load()

    @work(exclusive=True, group="devices", exit_on_error=False)
    async def load(self) -> None:
        client = self.backend.client
        if client is None:
            self.note("not connected to the server yet", error=True)
            return
        try:
            devices = await list_devices(client, self.backend.paths)
        except Exception as exc:
            self.failed("Cannot list the devices", exc)
            return
        self.show(devices)

    # ------------------------------------------------------------ approve
    def action_approve(self) -> None:
        from hello_tui.tui.screens.forms import TextPrompt

        if not self.usable():
            return

        def done(code: str | None) -> None:
            if code:
                self.check_code(code)

        self.app.push_screen(
            TextPrompt("Approve a new device",
                       "The code the new device shows (hello-tui account link NAME).",
                       placeholder="7KQ2-M9XD-4TRA", prompt_id="link-code"),
            done,
        )  # fmt: skip

    @work(group="devices-edit", exit_on_error=False)
    async def check_code(self, code: str) -> None:
        from hello_tui.tui.screens.forms import Confirm

        client, account = self.backend.client, self.backend.account
        if client is None or account is None:
            return
        self.note("checking the code… (a few seconds: the code is stretched)")
        try:
            offer = await fetch_link(client, account, code)
        except Exception as exc:
            self.failed("Not approved", exc)
            return
        shown = printable(offer.label, 64) or "(no label)"

        def done(yes: bool | None) -> None:
            if yes:
                self.approve(offer)
            else:
                self.note("Not approved: nothing was signed.")

        self.app.push_screen(
            Confirm(f"Add the device {shown} to {printable(account)}?",
                    f"Its key: {offer.fingerprint} (compare with the new device's screen). "
                    "It can then sign in, call and answer as this account.",
                    id="confirm-approve"),
            done,
        )  # fmt: skip

    @work(group="devices-edit", exit_on_error=False)
    async def approve(self, offer: LinkOffer) -> None:
        identity, client = self.backend.identity, self.backend.client
        if identity is None or client is None:
            return
        try:
            await approve_link(client, self.backend.paths, identity.key, offer)
        except Exception as exc:
            self.failed("Not approved", exc)
            return
        self.notify(f"Device {printable(offer.label) or offer.device} approved")
        self.load()

    # ------------------------------------------------------------ revoke
    def action_revoke(self) -> None:
        from hello_tui.tui.screens.forms import Confirm

        device = self.selected()
        if device is None or not self.usable():
            return
        shown = printable(device.label, 40) or device.id
        detail = ("This device will be signed out; its key stays on disk but the server "
                  "no longer accepts it." if device.current else
                  "It is signed out at once and can no longer sign in. Contacts who pinned "
                  "its key keep it (the check is theirs).")  # fmt: skip

        def done(yes: bool | None) -> None:
            if yes:
                self.revoke(device)

        self.app.push_screen(Confirm(f"Revoke the device {shown}?", detail,
                                     id="confirm-revoke"), done)  # fmt: skip

    @work(group="devices-edit", exit_on_error=False)
    async def revoke(self, device: Device) -> None:
        client = self.backend.client
        if client is None:
            return
        try:
            await revoke_device(client, self.backend.paths, device.id)
        except Exception as exc:
            self.failed("Not revoked", exc)
            return
        self.notify(f"Device {printable(device.label) or device.id} revoked")
        if not device.current:
            self.load()

    def action_close(self) -> None:
        self.dismiss(None)
