"""The signaling client: one WebSocket to the rendezvous server, typed.

What it does for the front ends (TUI, CLI, the call engine):

- ``connect(url)`` opens ``/ws``, says ``hello`` and waits for ``welcome``;
  every failure is a typed exception with a one-line message
  (:class:`ServerUnreachable`, :class:`ProtocolMismatch`).
- ``request(msg)`` stamps an auto-incrementing ``ref`` and returns the reply
  carrying that ``ref``; an ``error`` reply raises :class:`SignalingError`
  with the server's code. Messages the server sends on its own (incoming
  calls, relayed SDP, peers joining…) go to :meth:`events` instead.
- When the connection drops (server restart, network loss, or a
  ``reconnect`` notice) it reconnects with exponential backoff and full
  jitter, says ``hello`` again, logs in again if it was logged in, and emits
  :class:`Reconnected`. Requests made meanwhile wait for that (up to their
  timeout) instead of failing at once.

Only routing data and SDP cross this connection (promise P1). No Textual
here: this is core.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as _ws_connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidMessage,
    InvalidStatus,
    WebSocketException,
)

from hello_tui import __version__
from hello_tui.signaling.errors import (
    ConnectionLost,
    NotConnected,
    ProtocolMismatch,
    RequestTimeout,
    ServerUnreachable,
    SignalingClientError,
    SignalingError,
)
from hello_tui.signaling.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    PROTOCOL_VERSIONS,
    Accept,
    AccountDelete,
    Answer,
    Call,
    CallCreated,
    CallTurn,
    Connected,
    DeviceBoxKey,
    Error,
    Hangup,
    HangupReason,
    Hello,
    IceServer,
    LoggedIn,
    Login,
    LoginProof,
    Logout,
    Message,
    Offer,
    ProtocolError,
    Reconnect,
    Register,
    Reject,
    RejectReason,
    Ringing,
    RoomAdmit,
    RoomCreate,
    RoomCreated,
    RoomDecline,
    RoomDelete,
    RoomIce,
    RoomInfo,
    RoomJoin,
    RoomJoined,
    RoomKeyAdd,
    RoomKeyBox,
    RoomKnocking,
    RoomLeave,
    RoomList,
    RoomRename,
    Rooms,
    RoomTurn,
    Welcome,
    canonical_origin,
    clean_display_name,
    decode_server,
    encode,
)
from hello_tui.signaling.protocol import Challenge as ChallengeMsg

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = [
    "ConnectionLost",
    "Disconnected",
    "Event",
    "NotConnected",
    "ProtocolMismatch",
    "ReconnectPolicy",
    "Reconnected",
    "RequestTimeout",
    "ServerUnreachable",
    "SignalingClient",
    "SignalingClientError",
    "SignalingError",
    "ws_url",
]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)


# ---------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class Disconnected:
    """The connection dropped. ``will_retry`` is False when the client gave up
    (attempts exhausted or reconnecting disabled): it is then closed."""

    reason: str
    will_retry: bool


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The connection is back and the session restored. ``name`` is the
    account logged in again (None if anonymous, or if re-login failed, in
    which case ``login_error`` says why). Calls in progress at the drop are
    gone on the server: front ends should end them."""

    session: str
    name: str | None
    attempts: int
    login_error: str | None = None


# Unsolicited server messages (Incoming, Ringing, Accepted, Offer, Answer,
# CallEnded, PeerJoined, PeerLeft, Reconnect, a ref-less Error) plus the two above.
Event = Message | Disconnected | Reconnected


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter: attempt *n* (from 0) waits a
    uniform random time in ``[0, min(cap, base * 2**n)]``, so a server restart
    is not met by every client at the same instant. ``max_attempts=None``
    retries forever (a TUI left open); the delay itself is always bounded."""

    base: float = 0.25
    cap: float = 15.0
    max_attempts: int | None = None

    def delay(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, min(self.cap, self.base * (2 ** min(attempt, 30))))


def ws_url(url: str) -> str:
    """The WebSocket endpoint for a server URL: ``http(s)://`` becomes ``ws(s)://``
    and ``/ws`` is appended unless the path already ends with it."""
    parts = urlsplit(url.strip())
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"not a server URL: {url!r} (expected ws://, wss://, http:// or https://)")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
    errno.EADDRNOTAVAIL: "address not available",
}


def _reason(exc: BaseException) -> str:
    """A short lower-case phrase for why a connection attempt failed."""
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return f"no hello-tui server there (HTTP {status} on the WebSocket upgrade)"
    if isinstance(exc, InvalidMessage) and isinstance(exc.__cause__, OSError):
        return _reason(exc.__cause__)  # the connection failed during the upgrade
    if isinstance(exc, ConnectionClosed):
        sent = exc.sent
        if sent is not None and sent.code not in (1000, 1001) and not exc.rcvd_then_sent:
            # We closed it on an error: websockets' own words, not the server's.
            if sent.reason == "keepalive ping timeout":
                return "no answer to the heartbeat ping"
            return sent.reason.lower() or f"closed with code {sent.code}"
        cause = exc.__cause__
        return _reason(cause) if cause is not None else "the server closed the connection"
    if isinstance(exc, WebSocketException):  # an answer that is not a WebSocket upgrade
        return f"no hello-tui server there ({str(exc).lower() or type(exc).__name__})"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not trusted"
    if isinstance(exc, OSError):
        if exc.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[exc.errno]
        # Multiple addresses (::1 and 127.0.0.1) fail as a combined OSError.
        text = str(exc).lower()
        if "connect call failed" in text or "refused" in text:
            return "connection refused"
        return text or type(exc).__name__
    text = str(exc).strip()
    return text.lower() if text else type(exc).__name__


class _Connect(_ws_connect):
    """websockets' ``connect`` minus redirects: a 3xx on ``/ws`` is not a hello-tui
    server (the login signs the origin we dialled, so a moved server could not
    take it anyway), as with aiohttp before."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class _VersionRefused(ProtocolMismatch):
    """``error version`` in answer to our ``hello``: an older server may take an older one."""


class SignalingClient:
    """One connection to a hello-tui server; safe to share between tasks.

    Use as ``async with SignalingClient() as c: await c.connect(url)``, or call
    :meth:`close` when done.
    """

    def __init__(
        self,
        *,
        client_name: str = f"hello-tui/{__version__}",
        connect_timeout: float = 5.0,
        request_timeout: float = 10.0,
        reconnect: ReconnectPolicy | None = ReconnectPolicy(),
        heartbeat: float | None = 20.0,
        rng: random.Random | None = None,
    ) -> None:
        self.client_name = client_name[:64]
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.reconnect_policy = reconnect
        self.heartbeat = heartbeat
        self._rng = rng or random.Random()
        self._ws: ClientConnection | None = None
        self._url: str | None = None
        self._welcome: Welcome | None = None
        self._next_ref = 1
        self._pending: dict[int, asyncio.Future[Message]] = {}
        self._events: asyncio.Queue[Event | None] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # set while connected with the session restored
        self._closed = False
        self._send_lock = asyncio.Lock()
        self._login_name: str | None = None
        self._login_key: Ed25519PrivateKey | None = None
        self._reconnect_after: float = 0.0  # from a server `reconnect` notice
        self._background: set[asyncio.Task[None]] = set()  # keep references until done
        self._lost_reason = ""
        # Told before each reconnect attempt's wait: (delay in s, why the last try
        # failed or why the connection dropped). A face shows "reconnecting in Ns".
        self.on_retry: Callable[[float, str], None] | None = None
        # How this device shows itself in rooms (sent with room-join to a server
        # that speaks version 2; "" sends none). Set by the face.
        self.display_name = ""

    # ------------------------------------------------------------ state
    @property
    def url(self) -> str | None:
        """The WebSocket URL in use (after :meth:`connect`)."""
        return self._url

    @property
    def welcome(self) -> Welcome | None:
        return self._welcome

    @property
    def session(self) -> str | None:
        """The server's id for this connection (changes on every reconnect)."""
        return self._welcome.session if self._welcome else None

    @property
    def name(self) -> str | None:
        """The account this connection is logged in as, if any."""
        return self._login_name

    @property
    def is_connected(self) -> bool:
        """True while connected with the session restored (False while reconnecting)."""
        return self._ready.is_set()

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> SignalingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ connection
    async def connect(self, url: str) -> Welcome:
        """Open the connection and the session. Raises :class:`ServerUnreachable`
        or :class:`ProtocolMismatch`; does not retry (the caller asked for
        this server now, so it should hear at once that it is not there)."""
        if self._closed:
            raise NotConnected("this client was closed")
        if self._ws is not None:
            raise NotConnected("already connected; close() first")
        try:
            self._url = ws_url(url)
        except ValueError as exc:
            raise ServerUnreachable(url, str(exc)) from None
        welcome = await self._open()
        self._ready.set()
        return welcome

    def _attempt_timeout(self, attempt: int) -> float:
        """How long reconnect ``attempt`` (from 1) may take to get a welcome: the
        connect timeout, doubled each attempt up to 8 times it. After an instance
        dies its thousands of clients arrive at once, and the survivors' queue
        can be longer than 5 s: a client that gave up at 5 s and came back would
        only add to the queue (each abandoned attempt cost a handshake anyway)."""
        return float(self.connect_timeout * 2 ** min(max(attempt - 1, 0), 3))

    async def _open(self, timeout: float | None = None) -> Welcome:
        """Connect, hello, welcome; start the reader. Raises typed errors."""
        assert self._url is not None
        timeout = self.connect_timeout if timeout is None else timeout
        heartbeat = self.heartbeat
        try:
            ws = await asyncio.wait_for(
                _Connect(
                    self._url,
                    # A ping every `heartbeat` s, the connection dropped if no pong
                    # comes within half of it (aiohttp's heartbeat, as before).
                    ping_interval=heartbeat,
                    ping_timeout=heartbeat / 2 if heartbeat else None,
                    # A hostile server cannot make us buffer more than this; frames
                    # over MAX_MESSAGE_BYTES are then refused by decode_server.
                    max_size=2 * MAX_MESSAGE_BYTES,
                    compression=None,  # small JSON: not worth a zlib context per side
                    proxy=None,  # as before: no proxy from the environment
                    open_timeout=None,  # ours, above
                ),
                timeout,
            )
        except TimeoutError:
            raise ServerUnreachable(self._url, f"timed out after {timeout:g} s") from None
        except (WebSocketException, OSError) as exc:
            raise ServerUnreachable(self._url, _reason(exc)) from None
        try:
            welcome = await self._handshake(ws, timeout)
        except (WebSocketException, OSError) as exc:
            await ws.close()
            raise ServerUnreachable(self._url, _reason(exc)) from None
        except BaseException:
            await ws.close()
            raise
        if self._closed:  # close() ran while we were connecting
            await ws.close()
            raise NotConnected("the signaling client was closed")
        self._ws = ws
        self._welcome = welcome
        self._reader = asyncio.get_running_loop().create_task(
            self._read_loop(ws), name="signaling-reader"
        )
        return welcome

    @property
    def version(self) -> int:
        """The protocol version this connection speaks (the server's answer)."""
        return self._welcome.version if self._welcome else PROTOCOL_VERSION

    async def _handshake(self, ws: ClientConnection, timeout: float) -> Welcome:
        """``hello`` with our version; an older server answers ``error version``
        and stays ready for another ``hello``: say the older version then."""
        for version in sorted(PROTOCOL_VERSIONS, reverse=True):
            try:
                return await self._hello(ws, version, timeout)
            except _VersionRefused:
                if version == min(PROTOCOL_VERSIONS):
                    raise
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _hello(self, ws: ClientConnection, version: int, timeout: float) -> Welcome:
        assert self._url is not None
        ref = self._take_ref()
        await ws.send(encode(Hello(version=version, client=self.client_name, ref=ref)), text=True)
        try:
            async with asyncio.timeout(timeout):
                data = await ws.recv()
        except TimeoutError:
            raise ProtocolMismatch(
                f"{self._url}: no welcome within {timeout:g} s (not a hello-tui server?)"
            ) from None
        except ConnectionClosed:
            data = b""  # (as a binary frame: not a welcome)
        if not isinstance(data, str):
            raise ProtocolMismatch(
                f"{self._url}: the server closed the connection instead of a welcome"
            )
        try:
            msg = decode_server(data)
        except ProtocolError as exc:
            raise ProtocolMismatch(f"{self._url}: unexpected first message ({exc})") from None
        if isinstance(msg, Error):
            if msg.code == "version":
                raise _VersionRefused(
                    f"{self._url}: the server does not speak protocol version "
                    f"{version}: {msg.message}"
                )
            raise SignalingError(msg.code, msg.message)
        if not isinstance(msg, Welcome):
            raise ProtocolMismatch(f"{self._url}: expected welcome, got {type(msg).__name__}")
        if msg.version != version:
            raise ProtocolMismatch(
                f"{self._url}: the server speaks protocol version {msg.version}, "
                f"this client {version}"
            )
        return msg

    async def close(self) -> None:
        """Close for good: no reconnect; pending requests fail; :meth:`events` ends."""
        if self._closed:
            return
        self._closed = True
        self._ready.clear()
        for task in (self._reconnector, self._reader):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        self._fail_pending(ConnectionLost("the signaling client was closed"))
        self._events.put_nowait(None)

    # ------------------------------------------------------------ plumbing
    def _take_ref(self) -> int:
        ref = self._next_ref
        self._next_ref += 1
        return ref

    def _fail_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(exc)

    async def _send(self, ws: ClientConnection, msg: Message) -> None:
        async with self._send_lock:
            await ws.send(encode(msg), text=True)  # UTF-8 JSON bytes, as a text frame

    async def _read_loop(self, ws: ClientConnection) -> None:
        reason = "the server closed the connection"
        try:
            async for data in ws:  # ends at a normal close (1000, 1001)
                if isinstance(data, str):  # binary frames are no part of the protocol
                    self._dispatch(data)
        except asyncio.CancelledError:
            raise
        except ConnectionClosed as exc:  # an error closed it, or the TCP connection broke
            text = _reason(exc)
            reason = text if text == reason else f"connection error: {text}"
        except Exception as exc:  # a transport error surfacing from recv()
            reason = f"connection error: {_reason(exc)}"
        if self._closed or self._ws is not ws:
            return
        self._on_lost(reason)

    def _dispatch(self, data: str) -> None:
        try:
            msg = decode_server(data)
        except ProtocolError as exc:
            # A newer server may send something we do not know: fail the request
            # it answers (if any), otherwise note it and carry on.
            fut = self._pending.pop(exc.ref, None) if exc.ref is not None else None
            if fut is not None and not fut.done():
                fut.set_exception(ProtocolMismatch(f"unreadable reply from the server: {exc}"))
            else:
                log.warning("ignoring an unreadable server message: %s", exc)
            return
        if msg.ref is not None:
            fut = self._pending.pop(msg.ref, None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(msg)
                return
        if isinstance(msg, Reconnect):
            self._reconnect_after = max(0.0, msg.after_ms / 1000)
            self._events.put_nowait(msg)
            # The server is going away: do not wait for it to cut us off.
            if self._ws is not None:
                self._spawn(self._ws.close())
            return
        self._events.put_nowait(msg)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_lost(self, reason: str) -> None:
        self._ready.clear()
        self._lost_reason = reason
        self._ws = None
        self._fail_pending(ConnectionLost(f"connection to the server lost ({reason})"))
        if self._reconnector is not None and not self._reconnector.done():
            return  # lost again while restoring the session: that loop carries on
        retry = self.reconnect_policy is not None and (
            self.reconnect_policy.max_attempts is None or self.reconnect_policy.max_attempts > 0
        )
        self._events.put_nowait(Disconnected(reason, will_retry=retry))
        if retry:
            self._reconnector = asyncio.get_running_loop().create_task(
                self._reconnect_loop(), name="signaling-reconnect"
            )
        else:
            self._spawn(self.close())

    def drop_connection(self, reason: str) -> None:
        """Give up the current connection now and reconnect, as if it had dropped
        (the network changed: the old TCP connection may be silently dead, and the
        heartbeat would take ~30 s to say so)."""
        ws = self._ws
        if self._closed or ws is None:
            return
        self._on_lost(reason)

        async def close() -> None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)

        self._spawn(close())

    async def _reconnect_loop(self) -> None:
        policy = self.reconnect_policy
        assert policy is not None
        attempt = 0
        last_error = ""
        while not self._closed:
            if policy.max_attempts is not None and attempt >= policy.max_attempts:
                break
            delay = policy.delay(attempt, self._rng)
            if attempt == 0 and self._reconnect_after:
                delay += self._reconnect_after
                self._reconnect_after = 0.0
            if self.on_retry is not None:
                self.on_retry(delay, self._lost_reason)
            await asyncio.sleep(delay)
            attempt += 1
            try:
                welcome = await self._open(self._attempt_timeout(attempt))
            except SignalingClientError as exc:
                last_error = str(exc)
                self._lost_reason = getattr(exc, "reason", "") or last_error  # short form
                log.info("reconnect attempt %d failed: %s", attempt, exc)
                continue
            login_error = None
            if self._login_name is not None and self._login_key is not None:
                try:
                    await self._do_login(self._login_name, self._login_key)
                except SignalingClientError as exc:
                    if isinstance(exc, ConnectionLost):
                        continue  # dropped again mid-login: try again
                    login_error = str(exc)
                    self._login_name = self._login_key = None
            if self._ws is None:  # lost again right after the login
                continue
            self._ready.set()
            self._reconnector = None
            self._events.put_nowait(
                Reconnected(welcome.session, self._login_name, attempt, login_error)
            )
            return
        if not self._closed:
            self._events.put_nowait(
                Disconnected(f"gave up reconnecting: {last_error}", will_retry=False)
            )
            self._reconnector = None
            await self.close()

    # ------------------------------------------------------------ requests
    async def request(self, msg: Message, *, timeout: float | None = None) -> Message:
        """Send ``msg`` with a fresh ``ref`` and return the server's reply.

        While reconnecting, waits (within ``timeout``) for the session to be
        restored. Raises :class:`SignalingError` on an ``error`` reply,
        :class:`RequestTimeout`, :class:`ConnectionLost` or :class:`NotConnected`.
        """
        limit = self.request_timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                await self._wait_ready()
                return await self._request_now(msg)
        except TimeoutError:
            name = type(msg).__name__
            raise RequestTimeout(f"the server did not answer {name} within {limit:g} s") from None

    async def _wait_ready(self) -> None:
        if self._closed:
            raise NotConnected("not connected to a server")
        if not self._ready.is_set():
            if self._ws is None and self._reconnector is None:
                raise NotConnected("not connected to a server")
            await self._ready.wait()

    async def _request_now(self, msg: Message) -> Message:
        """Send on the current connection without waiting for readiness (used
        by the session restore itself)."""
        ws = self._ws
        if ws is None:
            raise ConnectionLost("connection to the server lost")
        ref = self._take_ref()
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._pending[ref] = fut
        try:
            msg.ref = ref
            try:
                await self._send(ws, msg)
            except (WebSocketException, ConnectionError, RuntimeError) as exc:
                raise ConnectionLost(f"connection to the server lost ({_reason(exc)})") from None
            reply = await fut
        finally:
            self._pending.pop(ref, None)
        if isinstance(reply, Error):
            raise SignalingError(reply.code, reply.message)
        return reply

    async def _expect(self, msg: Message, kind: type[M], *, timeout: float | None = None) -> M:
        reply = await self.request(msg, timeout=timeout)
        if not isinstance(reply, kind):
            raise ProtocolMismatch(
                f"expected {kind.__name__} in reply to {type(msg).__name__}, "
                f"got {type(reply).__name__}"
            )
        return reply

    async def _ok(self, msg: Message) -> None:
        """A request whose success reply is a bare ``ok`` (any non-error reply is accepted)."""
        await self.request(msg)

    async def events(self) -> AsyncIterator[Event]:
        """Unsolicited events, in order; ends when the client is closed."""
        while True:
            ev = await self._events.get()
            if ev is None:
                self._events.put_nowait(None)  # let other iterators end too
                return
            yield ev

    async def next_event(self, timeout: float | None = None) -> Event:
        """The next event (raises ``TimeoutError`` after ``timeout`` s, or
        :class:`NotConnected` if the client closed)."""
        async with asyncio.timeout(timeout):
            ev = await self._events.get()
        if ev is None:
            self._events.put_nowait(None)
            raise NotConnected("the signaling client was closed")
        return ev

    # ------------------------------------------------------------ accounts
    async def register(self, name: str, key: Ed25519PrivateKey, invite: str = "") -> None:
        """Bind ``name`` to ``key``'s public half on the server."""
        from hello_tui.signaling.identity import public_key_b64

        await self._ok(Register(name=name, public_key=public_key_b64(key), invite=invite))

    async def login(self, name: str, key: Ed25519PrivateKey) -> LoggedIn:
        """Prove ownership of ``name`` (challenge, signature); remembered so a
        reconnect logs in again without the front end's help."""
        try:
            async with asyncio.timeout(self.request_timeout):
                await self._wait_ready()
        except TimeoutError:
            raise RequestTimeout(
                f"not reconnected to the server within {self.request_timeout:g} s"
            ) from None
        return await self._do_login(name, key)

    async def _do_login(self, name: str, key: Ed25519PrivateKey) -> LoggedIn:
        from hello_tui.signaling.identity import sign_login

        try:
            async with asyncio.timeout(self.request_timeout):
                challenge = await self._request_now(Login(name=name))
                if not isinstance(challenge, ChallengeMsg):
                    raise ProtocolMismatch(
                        f"expected challenge in reply to login, got {type(challenge).__name__}"
                    )
                assert self._welcome is not None and self._url is not None
                origin = canonical_origin(self._url)  # the server we dialled, nothing it says
                signature = sign_login(key, challenge.nonce, self._welcome.session, origin)
                reply = await self._request_now(LoginProof(signature=signature, origin=origin))
        except TimeoutError:
            raise RequestTimeout(
                f"the server did not complete the login within {self.request_timeout:g} s"
            ) from None
        if not isinstance(reply, LoggedIn):
            raise ProtocolMismatch(
                f"expected logged-in in reply to login-proof, got {type(reply).__name__}"
            )
        self._login_name, self._login_key = reply.name, key
        return reply

    async def logout(self) -> None:
        await self._ok(Logout())
        self._login_name = self._login_key = None

    async def delete_account(self) -> None:
        """Delete the logged-in account and all the server holds for it."""
        await self._ok(AccountDelete())
        self._login_name = self._login_key = None

    # ------------------------------------------------------------ direct calls
    async def call(self, to: str, offer_sdp: str, video: bool = False) -> str:
        """Ring every device of ``to``; returns the call id."""
        reply = await self._expect(Call(to=to, offer=offer_sdp, video=video), CallCreated)
        return reply.call_id

    async def ringing(self, call_id: str) -> None:
        await self._ok(Ringing(call_id=call_id))

    async def accept(self, call_id: str) -> str:
        """Accept an incoming call; returns the caller's SDP offer."""
        reply = await self._expect(Accept(call_id=call_id), Offer)
        return reply.sdp

    async def reject(self, call_id: str, reason: RejectReason = "rejected") -> None:
        await self._ok(Reject(call_id=call_id, reason=reason))

    async def offer(self, call_id: str, sdp: str) -> None:
        """Send an SDP offer to the peer of a room call."""
        await self._ok(Offer(call_id=call_id, sdp=sdp))

    async def answer(self, call_id: str, sdp: str) -> None:
        await self._ok(Answer(call_id=call_id, sdp=sdp))

    async def connected(self, call_id: str) -> None:
        """Media is flowing: stops the server's connection timer."""
        await self._ok(Connected(call_id=call_id))

    async def hangup(self, call_id: str, reason: HangupReason = "hangup") -> None:
        await self._ok(Hangup(call_id=call_id, reason=reason))

    # ------------------------------------------------------------ rooms
    async def room_create(
        self, name_ciphertext: str, ttl: int | None = None, context: str = "", knock: bool = False
    ) -> RoomCreated:
        """Create a room; the reply carries its token, expiry and base URL
        (add the key fragment with :func:`roomcrypt.room_url`). ``context``
        (encrypted, :func:`roomcrypt.encrypt_context`) and ``knock`` (visitors
        wait until the owner lets them in) need a version-2 server."""
        self._need_v2(context, "room context")
        self._need_v2(knock, "knock to enter")
        msg = RoomCreate(name=name_ciphertext, ttl=ttl, context=context, knock=knock)
        return await self._expect(msg, RoomCreated)

    @property
    def login_identity(self) -> tuple[str, Ed25519PrivateKey] | None:
        """The account name and device key this client signed in with (None: anonymous)."""
        if self._login_name is None or self._login_key is None:
            return None
        return self._login_name, self._login_key

    async def device_box_key(self, box_key: str, signature: str) -> None:
        """v2: publish this device's X25519 key for room keys (``roomkeys.sign_box_key``)."""
        await self._ok(DeviceBoxKey(box_key=box_key, signature=signature))

    async def room_key_add(self, token: str, key_boxes: Sequence[RoomKeyBox]) -> None:
        """v2: add boxes of a room's key for more devices of the account."""
        await self._ok(RoomKeyAdd(token=token, key_boxes=list(key_boxes)))

    def _need_v2(self, value: object, what: str) -> None:
        if value and self.version < 2:
            raise SignalingError("not-allowed", f"this server is too old to keep {what}")

    async def room_list(self) -> list[RoomInfo]:
        return (await self._expect(RoomList(), Rooms)).rooms

    async def room_rename(
        self,
        token: str,
        name_ciphertext: str,
        context: str | None = None,
        knock: bool | None = None,
    ) -> None:
        """Rename; ``context`` (encrypted) replaces the room's and ``knock`` switches
        knocking, None keeps either."""
        self._need_v2(context is not None, "room context")
        self._need_v2(knock is not None, "knock to enter")
        msg = RoomRename(token=token, name=name_ciphertext, context=context, knock=knock)
        await self._ok(msg)

    async def room_delete(self, token: str) -> None:
        await self._ok(RoomDelete(token=token))

    async def room_join(self, token: str, offer: str | None = None) -> RoomJoined:
        """Join; :attr:`display_name` rides along when the server speaks version 2.
        A knock-to-enter room answers ``room-knocking``: see :meth:`room_enter`."""
        return await self._expect(self._join_message(token, offer), RoomJoined)

    async def room_enter(
        self, token: str, offer: str | None = None, *, seat: str = ""
    ) -> RoomJoined | RoomKnocking:
        """Join, or knock at a knock-to-enter room: ``room-knocking`` means waiting
        to be let in (then the events ``room-knock-ended`` and ``room-joined``).
        ``seat``: a secret that lets a later session take this seat back (v2)."""
        reply = await self.request(self._join_message(token, offer, seat))
        if not isinstance(reply, (RoomJoined, RoomKnocking)):
            raise ProtocolMismatch(f"expected room-joined, got {type(reply).__name__}")
        return reply

    def _join_message(self, token: str, offer: str | None, seat: str = "") -> RoomJoin:
        name = clean_display_name(self.display_name) if self.version >= 2 else ""
        seat = seat if self.version >= 2 else ""
        return RoomJoin(token=token, offer=offer, display_name=name, seat=seat)

    async def room_reseat(self, token: str, seat: str, timeout: float) -> RoomJoined:
        """Take our seat in room ``token`` back on this (new) connection (v2)."""
        message = self._join_message(token, None, seat)
        reply = await self.request(message, timeout=timeout)
        if not isinstance(reply, RoomJoined):
            raise ProtocolMismatch(f"expected room-joined, got {type(reply).__name__}")
        return reply

    async def room_admit(self, token: str, knock: str) -> None:
        """Let a knocking visitor in (the owner's sessions only)."""
        await self._ok(RoomAdmit(token=token, knock=knock))

    async def room_decline(self, token: str, knock: str) -> None:
        """Turn a knocking visitor away."""
        await self._ok(RoomDecline(token=token, knock=knock))

    async def room_turn(self, token: str) -> list[IceServer]:
        """Short-lived TURN credentials for a call in room ``token`` (empty: no TURN,
        or a version-1 server, which has no ``room-turn``)."""
        if self.version < 2:
            return []
        return list((await self._expect(RoomTurn(token=token), RoomIce)).ice)

    async def call_turn(self) -> list[IceServer]:
        """Fresh TURN credentials for a direct call of this account (empty: no TURN,
        or a version-1 server, which has no ``call-turn``)."""
        if self.version < 2:
            return []
        return list((await self._expect(CallTurn(), RoomIce)).ice)

    async def room_leave(self, token: str, reason: HangupReason = "hangup") -> None:
        """Leave; ``media-fail`` (v2): because the media path is gone."""
        reason = reason if self.version >= 2 else "hangup"
        await self._ok(RoomLeave(token=token, reason=reason))
