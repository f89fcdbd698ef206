"""The Devices screen against a real server: list (this device marked), approve a
new device by its code (a wrong code approves nothing), revoke it after a
confirmation; and one clear line when there is no signed-in account."""

from __future__ import annotations

import asyncio
from typing import Any

from textual.widgets import Input

from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import (
    generate_key,
    link_key,
    link_tag,
    new_link_code,
    parse_link_code,
    public_key_b64,
    seal_label,
)
from hello_tui.tui.app import HelloApp
from hello_tui.tui.screens.devices import NOT_SIGNED_IN, DevicesScreen
from hello_tui.tui.screens.forms import Confirm, TextPrompt

from .conftest import TEST_AUDIO, T, register_tui_account, visible_text, wait_until, write_config

NAME = "tui@example.org"


async def waiting_device(server: str, client: SignalingClient) -> tuple[str, str]:
    """A new device asking to join NAME: returns (its code, its public key)."""
    await client.connect(server)
    key = public_key_b64(generate_key())
    code = new_link_code()
    handle, secret = parse_link_code(code)
    box = await asyncio.to_thread(link_key, handle, secret, NAME)
    await client.request(
        p.DeviceLink(name=NAME, public_key=key, handle=handle, tag=link_tag(box, key, NAME),
                     label=seal_label(box, "kitchen laptop", key))
    )  # fmt: skip
    return code, key


async def type_code(pilot: Any, code: str) -> None:
    app = pilot.app
    await pilot.press("a")
    await wait_until(pilot, lambda: isinstance(app.screen, TextPrompt))
    await wait_until(pilot, lambda: isinstance(app.focused, Input), what="the code input")
    app.focused.value = code
    await pilot.press("enter")


async def test_approve_and_revoke_a_device(server: str) -> None:
    write_config({**(await register_tui_account(server, NAME)), **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with SignalingClient(reconnect=None) as new, app.run_test(size=(80, 24)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        screen = app.screen
        assert isinstance(screen, DevicesScreen)
        await wait_until(pilot, lambda: screen.loaded, what="devices listed")
        assert [d.current for d in screen.devices] == [True]
        assert "this device" in visible_text(app) and "the account's first key" in visible_text(app)

        code, key = await waiting_device(server, new)
        wrong = code[:5] + ("A" if code[5] != "A" else "B") + code[6:]  # same handle, bad secret
        await type_code(pilot, wrong)
        await wait_until(pilot, lambda: "Not approved" in visible_text(app), what="refused")
        assert "does not match" in visible_text(app) and not isinstance(app.screen, Confirm)

        await type_code(pilot, code.lower())  # as a person types it
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm), T)
        assert "kitchen laptop" in visible_text(app)  # the label, opened with the code
        await pilot.press("y")
        linked = await new.next_event(T)
        assert isinstance(linked, p.DeviceLinked) and linked.device == p.device_id(key)
        await wait_until(pilot, lambda: len(screen.devices) == 2, what="two devices")
        second = screen.devices[1]
        assert (second.label, second.current) == ("kitchen laptop", False)
        assert second.approved_by == screen.devices[0].id

        await pilot.press("down", "x")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        assert "Revoke the device kitchen laptop?" in visible_text(app)
        await pilot.press("n")  # declined: nothing happens
        await wait_until(pilot, lambda: app.screen is screen)
        assert len(screen.devices) == 2
        await pilot.press("x")
        await wait_until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await wait_until(pilot, lambda: len(screen.devices) == 1, what="revoked")
        assert screen.devices[0].current
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, DevicesScreen))


async def test_devices_need_a_signed_in_account() -> None:
    write_config(TEST_AUDIO)
    app = HelloApp(connect=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("D")
        await wait_until(pilot, lambda: isinstance(app.screen, DevicesScreen))
        assert NOT_SIGNED_IN in visible_text(app)
        await pilot.press("a")  # refused with the same words, no prompt
        await pilot.pause()
        assert not isinstance(app.screen, TextPrompt)
