"""The echo peer: logs in as ``echo`` and loops every caller's audio back.

It is a client like any other, over the signaling WebSocket (the server
package never imports aiortc). Each *line* is one logged-in connection — one
device of the ``echo`` account — and the server rings every idle device and
answers ``busy`` for a device already in a call; so the bot keeps one idle
line ready and opens another as soon as one picks up (up to ``max_lines``
concurrent calls), closing surplus idle lines when calls end.

Chat: every message received is sent back, prefixed ``echo: `` (cut to the
chat bounds), over the same data channel; the echo's own receiving bound
(:mod:`hello_tui.call.chat`) limits what a flood can make it send.

The media path is the echo media policy
(:class:`~hello_tui.call.media_policy.EchoMedia`): the received track is the
outgoing track, decoded Opus frames go straight back to the encoder, no file,
no buffer of ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from hello_tui.call import events as ev
from hello_tui.call.chat import ChatError, clip_text
from hello_tui.call.engine import Call, CallOptions, EchoMedia, Phone
from hello_tui.call.peer import ice_servers
from hello_tui.echo import ECHO_NAME
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.errors import SignalingClientError

__all__ = ["ECHO_NAME", "ECHO_PREFIX", "EchoBot", "echo_chat"]

log = logging.getLogger(__name__)

ECHO_PREFIX = "echo: "


async def echo_chat(call: Call) -> None:
    """Send back every chat message the call receives, prefixed, until it ends."""
    async for event in call.events():
        if isinstance(event, ev.ChatMessage) and event.sender == "remote":
            try:
                call.send_chat(clip_text(ECHO_PREFIX + event.text))
            except ChatError as exc:  # the call ended, or a text that cannot be sent
                log.debug("echo: chat not echoed: %s", exc)


class _Line:
    def __init__(self, client: SignalingClient, phone: Phone) -> None:
        self.client = client
        self.phone = phone
        self.busy = False
        self.task: asyncio.Task[None] | None = None


class EchoBot:
    """``await bot.start()`` logs in (raises if it cannot); ``await bot.close()``."""

    def __init__(
        self,
        url: str,
        key: Any,
        *,
        name: str = ECHO_NAME,
        host_addresses: Sequence[str] | None = None,
        max_lines: int = 16,
        max_call_seconds: float = 600.0,
    ) -> None:
        self.url = url
        self.key = key
        self.name = name
        self.host_addresses = host_addresses
        self.max_lines = max_lines
        self.max_call_seconds = max_call_seconds
        self.lines: list[_Line] = []
        self.calls_answered = 0
        self._closed = False

    async def start(self) -> None:
        await self._open_line()

    async def _open_line(self) -> _Line:
        client = SignalingClient(client_name="hello-tui-echo", reconnect=None)
        try:
            await client.connect(self.url)
            logged = await client.login(self.name, self.key)
        except BaseException:
            await client.close()
            raise
        options = CallOptions(
            ice_servers=ice_servers(None, logged.ice), host_addresses=self.host_addresses
        )
        phone = Phone(client, options, media=EchoMedia)  # sends back what it receives
        phone.start()
        line = _Line(client, phone)
        self.lines.append(line)
        line.task = asyncio.get_running_loop().create_task(self._serve(line))
        return line

    async def _ensure_idle_line(self) -> None:
        if self._closed or any(not ln.busy for ln in self.lines):
            return
        if len(self.lines) >= self.max_lines:
            return
        try:
            await self._open_line()
        except (SignalingClientError, OSError) as exc:
            log.warning("echo: cannot open another line: %s", exc)

    async def _serve(self, line: _Line) -> None:
        try:
            while not self._closed:
                call = await line.phone.next_incoming()
                line.busy = True
                opener = asyncio.get_running_loop().create_task(self._ensure_idle_line())
                await self._answer(call)
                await opener
                line.busy = False
                idle = [ln for ln in self.lines if not ln.busy]
                if len(idle) > 1:  # another line is ready: retire this one
                    self.lines.remove(line)
                    await line.phone.close()
                    await line.client.close()
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("echo line failed")

    async def _answer(self, call: Call) -> None:
        chat = asyncio.get_running_loop().create_task(echo_chat(call))
        try:
            await call.accept()
            self.calls_answered += 1
            with contextlib.suppress(TimeoutError):
                await call.wait_ended(self.max_call_seconds)
        finally:
            if call.ended is None:
                await call.hangup()
            chat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await chat

    async def close(self) -> None:
        self._closed = True
        for line in list(self.lines):
            if line.task is not None:
                line.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await line.task
            await line.phone.close()
            await line.client.close()
        self.lines.clear()
