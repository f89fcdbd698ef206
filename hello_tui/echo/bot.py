"""The echo peer: logs in as ``echo`` and loops every caller's audio back.

It is a client like any other, over the signaling WebSocket (the server
package never imports aiortc). Each *line* is one logged-in connection — one
device of the ``echo`` account — and the server rings every idle device and
answers ``busy`` for a device already in a call; so the bot keeps one idle
line ready and opens another as soon as one picks up (up to ``max_lines``
concurrent calls), closing surplus idle lines when calls end.

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

from hello_tui.call.engine import Call, CallOptions, EchoMedia, Phone
from hello_tui.call.peer import ice_servers
from hello_tui.echo import ECHO_NAME
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.errors import SignalingClientError

__all__ = ["ECHO_NAME", "EchoBot"]

log = logging.getLogger(__name__)


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
        try:
            await call.accept()
            self.calls_answered += 1
            with contextlib.suppress(TimeoutError):
                await call.wait_ended(self.max_call_seconds)
        finally:
            if call.ended is None:
                await call.hangup()

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
