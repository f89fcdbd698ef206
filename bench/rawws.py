"""A lean WebSocket client for the load benches: raw frames on an asyncio Protocol.

The load generator shares the machine's two cores with the servers it
measures, so every microsecond it spends per message is taken from them.
aiohttp's client (reader, writer, message objects, a task per connection's
reader) cost the generator ~0.45 ms of CPU per call exchange; this speaks
RFC 6455 directly:

* frames out are built in one ``bytes`` with a zero masking key (a valid
  key: the payload goes out unchanged, nothing to XOR);
* frames in are parsed from one buffer per read in ``data_received``; a text
  frame's payload goes to a waiting future or a queue, pings are answered;
* no extensions (no compression), no fragmentation (the server sends every
  message as one frame; a fragmented one is reported as an error).

Only what the benches need: ``ws://`` URLs, text messages.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

_ZERO_MASK = b"\x00\x00\x00\x00"


def frame(payload: bytes, opcode: int = 1) -> bytes:
    """One masked client frame (FIN set) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + _ZERO_MASK + payload


class Closed(ConnectionError):
    """The connection ended (close frame, EOF or a protocol error)."""


class RawWebSocket(asyncio.Protocol):
    """One client connection; :meth:`recv` returns each text message's bytes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        # The loop, kept: get_running_loop() is a getpid syscall on Python 3.11,
        # and recv() makes a future per wait (~8 % of the generator's samples).
        self._loop = asyncio.get_running_loop()
        self._handshake: asyncio.Future[None] = self._loop.create_future()
        self._upgraded = False
        self._inbox: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.closed: str = ""  # why, once closed
        # Set: each text message goes straight to this callback from data_received
        # (no future, no task wake-up: the callback-driven generator, ``--generator
        # machine``); None: to the inbox that recv() reads.
        self.on_message: Callable[[bytes], None] | None = None

    # ------------------------------------------------------------ set-up
    @classmethod
    async def connect(cls, url: str, path: str = "/ws", timeout: float = 30.0) -> RawWebSocket:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "ws"):
            raise ValueError(f"rawws: plain ws:// only, not {parts.scheme}://")
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(cls, host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        assert proto.transport is not None
        proto.transport.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            async with asyncio.timeout(timeout):
                await proto._handshake
        except BaseException:
            proto.abort()
            raise
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # (uvloop's is no subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        self._close(f"connection lost ({exc!r})" if exc else "connection closed")

    def eof_received(self) -> bool:
        self._close("EOF")
        return False

    def _close(self, why: str) -> None:
        if not self.closed:
            self.closed = why
        if not self._handshake.done():
            self._handshake.set_exception(Closed(why))
        self._wake()

    def _wake(self) -> None:
        if self.closed and self.on_message is not None:
            self.on_message(b"")  # the callback hears the end as an empty message
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------ input
    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                self._close(f"no upgrade: {status.decode(errors='replace')}")
                self.abort()
                return
            del buf[: end + 4]
            self._upgraded = True
            self._handshake.set_result(None)
        pos, size = 0, len(buf)
        got = False
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if b1 & 0x80:  # a server must not mask; unmask anyway rather than misread
                head += 4
            if size - pos < head + n:
                break
            payload = bytes(buf[pos + head : pos + head + n])
            if b1 & 0x80:
                mask = buf[pos + head - 4 : pos + head]
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            pos += head + n
            opcode = b0 & 0x0F
            if not b0 & 0x80 or opcode == 0:
                self._close("fragmented frame (not used by the server)")
                self.abort()
                return
            if opcode == 1:
                if self.on_message is not None:
                    self.on_message(payload)
                else:
                    self._inbox.append(payload)
                    got = True
            elif opcode == 9:  # ping
                self._write(frame(payload, 10))
            elif opcode == 8:
                self._close("close frame")
                self._write(frame(payload[:2], 8))
                if self.transport is not None:
                    self.transport.close()
        if pos:
            del buf[:pos]
        if got:
            self._wake()

    async def recv(self) -> bytes:
        """The next text message; :class:`Closed` once the connection ended."""
        while not self._inbox:
            if self.closed:
                raise Closed(self.closed)
            self._waiter = self._loop.create_future()
            await self._waiter
        return self._inbox.popleft()

    def pending(self) -> int:
        """Text messages received and not yet read."""
        return len(self._inbox)

    # ------------------------------------------------------------ output
    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send(self, payload: bytes) -> None:
        if self.closed:
            raise Closed(self.closed)
        self._write(frame(payload))

    async def close(self) -> None:
        """A normal close; the server's reply is not awaited (the benches close thousands)."""
        if not self.closed:
            self._write(frame(struct.pack("!H", 1000), 8))
            self.closed = "closed by us"
        if self.transport is not None:
            self.transport.close()
        self._wake()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()
