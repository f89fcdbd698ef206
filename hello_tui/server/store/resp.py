"""The store's hot Redis connection, spoken directly in RESP2.

Every call step, lookup, presence change and delivery of an instance leaves
as a batch on one connection (``RedisStore._cmd``). Through redis-py each
command of a batch costs tens of microseconds of Python (command objects,
response callbacks, its parser): with two instances that was most of the CPU
an exchange costs (docs/benchmarks.md). Here a batch is packed into one
``bytes`` and written at once; the connection is an asyncio ``Protocol`` that
parses replies as they arrive and resolves each command's future in order
(no reader task, no stream layer, no coroutine per reply), so batches are
pipelined back to back. The instance channel (:class:`Subscriber`) hands each
payload to its callback from the same read.

Replies are raw, as redis-py gives them without callbacks: bulk strings as
``bytes``, integers as ``int``, arrays as lists, nil as None, status replies
as ``bytes``; an error reply becomes a :class:`ReplyError` *value* in its
slot (store/redis.py turns it into redis-py's exception: this module imports
no redis, which only store/redis.py may).

``redis://`` URLs (host, port, password, database) and ``unix://`` ones (a
Redis on the same host: ``unix:///run/redis.sock?db=0``, password as
``?password=`` or in the user part, as redis-py reads them); ``rediss://``
keeps redis-py (:func:`supported` says which).
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit


class _Incomplete(Exception):
    """The buffer ends inside a reply: read more."""


def pack(args: tuple[Any, ...]) -> bytes:
    """One command as a RESP array of bulk strings."""
    return b"".join(pack_into([], args))


def pack_into(out: list[bytes], args: tuple[Any, ...]) -> list[bytes]:
    """Append one command's pieces to ``out`` (joined once per batch: a record's
    bytes are copied once, not once per formatting step)."""
    out.append(b"*%d\r\n" % len(args))
    for arg in args:
        kind = type(arg)
        if kind is str:
            data = arg.encode()
        elif kind is bytes:
            data = arg
        elif kind is int or isinstance(arg, int):
            data = b"%d" % arg
        elif isinstance(arg, float):
            data = repr(arg).encode()
        elif isinstance(arg, (bytes, bytearray, memoryview)):
            data = bytes(arg)
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        if len(data) < 64:
            out.append(b"$%d\r\n%b\r\n" % (len(data), data))
        else:
            out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return out


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


def _load_hiredis() -> Any:
    """hiredis (redis-py's optional C parser) when it is installed, else None.

    Declared in the ``server`` extra, imported lazily so a server without it
    still runs (pure Python, ~11 % more instance CPU): its C reader parses a batch's
    replies 5-8x faster than :func:`parse` and its ``pack_command`` packs 2x
    faster (docs/benchmarks.md). ``HELLO_RESP_PARSER=python`` keeps the pure
    Python code (the bench's A/B switch)."""
    if os.environ.get("HELLO_RESP_PARSER", "auto") == "python":
        return None
    try:
        import hiredis

        return hiredis
    except ImportError:
        return None


_hiredis = _load_hiredis()


def supported(url: str) -> bool:
    return urlsplit(url).scheme in ("redis", "unix")


Command = tuple[Any, ...]
ErrorMap = Callable[[ReplyError], BaseException]


def _as_is(error: ReplyError) -> BaseException:
    return error


class _Protocol(asyncio.Protocol):
    """One RESP connection: replies parsed in ``data_received``, each one
    resolving the oldest waiting future (or, once ``on_push`` is set, handed to it)."""

    def __init__(self, errors: ErrorMap) -> None:
        self.transport: asyncio.Transport | None = None
        self.errors = errors
        self.on_push: Callable[[Any], None] | None = None
        self.broken = False
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters: deque[asyncio.Future[Any]] = deque()
        self._buf = bytearray()
        self._reader = (
            _hiredis.Reader(replyError=ReplyError, protocolError=ConnectionError)
            if _hiredis is not None
            else None
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # (uvloop's is no subclass)

    def connection_lost(self, exc: Exception | None) -> None:
        self.broken = True
        error = ConnectionError("Redis closed the connection")
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_exception(error)
        if not self.lost.done():
            self.lost.set_result(None)

    def send(self, commands: Sequence[Command], futures: Sequence[asyncio.Future[Any]]) -> None:
        assert self.transport is not None
        if _hiredis is not None:
            packed = _hiredis.pack_command
            self.transport.write(b"".join([packed(c) for c in commands]))
        else:
            out: list[bytes] = []
            for command in commands:
                pack_into(out, command)
            self.transport.write(b"".join(out))
        self._waiters.extend(futures)

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        if reader is not None:
            reader.feed(data)
            try:
                while (reply := reader.gets()) is not False:
                    self._dispatch(reply)
            except (IndexError, ConnectionError):  # garbage, or a reply nobody asked for
                self.abort()
            return
        buf = self._buf
        if buf:  # the rest of a reply that began in an earlier read
            buf += data
            data = bytes(buf)
            buf.clear()
        pos, size = 0, len(data)
        try:
            while pos < size:
                reply, pos = parse(data, pos)
                self._dispatch(reply)
        except _Incomplete:
            buf += data[pos:]
        except (ValueError, IndexError, ConnectionError):  # garbage, or a reply nobody asked for
            self.abort()

    def _dispatch(self, reply: Any) -> None:
        if self.on_push is not None:
            self.on_push(reply)
            return
        future = self._waiters.popleft()
        if future.done():  # cancelled meanwhile
            return
        if type(reply) is ReplyError:
            future.set_exception(self.errors(reply))
        else:
            future.set_result(reply)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class HotConnection:
    """One connection to Redis. :meth:`submit` writes a batch at once (the store's
    auto-pipelining); :meth:`execute` sends a batch and returns its replies,
    error replies in their slots. ``errors`` makes the exception each error
    reply raises from a submitted command's future."""

    def __init__(self, url: str, errors: ErrorMap = _as_is) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.password = unquote(parts.password) if parts.password else None
        self.username = unquote(parts.username) if parts.username else None
        # unix://: the socket's path, the database and password in the query (a
        # socket skips loopback TCP: less kernel time per command on both ends).
        self.socket_path = parts.path if parts.scheme == "unix" else None
        if self.socket_path is not None:
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            self.db = int(query.get("db", "0") or 0)
            self.password = query.get("password", self.password)
            self.username = query.get("username", self.username)
        else:
            path = parts.path.strip("/")
            self.db = int(path) if path else 0
        self._errors = errors
        self._proto: _Protocol | None = None

    @property
    def ready(self) -> bool:
        """Connected, and the connection not known broken."""
        return self._proto is not None and not self._proto.broken

    def submit(self, batch: Sequence[tuple[Command, asyncio.Future[Any]]]) -> None:
        """Write ``batch`` now (only when :attr:`ready`); each reply resolves its future."""
        assert self._proto is not None
        self._proto.send([c for c, _ in batch], [f for _, f in batch])

    async def connect(self) -> None:
        """(Re)connect and set the connection up (AUTH, SELECT, PING)."""
        await self.close()
        loop = asyncio.get_running_loop()
        errors = self._errors
        if self.socket_path is not None:
            _, proto = await loop.create_unix_connection(
                lambda: _Protocol(errors), self.socket_path
            )
        else:
            _, proto = await loop.create_connection(lambda: _Protocol(errors), self.host, self.port)
        setup: list[Command] = []
        if self.password is not None:
            setup.append(
                ("AUTH", self.username, self.password) if self.username else ("AUTH", self.password)
            )
        if self.db:
            setup.append(("SELECT", self.db))
        # PING: a Redis just restarted answers LOADING until its data is read;
        # until then the connection counts as not made (an outage, as redis-py's).
        setup.append(("PING",))
        futures = [loop.create_future() for _ in setup]
        proto.errors = _as_is
        proto.send(setup, futures)
        try:
            for reply in await asyncio.gather(*futures, return_exceptions=True):
                if isinstance(reply, BaseException):
                    raise ConnectionError(f"Redis refused the connection setup: {reply}")
        except BaseException:
            proto.abort()
            raise
        proto.errors = errors
        self._proto = proto

    async def execute(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` as one pipeline; their replies, in order. A connection
        found broken (Redis restarted since the last batch) is re-made and the
        batch sent once more, as redis-py's pool retries a command once."""
        loop = asyncio.get_running_loop()
        for attempt in range(2):
            fresh = not self.ready
            if fresh:
                await self.connect()
            assert self._proto is not None
            futures = [loop.create_future() for _ in commands]
            self._proto.send(commands, futures)
            replies = await asyncio.gather(*futures, return_exceptions=True)
            failed = [r for r in replies if isinstance(r, OSError)]
            if not failed:
                return replies
            await self.close()
            if fresh or attempt:
                raise failed[0]
        raise AssertionError("unreachable")

    async def close(self) -> None:
        proto, self._proto = self._proto, None
        if proto is not None and proto.transport is not None:
            proto.transport.close()


class Subscriber(HotConnection):
    """The instance's channel: ``SUBSCRIBE`` once, then every message's payload,
    handed to a callback from the read that parsed it (redis-py's pub/sub reader
    parsed each delivery line by line through several layers and a task)."""

    async def listen(
        self,
        channel: str,
        on_message: Callable[[bytes], None],
        subscribed: Callable[[], None] | None = None,
    ) -> None:
        """Call ``on_message`` with each payload published on ``channel`` (in
        order) and ``subscribed`` once Redis confirms; raises
        :class:`ConnectionError` when the connection drops."""
        await self.connect()
        proto = self._proto
        assert proto is not None and proto.transport is not None
        refused: list[ReplyError] = []

        def push(reply: Any) -> None:
            if type(reply) is list and len(reply) == 3 and reply[0] == b"message":
                on_message(reply[2])
            elif type(reply) is list and reply and reply[0] == b"subscribe":
                if subscribed is not None:
                    subscribed()
            elif type(reply) is ReplyError:
                refused.append(reply)
                proto.abort()

        proto.on_push = push
        proto.transport.write(pack(("SUBSCRIBE", channel)))
        await proto.lost
        if refused:
            raise ConnectionError(f"Redis refused the subscription: {refused[0]}")
        raise ConnectionError("Redis closed the connection")
