"""The echo peer, through the embedded server (the out-of-the-box default)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hello_tui.call import events as ev
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.errors import SignalingError
from hello_tui.signaling.identity import generate_key
from tests.call.conftest import RATE, T, dominant_hz, read_wav


async def test_anonymous_echo_call_hears_its_own_tone(tmp_path: Path) -> None:
    out = tmp_path / "echo.wav"
    async with embedded_server() as server:
        client = SignalingClient(reconnect=None)
        await client.connect(server.url)
        try:
            async with Phone(client, CallOptions(host_addresses=LOOPBACK)) as phone:
                call = phone.dial("echo", audio_in="sine:660", audio_out=f"file:{out}")
                await call.wait_for(ev.Connected, T)
                check = await call.wait_for(ev.CheckCode, T)  # the bot answers: we offered
                assert check.status == "verified" and check.code == call.sas
                assert call.sas is not None and len(call.sas) == 7
                await call.wait_for(ev.MediaFlowing, T)
                assert call.sink is not None
                async with asyncio.timeout(T):
                    while call.sink.samples < RATE:
                        await asyncio.sleep(0.05)
                ended = await call.hangup()
                assert ended.reason == "hangup"
            # The bot saw the hang-up and has a free line again.
            assert server.echo is not None and server.echo.calls_answered == 1
            # Nobody else can take the name.
            try:
                await client.register("Echo", generate_key())
            except SignalingError as exc:
                assert exc.code == "name-taken"
            else:
                raise AssertionError("registering 'echo' must be refused")
        finally:
            await client.close()
    recorded = read_wav(out)
    assert abs(dominant_hz(recorded[RATE // 4 :]) - 660) < 5


async def test_the_echo_peer_echoes_chat_prefixed() -> None:
    async with embedded_server() as server:
        client = SignalingClient(reconnect=None)
        await client.connect(server.url)
        try:
            async with Phone(client, CallOptions(host_addresses=LOOPBACK)) as phone:
                call = phone.dial("echo")
                call.send_chat("ping <i>1</i>")  # goes out once the channel opens
                call.send_chat("x" * 2000)  # the prefix does not fit: cut to the bound
                got: list[ev.ChatMessage] = []
                async with asyncio.timeout(T):
                    async for event in call.events():
                        if isinstance(event, ev.ChatMessage) and event.sender == "remote":
                            got.append(event)
                            if len(got) == 2:
                                break
                assert got[0].text == "echo: ping <i>1</i>" and got[0].name == "echo"
                assert got[1].text == "echo: " + "x" * 1994
                await call.hangup()
        finally:
            await client.close()
