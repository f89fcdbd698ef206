"""The phone: one signaling connection, the calls on it, and who listens to them.

:class:`Phone` owns one :class:`SignalingClient` and routes what the server
sends to the right :class:`~hello_tui.call.call.Call` (by call id, or by room
token for a room that is waiting for its peer). Its owner chooses, once:

- the options every call starts from (:class:`CallOptions`, frozen: change
  them with ``phone.options = replace(phone.options, ...)``);
- the media policy (``media=``: :class:`CallMedia`, or :class:`EchoMedia` for
  the echo peer);
- the listeners (:class:`CallListener`): called synchronously with every
  event of every call, in order, before any ``call.events()`` consumer sees
  it, and with every call missed while busy. The history is one
  (:class:`hello_tui.call.history_recorder.HistoryRecorder`).

Core: no Textual, no CLI. The front ends decide what to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.call.media_policy import CallMedia, MediaPolicy
from hello_tui.call.options import CallOptions
from hello_tui.media.aiortc_adapter import warm_up
from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import Disconnected, Reconnected, SignalingClient
from hello_tui.signaling.errors import SignalingClientError

__all__ = ["CallListener", "Phone"]

log = logging.getLogger("hello_tui.call.engine")  # the name the log files have always shown

UNROUTED_MAX = 64  # server messages kept for a call id not registered yet


class CallListener:
    """Hears every call of a phone, synchronously (``phone.listeners.append``).

    A listener runs inside the call's own step: it must be quick and must not
    await; an exception is logged, never raised into the call."""

    def call_event(self, call: Call, event: ev.CallEvent) -> None:
        """Every event of every call, in order (``Ended`` last)."""

    def missed(self, shown: str) -> None:
        """Someone called while this device was in another call (the server told
        them busy); ``shown``: the name to show (a contact's, or the account's)."""


class Phone:
    """Calls over one signaling connection; routes server messages to them.

    ``async with Phone(client, options) as phone:`` then :meth:`dial`,
    :meth:`join` or :meth:`next_incoming`. The client must be connected (and
    logged in, to receive calls).
    """

    def __init__(
        self,
        client: SignalingClient,
        options: CallOptions | None = None,
        *,
        media: MediaPolicy = CallMedia,
    ) -> None:
        self.client = client
        self.options = options or CallOptions()
        self.media = media
        self.listeners: list[CallListener] = []
        self._calls: dict[str, Call] = {}
        self._room_calls: dict[str, Call] = {}
        self._unrouted: deque[p.Message] = deque(maxlen=UNROUTED_MAX)
        self._incoming: asyncio.Queue[Call] = asyncio.Queue()
        self._router: asyncio.Task[None] | None = None
        self._warming: asyncio.Task[None] | None = None
        self.live: set[Call] = set()
        self.calls_started = 0  # placed, joined or answered (session/connect.py's gc.freeze)
        # Front-end hooks: refuse a caller before ringing (blocked contacts: return
        # "busy" or "rejected"), and the name to show/record for a caller.
        self.screen: Callable[[str], p.RejectReason | None] | None = None
        self.name_of: Callable[[str], str] | None = None
        # Someone called while this device was in another call (the server told
        # them busy): the shown name, once it is in the history.
        self.on_missed: Callable[[str], None] | None = None
        # Someone is in a room this account owns and none of its devices is: the
        # server's room-waiting (rooms_local.waiting_room decrypts its name).
        self.on_room_waiting: Callable[[p.RoomWaiting], None] | None = None
        # Trust on first use (hello_tui.contacts.pins.KeyPins): None checks no keys.
        self.pins: Any = None
        # The server connection dropped (False) or is back (True): faces show it.
        self.on_connection: Callable[[bool], None] | None = None

    async def __aenter__(self) -> Phone:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._router is None:
            loop = asyncio.get_running_loop()
            self._router = loop.create_task(self._route())
            # A process's first call pays one-off costs (OpenSSL, libopus): now, not then.
            self._warming = loop.create_task(asyncio.to_thread(warm_up))

    async def close(self) -> None:
        """Hang up every live call and stop routing."""
        for call in list(self.live):
            with contextlib.suppress(Exception):
                await call.hangup()
        if self._warming is not None:  # no thread left behind
            await asyncio.wait({self._warming})
            self._warming = None
        if self._router is not None:
            self._router.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._router
            self._router = None

    # ------------------------------------------------------------ placing calls
    def _options(self, **overrides: Any) -> CallOptions:
        """The phone's options with ``overrides`` (None: keep the phone's)."""
        given = {key: value for key, value in overrides.items() if value is not None}
        return replace(self.options, **given) if given else self.options

    def dial(self, to: str, *, peer: str | None = None, **overrides: Any) -> Call:
        """Call the account ``to``; returns at once (watch the call's events)."""
        self.start()
        call = Call(self, "outgoing", self._options(**overrides), peer=peer or to)
        self.live.add(call)
        self.calls_started += 1
        call._start(call._run_outgoing(to))
        return call

    def join(self, room: str, *, peer: str | None = None, **overrides: Any) -> Call:
        """Join a room by URL (``…/r/TOKEN#k=KEY``) or token."""
        from hello_tui.signaling.roomcrypt import parse_room_url

        self.start()
        token, _key = parse_room_url(room)
        call = Call(
            self, "outgoing", self._options(**overrides), peer=peer or "room", room_token=token
        )
        call.room_url = room if "#k=" in room else ""  # a bare token cannot be rejoined
        self.live.add(call)
        self.calls_started += 1
        call._start(call._run_room(room))
        return call

    async def next_incoming(self, timeout: float | None = None) -> Call:
        """The next incoming call, ringing (accept or reject it)."""
        async with asyncio.timeout(timeout):
            return await self._incoming.get()

    # ------------------------------------------------------------ routing
    def _register(self, call_id: str, call: Call) -> None:
        self._calls[call_id] = call
        kept = [m for m in self._unrouted if getattr(m, "call_id", None) != call_id]
        for msg in self._unrouted:
            if getattr(msg, "call_id", None) == call_id:
                call._inbox.put_nowait(msg)
        self._unrouted = deque(kept, maxlen=UNROUTED_MAX)

    def _unregister(self, call: Call) -> None:
        self.live.discard(call)
        if call.call_id and self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]
        if call.room_token and self._room_calls.get(call.room_token) is call:
            del self._room_calls[call.room_token]

    async def _route(self) -> None:
        async for message in self.client.events():
            try:
                await self._dispatch(message)
            except Exception:
                log.exception("routing %s failed", type(message).__name__)
        for call in list(self.live):  # the client closed under us
            if not call.server_gone:  # a call that outlived the server goes on
                await call._end("unreachable", "the signaling connection closed")

    async def _dispatch(self, message: Any) -> None:
        if isinstance(message, (Disconnected, Reconnected)):
            # A connected call's media is the peers' own: it outlives the server
            # (docs/calls.md, "Calls that recover"); a call still being set up cannot.
            for live in list(self.live):
                if isinstance(message, Reconnected):
                    live._server_back()
                elif live.stage == "connected":
                    live._server_lost(message.reason, message.will_retry)
                else:
                    await live._end("unreachable", f"lost the server: {message.reason}")
            if self.on_connection is not None:
                self.on_connection(isinstance(message, Reconnected))
            return
        if isinstance(message, p.Incoming):
            await self._on_incoming(message)
            return
        if isinstance(message, p.Missed):
            self._on_missed(message)
            return
        if isinstance(message, p.PeerJoined):
            waiting = self._room_calls.get(message.token)
            if waiting is not None:
                waiting.call_id = message.call_id
                self._register(message.call_id, waiting)
                if message.display_name:  # the call shows it (its inbox, in order)
                    waiting._inbox.put_nowait(message)
            return
        if isinstance(message, p.RoomWaiting):
            if self.on_room_waiting is not None:
                self.on_room_waiting(message)
            return
        if isinstance(message, (p.RoomKnocking, p.RoomKnock, p.RoomKnockEnded, p.RoomJoined)):
            # Knock to enter: the room's call (visitor waiting, or owner inside) handles it.
            token = message.room.token if isinstance(message, p.RoomJoined) else message.token
            room_call = self._room_calls.get(token)
            if room_call is not None:
                room_call._inbox.put_nowait(message)
            return
        call_id = getattr(message, "call_id", None)
        if call_id is None:
            return
        call = self._calls.get(call_id)
        if call is None:
            self._unrouted.append(message)
        else:
            call._inbox.put_nowait(message)

    def _on_missed(self, msg: p.Missed) -> None:
        caller = msg.caller
        status = self._ring_time_status(caller, msg.caller_key, msg.caller_chain)
        trusted = status not in ("changed", "unproven")
        named = self.name_of(caller) if self.name_of and caller and trusted else caller
        shown = named or "anonymous"
        if self.screen is not None and caller and self.screen(caller) is not None:
            return  # blocked (or do-not-disturb): not even a missed call to show
        log.info("missed call %s while in another call", msg.call_id[:6])
        for listener in self.listeners:
            try:
                listener.missed(shown)
            except Exception:
                log.exception("a listener failed on a missed call")
        if self.on_missed is not None:
            self.on_missed(shown)

    def _ring_time_status(
        self, caller: str, key: str, chain: Sequence[p.DeviceApproval] = ()
    ) -> str | None:
        """What the pins say of the announced key before any proof (None: no pins)."""
        if self.pins is None or not self.pins.applies(caller):
            return None
        try:
            return str(self.pins.judge(caller, key, chain))
        except Exception:  # an unreadable file: the proven check will say so
            return None

    async def _ringing(self, call_id: str) -> None:
        with contextlib.suppress(SignalingClientError):  # the call's own messages end it
            await self.client.ringing(call_id)

    async def _on_incoming(self, msg: p.Incoming) -> None:
        caller = msg.caller
        status = self._ring_time_status(caller, msg.caller_key, msg.caller_chain)
        # A contact (its name, its photo) only for a key that is not known to be wrong.
        trusted = status not in ("changed", "unproven")
        named = self.name_of(caller) if self.name_of and caller and trusted else caller
        shown = named or "anonymous"
        call = Call(self, "incoming", self._options(), peer=shown, call_id=msg.call_id)
        call.caller, call.caller_video = caller, msg.video
        call.trust.announce(caller, msg.caller_key, contact_shown=trusted, chain=msg.caller_chain)
        verdict = self.screen(caller) if self.screen is not None else None
        self._register(msg.call_id, call)
        self.live.add(call)
        self.calls_started += 1
        call._emit(ev.Incoming(call_id=msg.call_id, caller=caller, video=msg.video))
        if status == "changed":  # warn while it rings, before anyone answers
            call.trust.emit_identity("changed", self.pins.get(caller), proven=False)
        if verdict is not None:
            await call.reject(verdict)
            return
        call._prefetch_media()  # devices opened while it rings, not after the answer
        call._start(call._serve_inbox())
        # `ringing` goes out now; its `ok` is not waited for: the server serves one
        # connection's messages in order, so an `accept` sent right after (an
        # auto-answer, a quick user) still follows it, one round trip sooner. The
        # task's first step takes the client's send lock before the call is
        # handed out below (one loop turn), so nothing can overtake it.
        call._spawn(self._ringing(msg.call_id))
        await asyncio.sleep(0)
        call._emit(ev.Ringing(call_id=msg.call_id))
        self._incoming.put_nowait(call)
