"""One connected client: hello → anonymous → logged-in, one frame at a time.

Frames are read and handled in order; replies and deliveries go through
:meth:`Session.push` into a bounded queue drained by a writer task, so a
slow reader never blocks anyone else (it is dropped when its queue fills).
``push`` also keeps the session's own bookkeeping — which calls and rooms it
is a party to — so it can end them when the connection vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import WSCloseCode, WSMsgType, web

from hello_tui.server.errors import Refusal
from hello_tui.server.ids import new_id
from hello_tui.server.privacy import log, short
from hello_tui.server.ratelimit import TokenBucket
from hello_tui.signaling.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    PROTOCOL_VERSIONS,
    CallCreated,
    CallEnded,
    DeviceRevoked,
    Error,
    ErrorCode,
    Hello,
    Incoming,
    Message,
    Missed,
    Offer,
    Ok,
    PeerJoined,
    PeerLeft,
    ProtocolError,
    RoomJoined,
    RoomKnockEnded,
    RoomKnocking,
    Welcome,
    decode_client,
    encode,
    for_version,
)

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub
    from hello_tui.server.rooms import Knocking

Handler = Callable[["Session", Any], Awaitable[None]]
_CLOSE = None  # queue sentinel: flush, then close the socket
_TEXT = WSMsgType.TEXT
# Messages that ``push`` only forwards (no bookkeeping, the same in every
# version): from another instance their frame goes out as it came, neither
# decoded nor encoded again (an answer's SDP is most of an exchange's bytes).
_AS_IS = frozenset({b"ringing", b"accepted", b"answer", b"sas-reveal"})
_TAG = b'{"type":"'


# What a request gets while the shared store (Redis) cannot be reached.
_UNAVAILABLE = "the server cannot reach its database right now; try again in a moment"


class Session:
    """A client connection and what the server knows about it (memory only)."""

    def __init__(
        self, hub: Hub, ws: web.WebSocketResponse, base_url: str, peer: str, network: str = "-"
    ) -> None:
        self.hub = hub
        self.ws = ws
        self.base_url = base_url
        self.peer = peer  # truncated address, for logs
        self.network = network  # keyed hash of the client's network, for quotas
        self.id = new_id()
        self.state: Literal["new", "open", "closed"] = "new"
        self.name: str | None = None  # the plain account name: here and nowhere else
        self.account_key: str | None = None
        # The account's public key (base64url), told to the other party of a
        # call so its client can check the SDP's identity signature. Never logged.
        self.public_key: str | None = None
        self.pending_login: tuple[str, str] | None = None  # (name, nonce)
        # The origins a login on this connection may be signed for (server/origin.py).
        self.login_origins: frozenset[str] = frozenset()
        self.party_calls: set[str] = set()
        self.rooms: set[str] = set()
        self.version = PROTOCOL_VERSION  # what this client said hello with
        # The display name given with each room-join (token → name): in this live
        # connection only, like ``name``; never stored, never logged.
        self.display_names: dict[str, str] = {}
        # Knocks at knock-to-enter rooms (token → what it brought): memory only too.
        self.knocks: dict[str, Knocking] = {}
        # Outgoing frames (encoded JSON), drained by a writer task that exists only
        # while there is something to send: an idle connection holds neither a
        # queue nor a task (memory per idle connection is what caps a server).
        self._queue: deque[bytes | None] | None = None
        self._queue_max = hub.settings.send_queue
        self._writer: asyncio.Task[None] | None = None
        self._bucket = TokenBucket(hub.settings.rate, hub.settings.burst)
        self._close_code: int = WSCloseCode.GOING_AWAY
        self._closing = False  # the writer is running the close handshake
        self._hello_deadline: asyncio.TimerHandle | None = None

    @property
    def owner(self) -> str:
        """Who owns the rooms this session creates."""
        return f"a:{self.account_key}" if self.account_key else f"s:{self.id}"

    # ---------------------------------------------------------------- output
    def push(self, message: Message) -> None:
        """Queue ``message`` for this client (never blocks)."""
        if self.state == "closed":
            return
        if self.version < PROTOCOL_VERSION:
            downgraded = for_version(message, self.version)
            if downgraded is None:
                return
            message = downgraded
        match message:
            case Incoming() if self.party_calls:
                # In a call already: the caller hears busy, this user hears who called.
                self.hub.calls.busy_elsewhere(self, message.call_id)
                message = Missed(
                    call_id=message.call_id,
                    caller=message.caller,
                    video=message.video,
                    caller_key=message.caller_key,
                    caller_chain=message.caller_chain,
                )
            case PeerJoined():
                self.party_calls.add(message.call_id)
                if self.display_names.get(message.token):
                    self.hub.spawn(self.hub.rooms.tell_name(self, message.token, message.call_id))
            case CallCreated() | Offer():
                self.party_calls.add(message.call_id)
            case RoomJoined():
                self.rooms.add(message.room.token)
                if message.call_id:
                    self.party_calls.add(message.call_id)
            case CallEnded() | PeerLeft():
                self.party_calls.discard(message.call_id)
            case RoomKnocking() if message.owner_present and message.token in self.knocks:
                self.hub.spawn(self.hub.rooms.announce_knock(self, message.token))
            case RoomKnockEnded() if self._knock_ended(message):
                pass
            case DeviceRevoked():  # one of the account's keys is gone: is it this one?
                self.hub.spawn(self.hub.devices.revoked_here(self, message))
        if not self._put(encode(message)):
            log.warning("session %s dropped: not reading", short(self.id))
            self.close(WSCloseCode.POLICY_VIOLATION)

    def push_frame(self, frame: bytes) -> bool:
        """Send an encoded server message as it is, if :meth:`push` would do
        nothing more with it (see ``_AS_IS``); False: push the decoded message."""
        if self.version < PROTOCOL_VERSION or not frame.startswith(_TAG):
            return False
        if frame[9 : frame.find(b'"', 9)] not in _AS_IS:
            return False
        if self.state != "closed" and not self._put(frame):
            log.warning("session %s dropped: not reading", short(self.id))
            self.close(WSCloseCode.POLICY_VIOLATION)
        return True

    def _knock_ended(self, message: RoomKnockEnded) -> bool:
        """This session's own knock is over: forget it; admitted, enter the room."""
        state = self.knocks.get(message.token)
        if state is None or state.knock != message.knock:
            return False
        del self.knocks[message.token]
        if state.timer is not None:
            state.timer.cancel()
        if message.reason == "admitted":
            self.hub.spawn(self.hub.rooms.enter_admitted(self, message.token, state))
        return True

    def ok(self, ref: int | None) -> None:
        """Acknowledge a call-signalling message, only if the client asked (``ref``)."""
        if ref is not None:
            self.push(Ok(ref=ref))

    def error(self, code: ErrorCode, message: str, ref: int | None = None) -> None:
        self.hub.metrics.errors[code] += 1
        self.push(Error(code=code, message=message, ref=ref))

    def close(self, code: int = WSCloseCode.GOING_AWAY) -> None:
        """Close after what is queued has been sent."""
        self._close_code = code
        self._put(_CLOSE)
        if self._queue is not None and len(self._queue) >= self._queue_max:
            self.hub.spawn(self.ws.close(code=code))

    def _put(self, frame: bytes | None) -> bool:
        """Queue a frame (False if the queue is full); start the writer if idle.
        With nothing queued, a frame goes straight to the transport instead."""
        queue = self._queue
        if queue is None:
            if frame is not None and self._writer is None and self._send_now(frame):
                return True
            queue = self._queue = deque()
        elif len(queue) >= self._queue_max:
            return False
        queue.append(frame)
        if self._writer is None and not self._closing:
            self._writer = asyncio.get_running_loop().create_task(self._write(queue))
        return True

    def _send_now(self, frame: bytes) -> bool:
        """Write ``frame`` at once if the socket takes it without waiting: an
        uncompressed frame to a transport that is not paused (what aiohttp's
        ``send_frame`` does then, minus a task per message: ~10 % of an
        instance's CPU in the exchange bench). False: queue it instead."""
        writer = self.ws._writer
        if (
            writer is None
            or writer.compress
            or writer._closing
            or writer.protocol._paused
            or self._closing
        ):
            return False
        try:
            writer._write_websocket_frame(frame, _TEXT, 0)
        except (ConnectionError, RuntimeError):
            return False  # the writer task meets the same error and closes
        self.hub.metrics.messages_out += 1
        return True

    async def _write(self, queue: deque[bytes | None]) -> None:
        """Send what is queued, then stop; at the sentinel, close the socket."""
        while queue:
            frame = queue.popleft()
            if frame is _CLOSE:
                break
            try:
                await self.ws.send_frame(frame, _TEXT)
            except (ConnectionError, RuntimeError):
                break
            self.hub.metrics.messages_out += 1
        else:
            self._queue = self._writer = None  # drained: the next push starts afresh
            return
        self._closing = True  # this task stays self._writer: run() awaits the handshake
        await self.ws.close(code=self._close_code)

    # ---------------------------------------------------------------- account
    async def set_account(
        self, name: str | None, key: str | None, public_key: str | None = None
    ) -> None:
        """Switch identity; keeps the account's device list (presence) in step."""
        store = self.hub.store
        if self.account_key is not None:
            await store.remove_presence(self.account_key, self.id)
        self.name, self.account_key = name, key
        self.public_key = public_key if key is not None else None
        if key is not None:
            await store.add_presence(key, self.id, store.clock() + self.hub.settings.presence_ttl)

    # ---------------------------------------------------------------- input
    async def run(self) -> None:
        """Serve the connection until it closes, then forget it."""
        timeout = self.hub.settings.hello_timeout
        if timeout > 0:
            self._hello_deadline = asyncio.get_running_loop().call_later(timeout, self._no_hello)
        try:
            async for frame in self.ws:
                if frame.type == WSMsgType.TEXT:
                    await self._on_text(frame.data)
                elif frame.type == WSMsgType.BINARY:
                    self.hub.metrics.messages_in += 1
                    self.error("bad-message", "text frames only")
                else:  # ERROR (e.g. over max_msg_size: aiohttp closes with 1009)
                    break
        finally:
            if self._hello_deadline is not None:
                self._hello_deadline.cancel()
            self.state = "closed"
            writer = self._writer
            if writer is not None:
                if not self._closing:
                    writer.cancel()
                # A server-side close (shutdown) must finish its handshake, not be cut.
                with contextlib.suppress(asyncio.CancelledError, asyncio.TimeoutError):
                    await asyncio.wait_for(writer, timeout=5.0)
            await self._forget()

    async def _on_text(self, data: str) -> None:
        self.hub.metrics.messages_in += 1
        if not self._bucket.take():
            return self.error("rate-limited", "too many messages, slow down")
        if len(data) > MAX_MESSAGE_BYTES or (
            len(data) > MAX_MESSAGE_BYTES // 4 and len(data.encode()) > MAX_MESSAGE_BYTES
        ):
            return self.error("too-big", f"message over {MAX_MESSAGE_BYTES} bytes")
        try:
            message = decode_client(data)
        except ProtocolError as exc:
            return self.error(exc.code, str(exc), exc.ref)
        if self.state == "new" or isinstance(message, Hello):
            try:
                return await self._hello(message)
            except Exception as exc:
                if not self.hub.store.unavailable(exc):
                    raise
                # Not registered, so unreachable for calls: close, and the client's
                # backoff comes back once the store is.
                self.error("internal", _UNAVAILABLE, message.ref)
                return self.close(WSCloseCode.TRY_AGAIN_LATER)
        handler = self.hub.handlers.get(type(message))
        if handler is None:
            return self.error("bad-message", "not a client request", message.ref)
        started = time.perf_counter()
        try:
            await handler(self, message)
        except Refusal as refusal:
            self.error(refusal.code, refusal.message, message.ref)
        except Exception as exc:
            if self.hub.store.unavailable(exc):  # logged once by the store, not per request
                self.error("internal", _UNAVAILABLE, message.ref)
            else:
                log.exception("internal error on %s", type(message).__name__)
                self.error("internal", "internal error", message.ref)
        finally:
            kind = str(message.__struct_config__.tag)  # every message has a str tag
            self.hub.metrics.observe(kind, time.perf_counter() - started)

    def _no_hello(self) -> None:
        """A connection that has not said hello in time holds a slot for nothing."""
        self._hello_deadline = None
        if self.state == "new":
            timeout = self.hub.settings.hello_timeout
            self.error("hello-first", f"no hello within {timeout:g} s: closing")
            self.close(WSCloseCode.POLICY_VIOLATION)

    async def _hello(self, message: Message) -> None:
        if not isinstance(message, Hello):
            return self.error("hello-first", "send hello first", message.ref)
        if self.state != "new":
            return self.error("not-allowed", "hello was already received", message.ref)
        if message.version not in PROTOCOL_VERSIONS:
            text = f"unsupported version; this server speaks {PROTOCOL_VERSION}"
            return self.error("version", text, message.ref)
        self.version = message.version
        hub = self.hub
        await hub.store.register_session(
            self.id, hub.instance, hub.store.clock() + hub.settings.presence_ttl
        )
        self.state = "open"
        if self._hello_deadline is not None:
            self._hello_deadline.cancel()
            self._hello_deadline = None
        log.info("session %s open from %s", short(self.id), self.peer)
        self.push(
            Welcome(
                version=self.version,
                session=self.id,
                registration=hub.settings.registration,
                ref=message.ref,
            )
        )

    async def _forget(self) -> None:
        """The connection is gone: end its calls, leave its rooms, drop its records."""
        hub = self.hub
        try:
            for token in list(self.rooms):
                with contextlib.suppress(Refusal):
                    await hub.rooms.away(self, token)
            for token, knocking in list(self.knocks.items()):
                await hub.rooms.knock_over(self, token, knocking.knock, "left")
            for call_id in list(self.party_calls):
                await hub.calls.closed(self, call_id)
            if self.account_key is not None:
                await hub.store.remove_presence(self.account_key, self.id)
            await hub.store.unregister_session(self.id)
        except Exception as exc:
            # With the store unreachable, its records expire by their TTLs instead.
            if not hub.store.unavailable(exc):
                log.exception("cleanup of session %s failed", short(self.id))
        log.info("session %s closed", short(self.id))
