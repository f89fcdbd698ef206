"""Who is calling, in the TUI: the call screen says whose key it is and can mark
it verified; a caller whose key changed is announced with a loud warning while
it rings, under its raw account name, never as the contact (nor with her photo)."""

from __future__ import annotations

import asyncio
from typing import Any

from hello_tui.call import events as ev
from hello_tui.contacts.model import Contact
from hello_tui.tui.screens.call import CallScreen
from hello_tui.tui.screens.incoming import IncomingCall
from hello_tui.tui.screens.main import MainScreen
from hello_tui.tui.widgets.identity import IdentityLine
from hello_tui.tui.widgets.photo import Photo

from .conftest import TEST_AUDIO, T, register_tui_account, visible_text, wait_until, write_config
from .test_snapshots import png

PNG = png()  # a real picture: the widget draws it, or initials when it cannot


async def test_a_changed_key_is_announced_while_it_rings(server: str, peers: Any) -> None:
    from hello_tui.tui.app import HelloApp

    mum = await peers("mum@example.org")
    config = await register_tui_account(server, "tui@example.org")
    write_config({**config, **TEST_AUDIO})
    app = HelloApp(ring_bell=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await asyncio.wait_for(app.ready.wait(), T)
        app.backend.contacts.add(Contact(name="Mum", emails=["mum@example.org"], photo=PNG))

        # First call: Mum's key is pinned; after comparing the code, k marks it verified.
        call = mum.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        await wait_until(pilot, lambda: "Mum" in visible_text(app), what="Mum's name")
        await wait_until(  # the photo is drawn once the prompt is mounted
            pilot,
            lambda: not app.screen.query_one("#incoming-photo", Photo).has_class("initials"),
            what="Mum's photo",
        )
        assert not app.screen.query_one(IdentityLine).display  # nothing to warn about
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, CallScreen), what="call screen")
        screen = app.screen
        line = screen.query_one(IdentityLine)
        await wait_until(pilot, lambda: line.status == "new", what="identity: new")
        await wait_until(pilot, lambda: screen.check_status == "verified", what="check code")
        await pilot.press("k")
        await wait_until(pilot, lambda: line.status == "verified", what="marked verified")
        assert "Verified account key" in visible_text(app)
        assert app.backend.pins.get("mum@example.org").verified  # type: ignore[union-attr]
        await call.hangup()
        await wait_until(pilot, lambda: not isinstance(app.screen, CallScreen), what="ended")
        while not isinstance(app.screen, MainScreen):  # the feedback question
            await pilot.press("escape")
            await pilot.pause(0.05)

        # Someone else now holds the name (deleted and registered again): the
        # prompt warns at once, shows the raw account name, not Mum, no photo.
        await mum.client.delete_account()
        impostor = await peers("mum@example.org")
        call = impostor.dial("tui@example.org")
        await wait_until(pilot, lambda: isinstance(app.screen, IncomingCall), what="prompt")
        prompt = app.screen
        warning = "WARNING: this is not the mum@example.org you talked to before"
        await wait_until(pilot, lambda: warning in visible_text(app), what="the warning")
        text = visible_text(app)
        assert "Mum" not in text and "mum@example.org" in text
        assert prompt.query_one(IdentityLine).has_class("-warning")
        assert prompt.query_one("#incoming-photo", Photo).has_class("initials")
        await pilot.press("d")
        assert (await call.wait_ended(T)).reason == "rejected"
        pin = app.backend.pins.get("mum@example.org")
        assert pin is not None and pin.verified  # the pin stands, as it was
        assert [e.status for e in call.event_log if isinstance(e, ev.Identity)] == []
