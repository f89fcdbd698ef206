"""Redis store: several server instances share one deployment.

Every key has a TTL (``PEXPIREAT`` at the record's ``until``), so anything a
crashed client or a dead instance leaves behind disappears on its own (P4).

One round trip per state change: a call update is a Lua compare-and-set
(``_CALL_WRITE``) against the bytes this instance last saw of the record
(a local cache; a miss or a stale guess costs one more trip, never a wrong
write), and the same script keeps the call's timer in the due-list
(``{p}timers``), which every instance polls (``_CLAIM_DUE``: one claimer per
due entry). Rooms and accounts, rarer, use WATCH/MULTI with retries; either
way updaters must be pure. Messages for a session held by another instance
travel over pub/sub on that instance's channel, looked up and published by
one script (``_DELIVER``); a session held by this process is delivered
directly. Publishes go through one dedicated connection, so two messages to
the same session arrive in the order they were sent.

Key layout (``prefix`` defaults to ``hello:``)::

    {p}account:{hmac}      msgpack AccountRecord
    {p}call:{call_id}      msgpack CallRecord
    {p}room:{token}        msgpack RoomRecord
    {p}owner:{owner}       set of room tokens (index for room-list)
    {p}presence:{hmac}     sorted set: session id scored by its expiry
    {p}session:{sid}       the instance holding the session
    {p}timers              sorted set: call id scored by its timer's deadline
    {p}invite:{sha256}     an unused invite code's digest (expires with the code)
    {p}quota:{name}:{key}  a window quota's counter (expires with its window)
    {p}live:{name}:{key}   sorted set: a live quota's items scored by their end
    {p}inst:{instance}     pub/sub channel of an instance
    {p}alive               sorted set: instance id scored by its last beat
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any, TypeVar, cast

import msgspec
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError, NoScriptError, ResponseError, WatchError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hello_tui.server.privacy import log
from hello_tui.server.records import AccountRecord, CallRecord, RoomRecord
from hello_tui.server.store.base import (
    DeliveryHandler,
    FrameHandler,
    Store,
    Tell,
    Updater,
    redact_store_url,
)
from hello_tui.server.store.resp import HotConnection, ReplyError, Subscriber, supported
from hello_tui.signaling.protocol import (
    Accepted,
    Incoming,
    Message,
    ProtocolError,
    decode_server,
    encode,
)

T = TypeVar("T", AccountRecord, CallRecord, RoomRecord)

_encoder = msgspec.msgpack.Encoder()
_decoders: dict[type, msgspec.msgpack.Decoder[Any]] = {
    t: msgspec.msgpack.Decoder(t) for t in (AccountRecord, CallRecord, RoomRecord)
}
_KINDS = {"account": AccountRecord, "call": CallRecord, "room": RoomRecord}
_RETRIES = 50
# Connections to Redis shared by this instance's requests. Past the cap a request
# waits for a free connection (up to _POOL_WAIT seconds) rather than failing:
# redis-py's default pool raises MaxConnectionsError at 100 commands in flight,
# which a burst of logins or calls reaches (the error dropped the client's socket).
_POOL_SIZE = 100
_POOL_WAIT = 10.0


# KEYS: call, timers. ARGV: mode ("rev", "cas" or "put"), expected ("rev": the
# record's revision, its first 12 bytes; "cas": the whole record, "" = none),
# new bytes ("" = delete), PXAT ms, call id, deadline ("" = no timer), timers PXAT ms.
# Returns {1} when written, else {0, current bytes} ({0} if there is none).
# "rev" keeps the 3-5 KB record (the held offer) out of Lua on a compare: Redis 7's
# Lua hashes every byte of each string a script is handed or reads (~8 µs for
# 4.5 KB, against 0.6 µs for a plain SET of it: docs/benchmarks.md, session 10).
_CALL_WRITE_BODY = """
if ARGV[1] == 'rev' then
  if redis.call('GETRANGE', KEYS[1], 0, 11) ~= ARGV[2] then
    local cur = redis.call('GET', KEYS[1])
    if cur then return {0, cur} end
    return {0}
  end
elseif ARGV[1] == 'cas' then
  local cur = redis.call('GET', KEYS[1])
  if (cur or '') ~= ARGV[2] then
    if cur then return {0, cur} end
    return {0}
  end
end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[5])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[4])
  if ARGV[6] == '' then
    redis.call('ZREM', KEYS[2], ARGV[5])
  else
    redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
    redis.call('PEXPIREAT', KEYS[2], ARGV[7], 'GT')
    redis.call('PEXPIREAT', KEYS[2], ARGV[7], 'NX')
  end
end
"""
_CALL_WRITE = _CALL_WRITE_BODY + "return {1}\n"
# _CALL_WRITE, then (only if written) _DELIVER for each further key. KEYS: call,
# timers, then sessions. ARGV: _CALL_WRITE's seven, the channel prefix, then one
# payload per session. Returns _CALL_WRITE's reply.
_CALL_WRITE_DELIVER = (
    _CALL_WRITE_BODY
    + """
for i = 3, #KEYS do
  local inst = redis.call('GET', KEYS[i])
  if inst then redis.call('PUBLISH', ARGV[8] .. inst, ARGV[i + 6]) end
end
return {1}
"""
)
# KEYS: timers. ARGV: now, lease deadline, limit, timers PXAT ms. Atomic, so
# each due entry goes to one claimer; it comes due again at the lease deadline
# unless the claimer's write moves or removes it first.
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
end
if #due > 0 then redis.call('PEXPIREAT', KEYS[1], ARGV[4], 'GT') end
return due
"""
# KEYS: session. ARGV: channel prefix, payload. -1: no such session; else the
# number of subscribers that got it (0: the instance holding it is gone).
_DELIVER = """
local inst = redis.call('GET', KEYS[1])
if not inst then return -1 end
return redis.call('PUBLISH', ARGV[1] .. inst, ARGV[2])
"""
# KEYS: counter. ARGV: limit, window ms. 1: counted; 0: the window is full.
_WINDOW_TAKE = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
# KEYS: counter. DECR keeps the key's expiry; an expired window has nothing to give back.
_WINDOW_GIVE_BACK = """
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 1
"""
# KEYS: live set. ARGV: now, limit, item, its end (score), the set's PXAT ms.
# {1}: added; {0, items...}: full (the items, for the caller to re-check).
_LIVE_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[3])
    and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local out = redis.call('ZRANGE', KEYS[1], 0, -1)
  table.insert(out, 1, 0)
  return out
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[5], 'GT')
redis.call('PEXPIREAT', KEYS[1], ARGV[5], 'NX')
return {1}
"""
# KEYS: alive. ARGV: before. The instances last beating before then, each taken
# out as it is returned: one claimer per dead instance.
_CLAIM_DEAD = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
for _, id in ipairs(dead) do redis.call('ZREM', KEYS[1], id) end
return dead
"""
# The due-list outlives its latest deadline by this much (a claimed entry's lease
# included), so it goes once no instance is left to fire it.
_SCRIPTS = (
    _CALL_WRITE,
    _CALL_WRITE_DELIVER,
    _CLAIM_DUE,
    _DELIVER,
    _WINDOW_TAKE,
    _WINDOW_GIVE_BACK,
    _LIVE_TAKE,
    _CLAIM_DEAD,
)
_SHA = {s: hashlib.sha1(s.encode()).hexdigest() for s in _SCRIPTS}
_TIMERS_SLACK = 600.0
# Deliveries after which the receiving instance's next request updates the call
# (ringing after incoming, connected after accepted): they carry the record as
# the sender wrote it, the receiver's compare-and-set guess. Without it that
# request first reads the record (one more command and round trip each).
_HINTED = (Incoming, Accepted)
_SEEN_MAX = 20_000  # call records remembered as compare-and-set guesses
_SCAN_BATCH = 500  # keys read per round trip while looking through a dead instance's leftovers


def _redis_error(error: ReplyError) -> Exception:
    """redis-py's exception for an error reply read by store/resp.py."""
    text = str(error)
    if text.startswith("NOSCRIPT"):
        return NoScriptError(text)
    if text.startswith("LOADING"):  # Redis restarted, reading its data: an outage
        return BusyLoadingError(text)
    return ResponseError(text)


# A stored call record: _REV, 11 random bytes (its revision: each write its own),
# then the msgpack. 0xc1 never starts a msgpack document, so records written
# before revisions (a fleet mid-upgrade) are told apart and compared whole.
_REV = b"\xc1"
_REV_SIZE = 12
_revisions = random.Random(int.from_bytes(os.urandom(16)))  # no syscall per write


def _call_bytes(record: CallRecord) -> bytes:
    """``record`` as stored, under a fresh revision."""
    return _REV + _revisions.randbytes(_REV_SIZE - 1) + _encoder.encode(record)


def _call_record(data: bytes) -> CallRecord:
    record: CallRecord = _decoders[CallRecord].decode(
        data[_REV_SIZE:] if data[:1] == _REV else data
    )
    return record


def _compare(guess: bytes | None) -> tuple[str, bytes]:
    """The compare-and-set's mode and expected value for ``guess`` (the bytes
    last seen): its revision when it has one, else the whole record."""
    if guess is not None and guess[:1] == _REV:
        return "rev", guess[:_REV_SIZE]
    return "cas", guess or b""


def _ms(until: float) -> int:
    return max(1, int(until * 1000))


# redis-py types every reply as bytes | str (str with decode_responses, which this
# store never sets); these two say which one the code relies on.
def _bytes(reply: bytes | str) -> bytes:
    return reply.encode() if isinstance(reply, str) else reply


def _text(reply: object) -> str:
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, str):
        return reply
    raise TypeError(f"unexpected Redis reply: {type(reply).__name__}")


# Re-subscribing after a lost connection: first try soon, then back off, but
# not far: until it is subscribed again, deliveries to this instance are missed.
_RESUBSCRIBE_FIRST = 0.05
_RESUBSCRIBE_MAX = 0.5


def _tell_nobody(_old: CallRecord | None, _new: CallRecord | None) -> tuple[()]:
    return ()


class RedisStore(Store):
    """The :class:`Store` seam on Redis (``--redis redis://127.0.0.1:6379/0``)."""

    shared_timers = True
    shared_quotas = True

    def __init__(self, url: str, *, prefix: str = "hello:") -> None:
        self.clock: Callable[[], float] = time.time
        self.url = url
        self.prefix = prefix
        # One immediate retry on a fresh connection: after Redis restarts, every
        # pooled connection is dead and would fail its next command once. (The
        # retry sends a command again only when its connection broke, here a
        # dead socket to a Redis that never received it.)
        again = {"retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError]}
        self._r = aioredis.Redis.from_pool(
            aioredis.BlockingConnectionPool.from_url(
                url, max_connections=_POOL_SIZE, timeout=_POOL_WAIT, **again
            )
        )
        # The hot path (call updates, lookups, deliveries) goes through one
        # connection, auto-pipelined (_cmd): per-session message order is kept and
        # a burst costs one round trip, not a pool checkout per command.
        self._hot = aioredis.Redis.from_pool(aioredis.ConnectionPool.from_url(url, **again))
        # ...spoken in RESP directly (store/resp.py: a fraction of redis-py's CPU per
        # command); HELLO_REDIS_HOT=redis-py keeps redis-py (the bench's A/B switch).
        self._resp = (
            HotConnection(url, errors=_redis_error)
            if supported(url) and os.environ.get("HELLO_REDIS_HOT", "resp") != "redis-py"
            else None
        )
        # HELLO_REDIS_AUTOPIPELINE=0: each command on its own pool connection
        # instead (the A/B switch of bench/server_load.py; not for production).
        self._pipelined = os.environ.get("HELLO_REDIS_AUTOPIPELINE", "1") != "0"
        self._waiting: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._flush_soon = False  # a _flush is scheduled (call_soon)
        # Measurement knob (bar 1, session 10): at most one batch written per this
        # many µs. A command after a quiet spell goes out at once; under load the
        # commands of several exchanges share one write, one read and one wake-up.
        self._flush_gap = int(os.environ.get("HELLO_REDIS_FLUSH_GAP_US", "0")) / 1e6
        self._flushed_at = 0.0  # loop.time() of the last batch written
        self._loop: asyncio.AbstractEventLoop | None = None  # the hot connection's
        # The last command of the batch out on the hot connection: one batch at a
        # time, so commands queued meanwhile leave together (fewer, larger writes
        # for this process and for Redis: measured cheaper than a write per turn).
        self._in_flight: asyncio.Future[Any] | None = None
        self._flusher: asyncio.Task[None] | None = None  # connecting, or redis-py's pipeline
        self._handlers: dict[str, DeliveryHandler] = {}
        self._frame_handlers: dict[str, FrameHandler] = {}
        self._listeners: dict[str, asyncio.Task[None]] = {}
        self._instances: dict[str, str] = {}  # session id -> instance (cache, sessions never move)
        # call id -> the record's bytes as this instance last read or wrote them:
        # the expected value of the next compare-and-set (a guess, checked by Redis).
        self._seen: dict[str, bytes] = {}
        self._down_since: float | None = None  # monotonic, while Redis is unreachable

    # ---------------------------------------------------------------- outages
    def unavailable(self, exc: BaseException) -> bool:
        # redis-py raises these for a refused, reset or timed-out connection and for
        # a Redis still loading its data after a restart (BusyLoadingError).
        if not isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
            return False
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error(
                "Redis at %s unreachable (%s): requests get 'unavailable' until it is back",
                redact_store_url(self.url), type(exc).__name__,
            )  # fmt: skip
        return True

    def _reachable(self) -> None:
        """Something just worked: if Redis was down, say once that it is back."""
        if self._down_since is not None:
            log.warning(
                "Redis at %s reachable again after %.1f s",
                redact_store_url(self.url), time.monotonic() - self._down_since,
            )  # fmt: skip
            self._down_since = None

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    # ---------------------------------------------------------------- records
    async def _get(self, key: str, kind: type[T]) -> T | None:
        data = await self._r.get(key)
        return None if data is None else _decoders[kind].decode(_bytes(data))

    def _put_cmds(self, pipe: Any, key: str, record: T) -> None:
        pipe.set(key, _encoder.encode(record), pxat=_ms(record.until))
        if isinstance(record, RoomRecord):
            owner = self._k("owner", record.owner)
            pipe.sadd(owner, record.token)
            # The index lives as long as its longest-lived room (GT: only ever extend).
            pipe.pexpireat(owner, _ms(record.until), gt=True)
            pipe.pexpireat(owner, _ms(record.until), nx=True)

    async def _put(self, key: str, record: T) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            self._put_cmds(pipe, key, record)
            await pipe.execute()

    async def _update(self, key: str, kind: type[T], fn: Updater[T]) -> tuple[T | None, T | None]:
        async with self._r.pipeline(transaction=True) as pipe:
            for _ in range(_RETRIES):
                try:
                    await pipe.watch(key)
                    data = await pipe.get(key)
                    old = None if data is None else _decoders[kind].decode(_bytes(data))
                    new = fn(old)  # may raise: nothing changed
                    pipe.multi()
                    if new is None:
                        pipe.delete(key)
                    else:
                        self._put_cmds(pipe, key, new)
                    if isinstance(old, RoomRecord) and (
                        not isinstance(new, RoomRecord) or new.owner != old.owner
                    ):
                        pipe.srem(self._k("owner", old.owner), old.token)
                    await pipe.execute()
                    return old, new
                except WatchError:
                    continue
                finally:
                    await pipe.reset()
        raise RuntimeError(f"{kind.__name__} update kept conflicting; gave up")

    # ---------------------------------------------------------------- accounts
    def get_account(self, key: str) -> Coroutine[Any, Any, AccountRecord | None]:
        # Queued when called, not when awaited: reads started together leave in
        # one round trip (a call's lookups, calls.py).
        return self._account(self._cmd("GET", self._k("account", key)))

    @staticmethod
    async def _account(reply: asyncio.Future[Any]) -> AccountRecord | None:
        data = await reply
        return None if data is None else _decoders[AccountRecord].decode(_bytes(data))

    async def create_account(self, key: str, record: AccountRecord) -> bool:
        ok = await self._r.set(
            self._k("account", key), _encoder.encode(record), nx=True, pxat=_ms(record.until)
        )
        return bool(ok)

    async def put_account(self, key: str, record: AccountRecord) -> None:
        await self._put(self._k("account", key), record)

    async def delete_account(self, key: str) -> bool:
        return bool(await self._r.delete(self._k("account", key)))

    # ---------------------------------------------------------------- presence
    async def add_presence(self, key: str, session_id: str, until: float) -> None:
        k = self._k("presence", key)
        # On the hot connection, in order with every other presence change of
        # this instance (queued together: one round trip).
        await asyncio.gather(
            self._cmd("ZADD", k, repr(until), session_id),
            self._cmd("ZREMRANGEBYSCORE", k, "-inf", repr(self.clock())),
            # Only ever extend: one device's short expiry must not drop the others.
            self._cmd("PEXPIREAT", k, _ms(until), "GT"),
            self._cmd("PEXPIREAT", k, _ms(until), "NX"),
        )

    async def touch_presence(self, key: str, session_id: str, until: float) -> bool:
        k = self._k("presence", key)
        # XX: only update an existing member; CH counts changed members.
        changed, _, score = await asyncio.gather(
            self._cmd("ZADD", k, "XX", "CH", repr(until), session_id),
            self._cmd("PEXPIREAT", k, _ms(until), "GT"),
            self._cmd("ZSCORE", k, session_id),
        )
        return bool(changed) or score is not None

    async def remove_presence(self, key: str, session_id: str) -> None:
        await self._cmd("ZREM", self._k("presence", key), session_id)

    async def clear_presence(self, key: str) -> None:
        await self._cmd("DEL", self._k("presence", key))

    def list_presence(self, key: str) -> Coroutine[Any, Any, list[str]]:
        # Queued when called, as get_account.
        return self._members(
            self._cmd("ZRANGEBYSCORE", self._k("presence", key), f"({self.clock()}", "+inf")
        )

    @staticmethod
    async def _members(reply: asyncio.Future[Any]) -> list[str]:
        return [_text(m) for m in await reply]

    # ---------------------------------------------------------------- calls
    def _remember(self, call_id: str, data: bytes | None) -> None:
        self._seen.pop(call_id, None)
        if data is not None:
            self._seen[call_id] = data
            if len(self._seen) > _SEEN_MAX:
                del self._seen[next(iter(self._seen))]

    async def _write_call(
        self, mode: str, call_id: str, expected: bytes | None, record: CallRecord | None
    ) -> tuple[bool, bytes | None, bytes | None]:
        """Run ``_CALL_WRITE``; returns (written, the new bytes, Redis's bytes if not)."""
        data = _call_bytes(record) if record is not None else b""
        keys, args = self._call_write_args(mode, call_id, expected, record, data)
        reply = cast("list[Any]", await self._eval(_CALL_WRITE, keys, *args))
        if int(reply[0]) == 1:
            self._remember(call_id, data or None)
            return True, data or None, None
        current = _bytes(reply[1]) if len(reply) > 1 else None
        self._remember(call_id, current)
        return False, None, current

    def _call_write_args(
        self,
        mode: str,
        call_id: str,
        expected: bytes | None,
        record: CallRecord | None,
        data: bytes,
    ) -> tuple[list[str], tuple[Any, ...]]:
        """``_CALL_WRITE``'s keys and arguments (``cas``: against the bytes
        ``expected``, by their revision when they have one)."""
        if mode == "cas":
            mode, expected = _compare(expected)
        deadline = record.deadline if record is not None else None
        return [self._k("call", call_id), self._k("timers")], (
            mode, expected or b"", data, _ms(record.until) if record else 0, call_id,
            repr(deadline) if deadline is not None else "",
            _ms((deadline or 0) + _TIMERS_SLACK),
        )  # fmt: skip

    async def put_call(self, record: CallRecord) -> None:
        await self._write_call("put", record.call_id, None, record)

    async def put_call_then_deliver(
        self, record: CallRecord, messages: Iterable[tuple[str, Message]]
    ) -> list[bool]:
        # The write and the deliveries leave in one batch on the hot connection,
        # which Redis runs in order: the record exists before anyone hears of it,
        # one round trip instead of two on the call's critical path. (The scripts
        # are loaded on every (re)connect, so the write does not miss its script
        # after a restart while a delivery behind it runs; if it does miss, the
        # EVAL below still stores the record before the deliveries are counted.)
        data = _call_bytes(record)
        keys, args = self._call_write_args("put", record.call_id, None, record, data)
        write = self._cmd("EVALSHA", _SHA[_CALL_WRITE], len(keys), *keys, *args)
        self._remember(record.call_id, data)  # the deliveries' hint: what is written
        sent = self._queue_deliveries(messages)
        try:
            await write
        except NoScriptError:
            await self._cmd("EVAL", _CALL_WRITE, len(keys), *keys, *args)
        except Exception:
            await self._collect(sent, raise_first=False)  # none left unretrieved
            raise
        return await self._collect(sent)

    async def get_call(self, call_id: str) -> CallRecord | None:
        data = await self._cmd("GET", self._k("call", call_id))
        self._remember(call_id, None if data is None else _bytes(data))
        return None if data is None else _call_record(_bytes(data))

    async def known_call(self, call_id: str) -> CallRecord | None:
        seen = self._seen.get(call_id)
        if seen is None:
            return await self.get_call(call_id)
        return _call_record(seen)

    async def update_call(
        self, call_id: str, fn: Updater[CallRecord]
    ) -> tuple[CallRecord | None, CallRecord | None]:
        # The same compare-and-set with nothing to deliver (_CALL_WRITE alone).
        return await self.update_call_then_deliver(call_id, fn, _tell_nobody)

    async def update_call_then_deliver(
        self, call_id: str, fn: Updater[CallRecord], tell: Tell
    ) -> tuple[CallRecord | None, CallRecord | None]:
        # update_call's compare-and-set, with the deliveries to other instances'
        # sessions in the same script (_CALL_WRITE_DELIVER): published only if the
        # write is, one round trip instead of two on the call's path. Sessions held
        # here get theirs once it is written.
        guess, checked = self._seen.get(call_id), False
        if guess is None:  # nothing seen here: read first (an absent record is a fact too)
            raw = await self._cmd("GET", self._k("call", call_id))
            guess, checked = (None if raw is None else _bytes(raw)), True
        for _ in range(_RETRIES):
            old = None if guess is None else _call_record(guess)
            try:
                new = fn(old)
            except Exception:
                if checked:
                    raise  # refused on what Redis holds: nothing changed
                raw = await self._cmd("GET", self._k("call", call_id))  # maybe a stale guess
                guess, checked = (None if raw is None else _bytes(raw)), True
                continue
            data = _call_bytes(new) if new is not None else b""
            local: list[tuple[DeliveryHandler, str, Message]] = []
            remote: list[tuple[str, Message]] = []
            for session_id, message in tell(old, new):
                instance = self._instances.get(session_id)
                handler = self._handlers.get(instance) if instance is not None else None
                if handler is not None:
                    local.append((handler, session_id, message))
                else:
                    remote.append((session_id, message))
            keys, args = self._call_write_args("cas", call_id, guess, new, data)
            if remote:
                keys += [self._k("session", session_id) for session_id, _ in remote]
                args += (
                    self._k("inst", ""),
                    *(self._payload(sid, message, data or None) for sid, message in remote),
                )
                reply = cast("list[Any]", await self._eval(_CALL_WRITE_DELIVER, keys, *args))
            else:
                reply = cast("list[Any]", await self._eval(_CALL_WRITE, keys, *args))
            if int(reply[0]) == 1:
                self._remember(call_id, data or None)
                for handler, session_id, message in local:
                    handler(session_id, message)
                return old, new
            guess, checked = (_bytes(reply[1]) if len(reply) > 1 else None), True
            self._remember(call_id, guess)
        raise RuntimeError("CallRecord update kept conflicting; gave up")

    async def claim_due_calls(self, now: float, lease: float, limit: int = 200) -> list[str]:
        due = await self._eval(
            _CLAIM_DUE, [self._k("timers")],
            repr(now), repr(now + lease), limit, _ms(now + lease + _TIMERS_SLACK),
        )  # fmt: skip
        return [_text(d) for d in cast("list[Any]", due)]

    # ---------------------------------------------------------------- rooms
    async def put_room(self, record: RoomRecord) -> None:
        await self._put(self._k("room", record.token), record)

    async def get_room(self, token: str) -> RoomRecord | None:
        return await self._get(self._k("room", token), RoomRecord)

    async def update_room(
        self, token: str, fn: Updater[RoomRecord]
    ) -> tuple[RoomRecord | None, RoomRecord | None]:
        return await self._update(self._k("room", token), RoomRecord, fn)

    async def rooms_of(self, owner: str) -> list[RoomRecord]:
        tokens = sorted(_text(t) for t in await self._r.smembers(self._k("owner", owner)))
        if not tokens:
            return []
        blobs = await self._r.mget([self._k("room", t) for t in tokens])
        rooms = [_decoders[RoomRecord].decode(_bytes(b)) for b in blobs if b is not None]
        return sorted((r for r in rooms if r.owner == owner), key=lambda r: r.created)

    # ---------------------------------------------------------------- delivery
    async def register_session(self, session_id: str, instance: str, until: float) -> None:
        self._instances[session_id] = instance
        await self._cmd("SET", self._k("session", session_id), instance, "PXAT", _ms(until))

    async def unregister_session(self, session_id: str) -> None:
        self._instances.pop(session_id, None)
        await self._cmd("DEL", self._k("session", session_id))

    async def deliver(self, session_id: str, message: Message) -> bool:
        instance = self._instances.get(session_id)
        handler = self._handlers.get(instance) if instance is not None else None
        if handler is not None:  # held by this process: no round trip
            handler(session_id, message)
            return True
        # Elsewhere (or gone): one script looks the session up and publishes.
        payload = self._payload(session_id, message)
        return await self._publish(self._k("session", session_id), payload) > 0

    def _payload(self, session_id: str, message: Message, record: bytes | None = None) -> bytes:
        """What travels on the instance channel: ``sid\\n`` and the frame, or for a
        hinted message ``sid call_id size\\n``, the record's bytes (``record``, or
        as last seen here), then the frame."""
        if type(message) in _HINTED:
            call_id: str = message.call_id  # type: ignore[attr-defined]
            seen = record if record is not None else self._seen.get(call_id)
            if seen is not None:
                head = f"{session_id} {call_id} {len(seen)}\n".encode()
                return head + seen + encode(message)
        return session_id.encode() + b"\n" + encode(message)

    async def deliver_many(self, messages: Iterable[tuple[str, Message]]) -> list[bool]:
        return await self._collect(self._queue_deliveries(messages))

    def _queue_deliveries(
        self, messages: Iterable[tuple[str, Message]]
    ) -> list[tuple[str, bytes, asyncio.Future[Any]] | bool]:
        """Local ones at once; the others queued together before any await, so
        they leave in one pipeline (each session's messages in call order)."""
        sent: list[tuple[str, bytes, asyncio.Future[Any]] | bool] = []
        for session_id, message in messages:
            instance = self._instances.get(session_id)
            handler = self._handlers.get(instance) if instance is not None else None
            if handler is not None:
                handler(session_id, message)
                sent.append(True)
                continue
            key = self._k("session", session_id)
            payload = self._payload(session_id, message)
            future = self._cmd("EVALSHA", _SHA[_DELIVER], 1, key, self._k("inst", ""), payload)
            sent.append((key, payload, future))
        return sent

    async def _collect(
        self, sent: list[tuple[str, bytes, asyncio.Future[Any]] | bool], raise_first: bool = True
    ) -> list[bool]:
        """Whether each delivery :meth:`_queue_deliveries` queued reached a session."""
        out = []
        error: BaseException | None = None
        for item in sent:
            if isinstance(item, bool):
                out.append(item)
                continue
            key, payload, future = item
            try:
                reply = int(await future)
            except NoScriptError:  # not loaded yet (or Redis restarted): EVAL loads it
                reply = await self._publish(key, payload)
            except Exception as exc:  # every future awaited, the first error raised
                error, reply = error or exc, 0
            out.append(reply > 0)
        if error is not None and raise_first:
            raise error
        return out

    async def _publish(self, session_key: str, payload: bytes) -> int:
        """``_DELIVER`` in call order; the number of subscribers that got it (-1: no session)."""
        return int(await self._eval(_DELIVER, [session_key], self._k("inst", ""), payload))

    @property
    def redis(self) -> aioredis.Redis:
        """The pooled client, for modules keeping their own keys (telemetry)."""
        return self._r

    async def script(self, script: str, keys: list[str], *args: Any) -> Any:
        """Run a Lua script of another module on the hot connection (by SHA-1)."""
        if script not in _SHA:
            _SHA[script] = hashlib.sha1(script.encode()).hexdigest()
        return await self._eval(script, keys, *args)

    async def _eval(self, script: str, keys: list[str], *args: Any) -> Any:
        """Run a script by its SHA-1 (loaded by the first plain EVAL after a miss)."""
        try:
            return await self._cmd("EVALSHA", _SHA[script], len(keys), *keys, *args)
        except NoScriptError:  # first use, or Redis restarted
            return await self._cmd("EVAL", script, len(keys), *keys, *args)

    def _cmd(self, *args: Any) -> asyncio.Future[Any]:
        """One command on the instance's hot connection, in call order. Commands
        queued within one turn of the event loop go out together as one
        pipelined write, whatever their number; replies resolve their futures
        as they are read (store/resp.py), so batches never wait for each other."""
        loop = self._loop
        if loop is None:  # (get_running_loop makes a getpid syscall: once per store)
            loop = self._loop = asyncio.get_running_loop()
        if not self._pipelined:
            return loop.create_task(self._r.execute_command(*args))
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((args, future))
        if not self._flush_soon:
            self._flush_soon = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_soon = False
        if not self._waiting or self._flusher is not None:
            return  # (a connecting or redis-py flusher sends what is waiting when done)
        resp = self._resp
        if resp is not None and resp.ready:
            if self._in_flight is not None:
                return  # sent when its replies are in: batches grow while one is out
            if self._flush_gap and self._loop is not None:
                now = self._loop.time()
                if now - self._flushed_at < self._flush_gap:
                    self._flush_soon = True  # (also after _landed: one batch per gap)
                    self._loop.call_later(self._flush_gap - now + self._flushed_at, self._flush)
                    return
                self._flushed_at = now
            batch, self._waiting = self._waiting, []
            resp.submit(batch)
            self._in_flight = last = batch[-1][1]
            last.add_done_callback(self._landed)
            return
        flush = self._connect_then_flush() if resp is not None else self._flush_redis_py()
        self._flusher = asyncio.get_running_loop().create_task(flush)

    def _landed(self, _: asyncio.Future[Any]) -> None:
        """The batch out is answered (or failed): send what waits."""
        self._in_flight = None
        self._flush()

    async def _connect_then_flush(self) -> None:
        """(Re)connect the hot connection, then send what waits; if Redis cannot be
        reached, what waits fails (the requests answer 'unavailable')."""
        assert self._resp is not None
        try:
            await self._resp.connect()
            # Every script known by then, loaded before the first batch: a write
            # and a delivery queued together never find one loaded, one not.
            loaded = await self._resp.execute([("SCRIPT", "LOAD", s) for s in _SHA])
            failed = [r for r in loaded if isinstance(r, ReplyError)]
            if failed:
                raise _redis_error(failed[0])
        except Exception as exc:
            batch, self._waiting = self._waiting, []
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            self._reachable()
        finally:
            self._flusher = None
        self._flush()

    async def _flush_redis_py(self) -> None:
        """HELLO_REDIS_HOT=redis-py: each batch a redis-py pipeline, one at a time."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    async with self._hot.pipeline(transaction=False) as pipe:
                        for args, _ in batch:
                            pipe.execute_command(*args)
                        results = await pipe.execute(raise_on_error=False)
                except Exception as exc:
                    results = [exc] * len(batch)
                else:
                    self._reachable()
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._flusher = None

    def subscribe(self, instance: str, handler: DeliveryHandler) -> None:
        self._handlers[instance] = handler
        self._listeners[instance] = asyncio.get_running_loop().create_task(
            self._listen(instance, handler)
        )

    async def wait_subscribed(self) -> None:
        """Return once every listener's SUBSCRIBE is confirmed (no early message lost)."""
        for _ in range(500):
            pubsub_channels = await self._r.pubsub_channels(self._k("inst", "*"))
            names = {_text(c) for c in pubsub_channels}
            if all(self._k("inst", i) in names for i in self._listeners):
                return
            await asyncio.sleep(0.01)

    async def _listen(self, instance: str, handler: DeliveryHandler) -> None:
        """Receive this instance's deliveries, until cancelled. A lost connection
        (Redis restarting) is re-made with backoff and the channel subscribed
        again: without that, the instance would never hear another delivery."""
        pause = _RESUBSCRIBE_FIRST

        def subscribed() -> None:
            nonlocal pause
            self._reachable()
            pause = _RESUBSCRIBE_FIRST

        def received(data: bytes) -> None:
            head, _, frame = data.partition(b"\n")
            sid, _, hint = head.partition(b" ")
            try:
                if hint:  # the call record as its sender wrote it
                    call_id, _, size = hint.partition(b" ")
                    n = int(size)
                    self._remember(call_id.decode(), frame[:n])
                    frame = frame[n:]
                session_id = sid.decode()
                frames = self._frame_handlers.get(instance)
                if frames is None or not frames(session_id, frame):
                    handler(session_id, decode_server(frame))
            except (ProtocolError, ValueError):
                log.error("dropped an undecodable delivery on the instance channel")
            except Exception:
                log.exception("a delivery on the instance channel failed")

        while True:
            try:
                await self._channel(instance, received, subscribed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self.unavailable(exc):
                    log.exception("instance channel listener failed")
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RESUBSCRIBE_MAX)

    async def _channel(
        self, instance: str, received: Callable[[bytes], None], subscribed: Callable[[], None]
    ) -> None:
        """Hand each payload published on this instance's channel to ``received``
        until the connection drops: read in RESP directly, like the hot
        connection, or through redis-py's pub/sub (HELLO_REDIS_HOT=redis-py)."""
        channel = self._k("inst", instance)
        if self._resp is not None:
            subscriber = Subscriber(self.url)
            try:
                await subscriber.listen(channel, received, subscribed)
            finally:
                await subscriber.close()
            return
        pubsub = self._r.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(channel)
            subscribed()
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    received(bytes(item["data"]))
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def take_frames(self, instance: str, handler: FrameHandler) -> None:
        self._frame_handlers[instance] = handler

    def unsubscribe(self, instance: str) -> None:
        self._handlers.pop(instance, None)
        self._frame_handlers.pop(instance, None)
        task = self._listeners.pop(instance, None)
        if task is not None:
            task.cancel()

    # ---------------------------------------------------------------- quotas
    # On the hot connection: a quota check travels in the same pipeline as the
    # request's other commands.
    async def window_take(self, key: str, limit: int, window: float) -> bool:
        reply = await self._eval(
            _WINDOW_TAKE, [self._k("quota", key)], limit, max(1, int(window * 1000))
        )
        return int(reply) == 1

    async def window_give_back(self, key: str) -> None:
        await self._eval(_WINDOW_GIVE_BACK, [self._k("quota", key)])

    async def live_take(self, key: str, item: str, limit: int, until: float) -> list[str]:
        reply = cast("list[Any]", await self._eval(
            _LIVE_TAKE, [self._k("live", key)],
            repr(self.clock()), limit, item, repr(until), _ms(until),
        ))  # fmt: skip
        return [] if int(reply[0]) == 1 else [_text(m) for m in reply[1:]]

    async def live_drop(self, key: str, *items: str) -> None:
        if items:
            await self._cmd("ZREM", self._k("live", key), *items)

    def live_drop_soon(self, key: str, *items: str) -> asyncio.Future[Any]:
        return self._cmd("ZREM", self._k("live", key), *items)  # (no task: a queued command)

    # ---------------------------------------------------------------- invites
    async def consume_invite(self, digest: str) -> bool:
        # DEL answers 1 to exactly one caller, whichever instance: single use.
        return bool(await self._r.delete(self._k("invite", digest)))

    # ---------------------------------------------------------------- instances
    async def beat(self, instance: str, now: float, ttl: float) -> bool:
        k = self._k("alive")
        added, _, _ = await asyncio.gather(
            self._cmd("ZADD", k, repr(now), instance),
            self._cmd("PEXPIREAT", k, _ms(now + ttl), "GT"),
            self._cmd("PEXPIREAT", k, _ms(now + ttl), "NX"),
        )
        return bool(added)

    async def claim_dead_instances(self, before: float) -> list[str]:
        dead = await self._eval(_CLAIM_DEAD, [self._k("alive")], repr(before))
        return [_text(d) for d in cast("list[Any]", dead)]

    async def _scan(self, kind: str) -> AsyncIterator[tuple[str, Any]]:
        """(key, value) of every string key ``{p}KIND:*``, read in batches. Only
        after an instance's death: no index is kept for it on the hot path."""
        keys: list[str] = []
        async for raw in self._r.scan_iter(match=self._k(kind, "*"), count=1000):
            keys.append(_text(raw))
            if len(keys) >= _SCAN_BATCH:
                for pair in zip(keys, await self._r.mget(keys), strict=True):
                    yield pair
                keys = []
        if keys:
            for pair in zip(keys, await self._r.mget(keys), strict=True):
                yield pair

    async def sessions_of(self, instances: set[str]) -> set[str]:
        found = set()
        marker = len(self._k("session", ""))
        async for key, value in self._scan("session"):
            if value is not None and _text(value) in instances:
                found.add(key[marker:])
        return found

    async def calls_with(self, sessions: set[str]) -> list[CallRecord]:
        out = []
        async for _, data in self._scan("call"):
            if data is None:
                continue
            record = _call_record(_bytes(data))
            named = {record.caller, record.callee, *record.devices}
            if not named.isdisjoint(sessions):
                out.append(record)
        return out

    async def rooms_with(self, sessions: set[str]) -> list[RoomRecord]:
        out = []
        async for _, data in self._scan("room"):
            if data is None:
                continue
            room = _decoders[RoomRecord].decode(_bytes(data))
            named = {*room.participants, *(k.session for k in room.lobby)}
            if not named.isdisjoint(sessions):
                out.append(room)
        return out

    async def forget_sessions(self, sessions: set[str]) -> None:
        ids = sorted(sessions)
        for start in range(0, len(ids), _SCAN_BATCH):
            await self._r.delete(*(self._k("session", s) for s in ids[start : start + _SCAN_BATCH]))
        for sid in ids:
            self._instances.pop(sid, None)
        keys = [
            _text(k) async for k in self._r.scan_iter(match=self._k("presence", "*"), count=1000)
        ]
        for start in range(0, len(keys), _SCAN_BATCH):
            batch = keys[start : start + _SCAN_BATCH]
            async with self._r.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.zrange(key, 0, -1)
                members = await pipe.execute()
            async with self._r.pipeline(transaction=False) as pipe:
                for key, listed in zip(batch, members, strict=True):
                    stale = [m for m in listed if _text(m) in sessions]
                    if stale:
                        pipe.zrem(key, *stale)
                await pipe.execute()

    # ---------------------------------------------------------------- upkeep
    async def ping(self) -> bool:
        try:
            answered = bool(await self._r.ping())
        except Exception:
            return False
        self._reachable()
        return answered

    async def sweep(self) -> int:
        return 0  # TTLs are native; presence sets drop stale members on write

    async def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "records": {}, "presence": {}, "sessions": {}, "owners": {}, "timers": {}
        }  # fmt: skip
        async for raw in self._r.scan_iter(match=self.prefix + "*", count=500):
            key = _text(raw)
            kind, _, rest = key.removeprefix(self.prefix).partition(":")
            if kind in _KINDS:
                data = await self._r.get(key)
                if data is not None:
                    pttl = await self._r.pttl(key)
                    blob = _bytes(data)
                    decoded = (
                        _call_record(blob)
                        if kind == "call"
                        else _decoders[_KINDS[kind]].decode(blob)
                    )
                    out["records"][f"{kind}:{rest}"] = msgspec.to_builtins(decoded) | {
                        "ttl_ms": pttl
                    }
            elif kind == "presence":
                # withscores=True: (member, score) pairs, which the reply's type does not say
                members = cast(
                    "list[tuple[bytes, float]]", await self._r.zrange(key, 0, -1, withscores=True)
                )
                out["presence"][rest] = {_text(m): s for m, s in members}
            elif kind == "session":
                out["sessions"][rest] = {"instance": _text(await self._r.get(key) or b"")}
            elif kind == "timers":
                entries = cast(
                    "list[tuple[bytes, float]]", await self._r.zrange(key, 0, -1, withscores=True)
                )
                out["timers"] = {_text(m): s for m, s in entries}
            elif kind == "quota":
                count = _text(await self._r.get(key) or b"0")
                out.setdefault("quotas", {})[rest] = {
                    "count": int(count),
                    "ttl_ms": await self._r.pttl(key),
                }
            elif kind == "live":
                items = cast(
                    "list[tuple[bytes, float]]", await self._r.zrange(key, 0, -1, withscores=True)
                )
                out.setdefault("live", {})[rest] = {
                    "items": {_text(m): s for m, s in items},
                    "ttl_ms": await self._r.pttl(key),
                }
            elif kind == "alive":
                beats = cast(
                    "list[tuple[bytes, float]]", await self._r.zrange(key, 0, -1, withscores=True)
                )
                out["instances"] = {_text(m): s for m, s in beats}
            elif kind == "owner":
                out["owners"][rest] = sorted(_text(t) for t in await self._r.smembers(key))
            else:
                out.setdefault("other", []).append(key)
        return out

    async def close(self) -> None:
        for instance in list(self._listeners):
            self.unsubscribe(instance)
        if self._resp is not None:
            await self._resp.close()
        await self._hot.aclose()
        await self._r.aclose()


class InviteStoreError(Exception):
    """Codes could not be stored in Redis (one line: what Redis said)."""


def mint_in_redis(url: str, count: int, ttl: float, prefix: str = "hello:") -> list[str]:
    """Mint ``count`` invite codes into the Redis at ``url``: digests only, each
    expiring in ``ttl`` (server/invites.py takes one with a single ``DEL``).
    Here, not in invites.py: this module is the only one importing redis (the
    ``server`` extra), as tests/packaging checks."""
    import redis

    from hello_tui.server.ids import new_id
    from hello_tui.server.invites import digest

    codes = [new_id() for _ in range(count)]
    client = redis.Redis.from_url(url)
    try:
        with client.pipeline(transaction=True) as pipe:
            for code in codes:
                pipe.set(f"{prefix}invite:{digest(code)}", b"1", ex=max(1, int(ttl)), nx=True)
            pipe.execute()
    except redis.RedisError as exc:
        raise InviteStoreError(str(exc)) from None
    finally:
        client.close()
    return codes
