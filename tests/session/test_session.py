"""The session layer: settings -> a connected phone, with real servers.

The embedded default (no server configured) and a configured server with an
account; what the TUI's backend tells its UI when the connection changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import replace
from typing import Any

import msgspec
import pytest

from hello_tui.call import events as ev
from hello_tui.config.loader import load_config
from hello_tui.config.paths import resolve_paths
from hello_tui.config.settings import Settings
from hello_tui.session.connect import Session
from hello_tui.session.embedded import LOOPBACK
from hello_tui.session.options import call_options
from hello_tui.tui.backend import Backend
from tests.session.conftest import register_tui_account, write_config

T = 15.0


async def test_no_server_configured_is_the_embedded_default_on_loopback() -> None:
    session = Session(resolve_paths(), Settings(), audio_in="sine:440", audio_out="null:")
    assert session.embedded and session.url == "" and not session.login
    async with session as phone:
        assert session.client is not None and session.client.is_connected
        assert (session.client.url or "").startswith("ws://127.0.0.1:")
        assert session.client.reconnect_policy is None  # nothing to reconnect to
        assert phone.options.host_addresses == LOOPBACK
        assert phone.options.identity is None and session.account is None
        call = phone.dial("echo")
        await call.wait_for(ev.MediaFlowing, T)  # the echo peer answers
        await call.hangup()
    assert session.phone is None and session.client is None


async def test_a_configured_account_signs_in_and_its_identity_signs_calls(server: str) -> None:
    write_config(await register_tui_account(server, "sess@example.org"))
    paths = resolve_paths()
    session = Session(paths, load_config(paths.config_file), reconnect=True)
    assert not session.embedded and session.login
    async with session as phone:
        assert session.account == "sess@example.org"
        assert phone.options.identity is not None
        assert phone.options.identity.name == "sess@example.org"
        assert phone.options.host_addresses is None  # a real server: every interface
        assert session.client is not None and session.client.reconnect_policy is not None
        before = phone.options
        session.signed_out()
        assert phone.options.identity is None and session.account is None
        assert before.identity is not None  # replaced, never changed in place
        await session.sign_in()
        assert phone.options.identity is not None and session.account == "sess@example.org"


def test_options_come_from_the_settings_and_are_replaced_not_mutated() -> None:
    settings = Settings()
    options = call_options(settings, embedded=False, audio_in="sine:300")
    assert options.audio_in == "sine:300" and options.audio_out == settings.audio.output
    assert options.video_width == settings.video.width and options.host_addresses is None
    assert options.ptime_ms == 10
    short = msgspec.structs.replace(
        settings, audio=msgspec.structs.replace(settings.audio, ptime_ms=20)
    )
    assert call_options(short, embedded=False).ptime_ms == 20
    changed = replace(options, audio_out="file:/tmp/x.wav")
    assert changed.audio_out == "file:/tmp/x.wav" and changed.audio_in == "sine:300"
    assert options.audio_out == settings.audio.output
    with pytest.raises(TypeError):
        replace(options, no_such_field=1)  # type: ignore[call-arg]  # the point of the test
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.audio_in = "null:"  # type: ignore[misc]  # frozen: never changed in place


async def test_the_backend_tells_the_ui_when_the_connection_changes(
    server: str, live_server: Any
) -> None:
    """Connected, signed out, do-not-disturb, server lost: each is pushed through
    ``on_change`` (no polling), and status() then reads the new state."""
    write_config(await register_tui_account(server, "push@example.org"))
    backend = Backend()
    seen: list[Any] = []
    changed = asyncio.Event()

    def on_change() -> None:
        seen.append(backend.status())
        changed.set()

    backend.on_change = on_change
    try:
        await backend.connect()
        assert seen[0].reachable is None  # connecting
        assert seen[-1].reachable is True and seen[-1].account == "push@example.org"
        await backend.sign_out()
        assert seen[-1].account is None
        backend.set_dnd(True)
        assert seen[-1].dnd is True
        changed.clear()
        n = len(seen)
        await live_server.close()  # the server goes away under the client
        await asyncio.wait_for(changed.wait(), T)
        assert len(seen) > n and seen[-1].reachable is False
    finally:
        await backend.close()
