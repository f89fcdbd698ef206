"""The store's hot Redis connection, spoken directly in RESP2.

Every call step, lookup, presence change and delivery of an instance leaves
as a batch on one connection (``RedisStore._cmd``). Through redis-py each
command of a batch costs tens of microseconds of Python (command objects,
response callbacks, its parser): with two instances that was most of the CPU
an exchange costs (docs/benchmarks.md). Here a batch is packed into one
``bytes`` and its replies parsed from one buffer, nothing else.

Replies are raw, as redis-py gives them without callbacks: bulk strings as
``bytes``, integers as ``int``, arrays as lists, nil as None, status replies
as ``bytes``; an error reply becomes a :class:`ReplyError` *value* in its
slot (store/redis.py turns it into redis-py's exception: this module imports
no redis, which only store/redis.py may).

Only ``redis://`` URLs (host, port, password, database); other schemes
(``rediss://``, ``unix://``) keep redis-py (``connect_url`` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

_CHUNK = 1 << 16


class _Incomplete(Exception):
    """The buffer ends inside a reply: read more."""


def pack(args: tuple[Any, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode()
        elif isinstance(arg, int):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        elif isinstance(arg, (bytes, bytearray, memoryview)):
            data = bytes(arg)
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


class ReplyError(Exception):
    """An error reply (``-ERR …``, ``-NOSCRIPT …``): its text."""


def parse(buf: bytes | bytearray, pos: int) -> tuple[Any, int]:
    """The reply starting at ``pos`` and where the next one starts."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buf[pos], buf[pos + 1 : end], end + 2
    if kind == 36:  # $ bulk string
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise _Incomplete
        return bytes(buf[pos : pos + n]), pos + n + 2
    if kind == 58:  # : integer
        return int(line), pos
    if kind == 42:  # * array
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == 43:  # + status
        return bytes(line), pos
    if kind == 45:  # - error
        return ReplyError(bytes(line).decode(errors="replace")), pos
    raise ConnectionError(f"unexpected Redis reply type {chr(kind)!r}")


def supported(url: str) -> bool:
    return urlsplit(url).scheme == "redis"


class HotConnection:
    """One connection; :meth:`execute` sends a batch and returns its replies.
    Not for concurrent use: the store's flusher sends one batch at a time."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        path = parts.path.strip("/")
        self.db = int(path) if path else 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buf = bytearray()
        self._pos = 0  # where the next reply starts in _buf

    async def _connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._buf.clear()
        self._pos = 0
        await self._setup()

    async def _setup(self) -> None:
        setup: list[tuple[Any, ...]] = []
        if self.password is not None:
            setup.append(
                ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            )
        if self.db:
            setup.append(("SELECT", self.db))
        # PING: a Redis just restarted answers LOADING until its data is read;
        # until then the connection counts as not made (an outage, as redis-py's).
        setup.append(("PING",))
        for reply in await self._roundtrip(setup):
            if isinstance(reply, Exception):
                raise ConnectionError(f"Redis refused the connection setup: {reply}")

    async def execute(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` as one pipeline; their replies, in order. A connection
        found broken (Redis restarted since the last batch) is re-made and the
        batch sent once more, as redis-py's pool retries a command once."""
        for attempt in range(2):
            fresh = self._writer is None
            try:
                if fresh:
                    await self._connect()
                return await self._roundtrip(commands)
            except OSError:  # ConnectionError included
                await self.close()  # a half-read reply must not meet the next batch
                if fresh or attempt:
                    raise
            except BaseException:
                await self.close()
                raise
        raise AssertionError("unreachable")

    async def _roundtrip(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        assert self._writer is not None
        self._writer.write(b"".join([pack(c) for c in commands]))
        return [await self._reply() for _ in commands]

    async def _reply(self) -> Any:
        """The next reply on the connection, reading as much more as it needs."""
        assert self._reader is not None
        buf = self._buf
        while True:
            try:
                reply, self._pos = parse(buf, self._pos)
            except _Incomplete:
                # Drop what was parsed once per read, not per reply (a batch's
                # replies would each move the rest of the buffer).
                del buf[: self._pos]
                self._pos = 0
                data = await self._reader.read(_CHUNK)
                if not data:
                    raise ConnectionError("Redis closed the connection") from None
                buf += data
                continue
            return reply

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class Subscriber(HotConnection):
    """The instance's channel: ``SUBSCRIBE`` once, then every message's payload.
    redis-py's pub/sub reader parsed each delivery line by line through several
    layers; here a read's worth of messages is parsed from one buffer."""

    async def messages(
        self, channel: str, subscribed: Callable[[], None] | None = None
    ) -> AsyncGenerator[bytes, None]:
        """Payloads published on ``channel``, until the connection drops;
        ``subscribed`` is called once Redis confirms the subscription."""
        await self._connect()
        assert self._writer is not None
        self._writer.write(pack(("SUBSCRIBE", channel)))
        while True:
            reply = await self._reply()
            if isinstance(reply, list) and len(reply) == 3 and reply[0] == b"message":
                yield reply[2]
            elif isinstance(reply, list) and reply and reply[0] == b"subscribe":
                if subscribed is not None:
                    subscribed()
            elif isinstance(reply, ReplyError):
                raise ConnectionError(f"Redis refused the subscription: {reply}")
