"""One call: a state machine joined to one aiortc peer connection.

A :class:`Call` is made by :class:`~hello_tui.call.phone.Phone`: outgoing
(``phone.dial(name)``), incoming (``phone.next_incoming()`` then
``call.accept()`` / ``call.reject()``) or a room (``phone.join(url)``). It
emits one stream of typed events (:mod:`hello_tui.call.events`), read with
``async for ev in call.events()`` by any number of consumers, each seeing the
whole stream from the start; the phone's listeners
(:class:`~hello_tui.call.phone.CallListener`, e.g. the history recorder) see
each event synchronously first, so what they write is there before any
consumer sees it.

What the call learns is kept in fields (``caller``, ``connected_ms``,
``flowing_ms``, ``sas``, ``identity``, ``ended``), never searched for in the
event log. Its media (devices, or the echo's loopback) is the phone's media
policy (:mod:`hello_tui.call.media_policy`).

Connecting fast: the caller gathers its ICE candidates before sending the
offer (host candidates on loopback take a millisecond), the offer rides with
``call`` (and with ``room-join``), so the callee's answer comes back one round
trip after ``accept``. No trickle ICE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

from hello_tui.call import events as ev
from hello_tui.call.audio_devices import watch_devices
from hello_tui.call.chat import ChatChannel
from hello_tui.call.event_stream import EventStream
from hello_tui.call.media_policy import CallMedia, NoVideo
from hello_tui.call.media_watch import MediaWatch
from hello_tui.call.options import CallOptions
from hello_tui.call.peer import (
    add_chat_channel,
    add_share_channel,
    has_turn,
    ice_servers,
    local_description,
    new_peer_connection,
    reuse_certificate,
    turn_is_stale,
    without_timed_turn,
)
from hello_tui.call.quality_watch import QualityWatch
from hello_tui.call.renewal import Renewal, watch_addresses
from hello_tui.call.trust import CallTrust
from hello_tui.media.sinks import AudioSink
from hello_tui.media.tracks import CameraGate, GatedTrack, MeteredTrack
from hello_tui.media.video import FrameSink
from hello_tui.quality.sample import QualitySample
from hello_tui.quality.summary import summarize
from hello_tui.share.session import ShareChange, ShareSession
from hello_tui.signaling import protocol as p
from hello_tui.signaling.errors import RequestTimeout, SignalingClientError, SignalingError

if TYPE_CHECKING:
    from hello_tui.call.phone import Phone

__all__ = ["Call", "NoVideo"]

log = logging.getLogger("hello_tui.call.engine")  # the name the log files have always shown
E = TypeVar("E", bound=ev.CallEvent)
Stage = p.StageOrEnded  # the protocol's vocabulary (signaling/protocol.py)
Direction = p.Direction

CLOSE_WAIT = 2.0  # seconds the end of a call waits for its media to close
PROBE_TIMEOUT = 2.0  # s: the server's answer to a probe when audio stops, else reconnect

# A refused request that ends a call: the reason it ends with.
_ERROR_REASONS: dict[str, p.CallEndReason] = {
    "unknown-call": "closed", "room-full": "busy", "unknown-room": "user-unknown",
    "room-expired": "user-unknown",
}  # fmt: skip


# A knock that did not let us in: how the call ends, in words for the user.
_NOT_LET_IN: dict[str, tuple[p.CallEndReason, str]] = {
    "declined": ("rejected", "the room's owner did not let you in"),
    "timeout": ("timeout", "nobody let you in: the wait in the lobby timed out"),
    "closed": ("user-unknown", "the room was closed while you were waiting to be let in"),
}


def _log_event(event: ev.CallEvent) -> None:
    """One log line per call event: the kind and codes only, never who or what was said."""
    cid = event.call_id[:6] or "-"
    if isinstance(event, ev.Quality):
        log.debug("call %s: quality sample", cid)
    elif isinstance(event, ev.Ended):
        log.info(
            "call %s: ended reason=%s stage=%s after %.1f s",
            cid, event.reason, event.stage, event.duration,
        )  # fmt: skip
    elif isinstance(event, ev.Notice):
        log.info("call %s: notice (%s)", cid, event.source or "call")
    elif isinstance(event, ev.ChatMessage):  # never what was said, nor who said it
        log.debug("call %s: chat (%s)", cid, event.sender)
    else:
        log.info("call %s: %s", cid, event.kind)


class Call:
    """One call. Created by :class:`Phone`; never constructed directly."""

    def __init__(
        self,
        phone: Phone,
        direction: Direction,
        options: CallOptions,
        *,
        peer: str,
        call_id: str = "",
        room_token: str = "",
    ) -> None:
        self.phone = phone
        self.client = phone.client
        self.direction: Direction = direction
        self.options = options
        self.peer = peer  # what the user sees: account name, contact, room
        self.call_id = call_id
        self.room_token = room_token
        self.room_url = ""  # the URL joined (with its #k= key), for the history
        self.is_room = bool(room_token)
        self.stage: Stage = "dialing" if direction == "outgoing" else "ringing"
        self.started = time.time()
        self._t0 = time.perf_counter()  # dial (or accept) instant, for setup_ms
        # Facts the call learns, as they happen (None/"" until then).
        self.caller = ""  # an incoming call's caller, by account name ("" anonymous)
        self.caller_video = False  # the caller offered video
        self.peer_name = ""  # a room: the display name the other participant gave
        self.connected_at: float | None = None  # wall clock (time.time())
        self.connected_ms: float | None = None  # Connected.setup_ms: dial/accept → DTLS up
        self.flowing_ms: float | None = None  # MediaFlowing.setup_ms: → first remote audio
        # Who the other side is by key, and the check code (call/trust.py).
        self.trust = CallTrust(
            pins=phone.pins,
            identity=options.identity,
            anonymous=self.is_room,
            call_id=lambda: self.call_id,
            emit=self._trust_event,
        )
        self.ended: ev.Ended | None = None
        self.pc: RTCPeerConnection | None = None
        self.media: CallMedia = phone.media(
            options, notice=self._notice, spawn=self._spawn, first_frame=self._on_first_frame
        )
        self._quality = QualityWatch(self._on_sample)
        # Chat over the data channel (call/chat.py); the messages, kept for the call only.
        self.chat = ChatChannel(
            options.chat_limits,
            on_message=lambda text: self._on_chat("remote", text),
            on_sent=lambda text: self._on_chat("local", text),
            on_notice=lambda text: self._notice(text, "chat"),
        )
        self.chat_log: list[ev.ChatMessage] = []
        # Terminal sharing over the data channel's second stream (hello_tui/share/).
        self.share = ShareSession(
            on_change=self._on_share, on_notice=lambda text: self._notice(text, "share")
        )
        self.shared_s: float | None = None  # seconds shared, either way (telemetry: only that)
        self._inbox: asyncio.Queue[p.Message] = asyncio.Queue()
        self._stream = EventStream()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._hangup_requested = False
        self._left_room = False  # room-leave sent (_leave_room: once)
        self._placing = False
        self._media_timer: asyncio.TimerHandle | None = None
        # Recovery (docs/calls.md, "Calls that recover"): a connected call outlives
        # its server connection; the media watch ends it when the peer is gone.
        self.server_gone = False  # the signaling connection is down (reconnecting, or gone)
        self.server_forgot = False  # the server no longer knows this call: peer to peer
        self._peer_closed_seen = False  # the server said the peer's connection vanished
        self._peer_said_bye = False  # the peer hung up over the data channel
        self._closed_while_ending = False  # its "closed" came with a hang-up under way
        self._watch: MediaWatch | None = None
        self.chat.on_control = self._on_control
        # A new transport within the call (call/renewal.py). ``offerer``: we made
        # the call's offer (we renew when audio stops; our round wins a crossing).
        # The connections a renewal replaced, until it connects.
        self.offerer = False
        self.renewal = Renewal(self)
        self._replaced: list[RTCPeerConnection] = []
        # A room's seat secret: our next session takes the seat back with it
        # (the call outlives a dropped signaling connection, and can renew).
        self._seat = secrets.token_urlsafe(32) if self.is_room else ""

    # ------------------------------------------------------------ media endpoints
    # The media policy's, named on the call for the front ends.
    @property
    def source(self) -> GatedTrack | None:
        return self.media.source

    @property
    def sink(self) -> AudioSink | None:
        return self.media.sink

    @property
    def metered(self) -> MeteredTrack | None:
        return self.media.metered

    @property
    def video_track(self) -> CameraGate | None:
        return self.media.video_track

    @property
    def local_video(self) -> FrameSink | None:
        return self.media.local_video

    @property
    def remote_video(self) -> FrameSink | None:
        return self.media.remote_video

    # ------------------------------------------------------------ trust, quality
    # The trust job's and the quality watch's, named on the call for the front ends.
    @property
    def sas(self) -> str | None:
        """The check code, once verified (never before)."""
        return self.trust.sas

    @property
    def check_status(self) -> str:
        """``waiting``, ``verified`` (``sas`` holds the code), ``mismatch`` or ``unsupported``."""
        return self.trust.check_status

    @property
    def identity(self) -> ev.Identity | None:
        return self.trust.identity

    @property
    def peer_account(self) -> str:
        return self.trust.peer_account

    @property
    def peer_key(self) -> str:
        return self.trust.peer_key

    @property
    def contact_shown(self) -> bool:
        """A front end may show the contact of that name (not for a changed or unproven key)."""
        return self.trust.contact_shown

    def mark_verified(self) -> ev.Identity:
        """The user compared the check code aloud: see :meth:`CallTrust.mark_verified`."""
        return self.trust.mark_verified()

    def accept_new_key(self) -> ev.Identity:
        """The user accepts the changed key: see :meth:`CallTrust.accept_new_key`."""
        return self.trust.accept_new_key()

    @property
    def quality_samples(self) -> list[QualitySample]:
        """Exactly the samples emitted as :class:`~hello_tui.call.events.Quality`."""
        return self._quality.samples

    def _trust_event(self, event: ev.CallEvent) -> None:
        if isinstance(event, ev.Identity) and event.status in ("changed", "unproven"):
            self.peer = event.name or self.peer  # not the contact: the raw name
        self._emit(event)

    def _on_sample(self, sample: QualitySample) -> None:
        self._emit(ev.Quality(call_id=self.call_id, sample=sample))

    # ------------------------------------------------------------ events
    def _emit(self, event: ev.CallEvent) -> None:
        self._stream.push(event)
        _log_event(event)
        for listener in self.phone.listeners:  # before any consumer can see it
            try:
                listener.call_event(self, event)
            except Exception:
                log.exception("call %s: a listener failed on %s", self.call_id[:6], event.kind)

    def events(self) -> AsyncIterator[ev.CallEvent]:
        """Every event of this call from the first, ending after :class:`Ended`."""
        return self._stream.events()

    async def wait_for(self, kind: type[E], timeout: float | None = None) -> E:
        """The first event of type ``kind`` (raises LookupError if the call ends
        without one, TimeoutError after ``timeout``)."""
        return await self._stream.wait_for(kind, timeout)

    async def wait_ended(self, timeout: float | None = None) -> ev.Ended:
        return await self._stream.wait_for(ev.Ended, timeout)

    @property
    def event_log(self) -> list[ev.CallEvent]:
        return self._stream.log

    def _ms(self) -> float:
        return round((time.perf_counter() - self._t0) * 1000, 1)

    def _notice(self, text: str, source: str) -> None:
        self._emit(ev.Notice(call_id=self.call_id, text=text, source=source))

    # ------------------------------------------------------------ controls
    @property
    def muted(self) -> bool:
        return self.source.muted if self.source is not None else self.media.mute_on_open

    def mute(self, muted: bool = True) -> None:
        """The far side receives silence while muted (the stream keeps flowing);
        muted before the microphone is open, it opens muted."""
        if self.ended is not None or self.muted == muted:
            return
        if self.source is not None:
            self.source.muted = muted
        else:
            self.media.mute_on_open = muted
        self._emit(ev.Muted(call_id=self.call_id) if muted else ev.Unmuted(call_id=self.call_id))

    def unmute(self) -> None:
        self.mute(False)

    def send_chat(self, text: str) -> None:
        """Send a chat message over the data channel (end to end, never via the
        server). Its :class:`~hello_tui.call.events.ChatMessage` (``local``)
        follows once it went out: at once when chat is connected, else when it
        connects. Raises :class:`~hello_tui.call.chat.ChatError` (one line:
        empty, too long, too fast, the call is over, the other side has no chat)."""
        from hello_tui.call.chat import ChatError

        if self.ended is not None:
            raise ChatError("the call is over")
        self.chat.send(text)

    def _on_chat(self, sender: Literal["local", "remote"], text: str) -> None:
        if self.ended is not None:
            return
        if sender == "local":
            identity = self.options.identity
            name = identity.name if identity is not None else ""
        else:
            name = self.peer or ""
        message = ev.ChatMessage(call_id=self.call_id, sender=sender, name=name, text=text)
        self.chat_log.append(message)
        self._emit(message)

    def _on_share(self, change: ShareChange) -> None:
        cid, side = self.call_id, change.side
        if change.what == "started":
            self._emit(ev.ShareStarted(call_id=cid, side=side, cols=change.cols,
                                       rows=change.rows, title=change.title))  # fmt: skip
        elif change.what == "stopped":
            self.shared_s = (self.shared_s or 0.0) + change.duration
            self._emit(ev.ShareStopped(call_id=cid, side=side, duration=change.duration))
        else:
            self._emit(ev.ShareControl(call_id=cid, side=side, granted=change.granted))

    def share_snapshot(self, side: Literal["local", "remote"] | None = None) -> ev.ShareSnapshot:
        """The shared screen as text (theirs by default, else ours), also emitted."""
        side, term = self.share.snapshot(side)
        event = ev.ShareSnapshot(call_id=self.call_id, side=side, cols=term.cols,
                                 rows=term.rows, text=term.text(), cursor=term.cursor)  # fmt: skip
        self._emit(event)
        return event

    @property
    def video(self) -> bool:
        """A video call: we send video, or receive it, or asked for it."""
        return bool(
            self.options.video_source is not None
            or self.video_track is not None
            or self.remote_video is not None
        )

    @property
    def camera_on(self) -> bool:
        return self.video_track is not None and self.video_track.sending

    def set_camera(self, on: bool) -> None:
        """Start/stop sending our video (the far side stops receiving new frames).

        Raises :class:`NoVideo` if this call sends no video (audio-only, or the
        camera could not be opened): video is negotiated when the call starts."""
        gate = self.media.camera()
        if self.ended is not None or gate.sending == on:
            return
        gate.set_sending(on)
        self._emit(ev.CameraOn(call_id=self.call_id) if on else ev.CameraOff(call_id=self.call_id))

    async def hangup(self, reason: Literal["hangup", "media-fail"] = "hangup") -> ev.Ended:
        """End the call (cancel before an answer); returns the Ended event."""
        if self.ended is not None:
            return self.ended
        self._hangup_requested = True
        if self.direction == "incoming" and self.stage == "ringing":
            return await self.reject()
        if self.stage == "connected":
            log.info("call %s: hanging up (%s)", self.call_id[:6], reason)
            await self._say_bye()  # the peer ends at once, with or without the server
            if self.server_gone or self.server_forgot:
                return await self._end(reason, self._p2p_note())
        if self.is_room:
            await self._leave_room()
            return await self._end(reason if self.stage == "connected" else "cancel")
        if not self.call_id:
            if self._placing:  # the call is on its way: hung up as soon as it has an id
                return await self.wait_ended()
            await self._kill_task()
            return await self._end("cancel")
        # The server may have ended the call first: as "closed" when our bye made the
        # peer leave and its session closed before our request arrived (a slow link
        # widens that window) - our own hang-up then, not news. Other reasons stand.
        end_reason: p.CallEndReason = reason
        try:
            reply = await self.client.request(p.Hangup(call_id=self.call_id, reason=reason))
        except SignalingError as exc:
            if exc.code != "unknown-call":
                log.info("hangup refused: %s", exc)
            queued = self._queued_end()
            if queued is not None and queued != "closed":
                end_reason = queued
        except SignalingClientError as exc:
            log.info("hangup not delivered: %s", exc)
        else:
            if isinstance(reply, p.CallEnded) and reply.reason != "closed":
                end_reason = reply.reason
        if self.ended is not None:
            return self.ended
        return await self._end(end_reason)

    async def accept(self, options: CallOptions | None = None, *, video: str | None = None) -> None:
        """Answer an incoming call: fetch the held offer, answer it. ``options``:
        what to answer with (default: the phone's when the call rang); ``video``:
        shorthand for ``replace(options, video_source=video)`` (only used if the
        caller offered video)."""
        if self.direction != "incoming" or self.stage != "ringing" or self.ended:
            raise RuntimeError("this call cannot be accepted now")
        options = options or self.options
        if video is not None:
            options = replace(options, video_source=video)
        self.options = self.media.options = options  # nothing is open yet
        self.trust.own = options.identity
        await self._kill_task()  # the ringing-phase inbox reader
        self._t0 = time.perf_counter()
        self._set_stage("connecting")
        self._emit(ev.Connecting(call_id=self.call_id))
        self._start(self._run_accept())

    async def reject(self, reason: Literal["rejected", "busy"] = "rejected") -> ev.Ended:
        """Decline an incoming call (``busy``: only this device withdraws)."""
        if self.ended is not None:
            return self.ended
        await self._tell(self.client.reject(self.call_id, reason))
        return await self._end(reason)

    # ------------------------------------------------------------ internals
    def _set_stage(self, stage: Stage) -> None:
        if self.ended is None:
            self.stage = stage

    def _start(self, coro: Any) -> None:
        self._task = asyncio.get_running_loop().create_task(self._guard(coro))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _queued_end(self) -> p.EndReason | None:
        """The reason of a call-ended/peer-left already waiting in the inbox."""
        items: list[p.Message] = []
        reason: p.EndReason | None = None
        while not self._inbox.empty():
            msg = self._inbox.get_nowait()
            items.append(msg)
            if isinstance(msg, (p.CallEnded, p.PeerLeft)) and reason is None:
                reason = msg.reason
        for msg in items:
            self._inbox.put_nowait(msg)
        return reason

    async def _guard(self, coro: Any) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except SignalingError as exc:
            queued = self._queued_end()
            reason = queued or _ERROR_REASONS.get(exc.code, "error")
            await self._end(reason, "" if queued else str(exc))
        except SignalingClientError as exc:
            await self._end("unreachable", str(exc))
        except Exception as exc:
            log.exception("call failed")
            await self._end("error", f"{type(exc).__name__}: {exc}")

    async def _kill_task(self) -> None:
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _make_pc(self) -> RTCPeerConnection:
        pc = new_peer_connection(
            self.options.ice_servers, self.options.ice_transport_policy, self.options.ptime_ms
        )

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if self.pc is not pc or self.ended is not None:
                return
            state = pc.connectionState
            if state == "connected" and self.stage != "connected":
                self._on_media_connected()
            elif state == "connected":
                self._on_renewed(pc)
            elif state in ("failed", "closed") and self.renewal.active:
                pass  # a renewal under way: the media watch decides, in time
            elif state in ("failed", "closed") and self.stage == "connected":
                # failed: consent expired (~30 s); closed: the peer closed its DTLS.
                self._spawn(self._connection_lost(state))
            elif state == "failed":
                self._spawn(self._media_failed("ICE/DTLS failed"))

        @pc.on("connectionstatechange")
        def _listen() -> None:
            # Synchronous, so it runs inside aiortc's DTLS state change: the
            # microphone's blocks are kept from the connect itself, not from when
            # _state (a task) runs, after aiortc's connect task has started the
            # sender and the receiver (its decoder thread: 0.1 ms quiet, several
            # under load). A block that came in between was dropped: +10 ms.
            first = pc.connectionState == "connected" and self.stage != "connected"
            if first and self.pc is pc and self.ended is None:
                try:
                    self.media.connected()
                except Exception:  # never into aiortc's DTLS start: _state meets it again
                    log.debug("keeping the microphone at the connect failed", exc_info=True)

        @pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            self.media.on_track(track)

        return pc

    async def _new_offer(self) -> str:
        self._open_devices()
        self.offerer = True
        self.pc = self._make_pc()
        self.pc.addTransceiver(self.media.sent_track(), direction="sendrecv")
        self.media.add_video(self.pc, offer=True)
        channel = add_chat_channel(self.pc, answering=False)
        assert channel is not None
        self.chat.attach(channel)
        share = add_share_channel(self.pc, answering=False)
        assert share is not None
        self.share.attach(share)
        hosts = self.options.host_addresses
        sdp = await local_description(self.pc, offer=True, addresses=hosts)
        return self.trust.stamp_offer(sdp)

    async def _answer_offer(self, sdp: str, pc: RTCPeerConnection | None = None) -> str:
        """Our answer to ``sdp`` on ``pc`` (made ahead by the caller), else a new connection."""
        self._open_devices()
        if self.pc is not None:
            await self.pc.close()
        self.offerer = False
        self.pc = pc if pc is not None else self._make_pc()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self.pc.addTrack(self.media.sent_track())
        self.media.add_video(self.pc, offer=False)
        channel = add_chat_channel(self.pc, answering=True)
        if channel is not None:
            self.chat.attach(channel)
        else:
            self.chat.unavailable("the other side has no data channel")
        share = add_share_channel(self.pc, answering=True)
        if share is not None:
            self.share.attach(share)
        else:
            self.share.unavailable("the other side has no data channel")
        hosts = self.options.host_addresses
        answer = await local_description(self.pc, offer=False, addresses=hosts)
        return self.trust.stamp_answer(sdp, answer)

    def _open_devices(self) -> None:
        """Open the devices (a worker thread) while the call is signalled and ICE
        and DTLS connect, not before the offer or the answer: opening a sound
        card's streams waits 40-250 ms on the sound server. What we send waits
        for them (``CallMedia.begin``); a failure ends the call."""
        self.media.begin()
        self._spawn(self._devices_opened())

    async def _devices_opened(self) -> None:
        try:
            await self.media.ready()
        except Exception as exc:  # a fallback (null:) is a notice, not this
            log.warning("call %s: the audio devices did not open: %s", self.call_id[:6], exc)
            self._notice(f"the audio devices did not open: {exc}", "audio-in")
            await self.hangup()

    def _prefetch_media(self) -> None:
        """An incoming call rings: open the devices and start the speaker meanwhile
        (the answer then finds them ready); a failure here is met again, and told,
        when the call is answered."""

        async def prefetch() -> None:
            with contextlib.suppress(Exception):
                await self.media.prepare(capture=False)

        self._spawn(prefetch())

    def _arm_media_timer(self) -> None:
        if self._media_timer is None:
            self._media_timer = asyncio.get_running_loop().call_later(
                self.options.media_timeout,
                lambda: self._spawn(self._media_failed("media did not connect in time")),
            )

    def _on_media_connected(self) -> None:
        pc = self.pc
        assert pc is not None
        self.media.connected()  # first: the microphone's next block is sent, not dropped
        self._set_stage("connected")
        self.connected_at = time.time()
        if self._media_timer is not None:
            self._media_timer.cancel()
        self.connected_ms = self._ms()
        self._emit(ev.Connected(call_id=self.call_id, setup_ms=self.connected_ms))
        self.trust.settle_identity()
        self._settle_check_code()
        if self.options.quality_interval:
            interval = self.options.quality_interval
            self._quality.start(pc, self.media, interval, video=self.video, cid=self.call_id)
        if self.call_id and not self.is_room:
            self._spawn(self._tell_connected())

    def _settle_check_code(self) -> None:
        self.trust.settle_check_code(self.pc, connected=self.stage == "connected")

    async def _tell(self, request: Awaitable[Any]) -> None:
        """Tell the server something it may not hear: the call goes on."""
        with contextlib.suppress(SignalingClientError):
            await request

    async def _tell_connected(self) -> None:  # spawned: a coroutine of its own
        await self._tell(self.client.connected(self.call_id))

    async def _reveal(self, nonce: str) -> None:
        with contextlib.suppress(SignalingClientError, SignalingError):  # it may refuse, too
            await self.client.request(p.SasReveal(call_id=self.call_id, nonce=nonce))

    def _on_first_frame(self) -> None:
        if self.ended is None:
            self.flowing_ms = self._ms()
            self._emit(ev.MediaFlowing(call_id=self.call_id, setup_ms=self.flowing_ms))
            self._start_watch()
            self._spawn(watch_devices(self))  # switch/lost/latency, muted hint (audio_devices.py)
            self._spawn(watch_addresses(self))  # a network change renews the transport

    # ------------------------------------------------------------ recovery
    def _start_watch(self) -> None:
        media = self.media

        def frames() -> int:
            return media.remote.frames if media.remote is not None else 0

        self._watch = MediaWatch(
            frames,
            on_stall=self._on_stall,
            on_resume=lambda gap: self._emit(ev.MediaResumed(call_id=self.call_id, gap_s=gap)),
            on_lost=lambda quiet: self._spawn(self._connection_lost(f"no audio for {quiet:g} s")),
            lost_after=self.options.media_lost_after,
            on_long_stall=lambda quiet: self._spawn(self.renewal.offer("no audio")),
        )
        self._watch.start()

    def _on_stall(self, quiet: float) -> None:
        self._emit(ev.Reconnecting(call_id=self.call_id, quiet_s=quiet))
        self._spawn(self._probe_server())

    async def _probe_server(self) -> None:
        """Audio stopped: is the server still there? A connection that went silently
        dead (our address moved) is dropped at once, not after its heartbeat (~30 s):
        the client reconnects and the call is taken back over (``_reconcile``)."""
        if not self.call_id or self.server_gone or self.server_forgot:
            return
        # A room: any harmless request (``connected`` would change its record's expiry).
        probe = p.RoomList() if self.is_room else p.Connected(call_id=self.call_id)
        try:
            await self.client.request(probe, timeout=PROBE_TIMEOUT)
        except RequestTimeout:
            log.info("call %s: the server did not answer: reconnecting", self.call_id[:6])
            self.client.drop_connection("the server did not answer")
        except SignalingClientError:
            pass

    # ------------------------------------------------------------ a new transport
    def _network_changed(self) -> None:
        """An interface went or came, or an address moved (``renewal.watch_addresses``)."""
        if self.ended is not None or self.stage != "connected":
            return
        log.info("call %s: the network changed", self.call_id[:6])
        if self._watch is not None and self._watch.stall_now():
            self._emit(ev.Reconnecting(call_id=self.call_id, cause="network-change"))
        if not self.server_gone:  # its TCP may be silently dead (a room: seat kept)
            self.client.drop_connection("the network changed")
        self._spawn(self.renewal.offer("network change", again=True, local=True))

    def _renewing(self, on: bool) -> None:
        if self._watch is not None:
            self._watch.hold(on)

    def _renewed_pc(self) -> RTCPeerConnection:
        """A new connection for the call, with the old one's DTLS certificate (the
        check code can stay)."""
        pc = self._make_pc()
        if self.pc is not None:
            reuse_certificate(pc, self.pc)
        return pc

    def _switch_to(self, pc: RTCPeerConnection) -> None:
        """``pc`` becomes the call's connection. Our tracks stay on the old one's
        senders until ``pc`` connects (:meth:`_move_tracks`): a path that came back
        meanwhile still carries us, and one track never feeds two senders."""
        old, self.pc = self.pc, pc
        if old is not None:
            self._replaced.append(old)

    def _move_tracks(self, pc: RTCPeerConnection) -> None:
        """What we send moves to ``pc``'s senders, off the replaced connections'
        (a sender that stops stops its track: the source is the call's)."""
        for old in self._replaced:
            for sender in old.getSenders():
                sender.replaceTrack(None)
        sending = {"audio": self.media.sent_track(), "video": self.media.sent_video()}
        for transceiver in pc.getTransceivers():
            track = sending.get(transceiver.kind)
            if track is not None and transceiver.sender.track is None:
                transceiver.sender.replaceTrack(track)

    def _attach_channels(self, pc: RTCPeerConnection, *, answering: bool) -> None:
        chat = add_chat_channel(pc, answering=answering)
        if chat is not None:
            self.chat.attach(chat)
        share = add_share_channel(pc, answering=answering)
        if share is not None:
            self.share.attach(share)

    async def _renew_offer(self, round_: int) -> tuple[RTCPeerConnection, str] | None:
        """Round ``round_``'s connection and offer (None: a newer round replaced it
        while it gathered)."""
        self.trust.renew(round_)
        pc = self._renewed_pc()
        old = self.pc
        self._switch_to(pc)
        for transceiver in old.getTransceivers() if old is not None else ():
            pc.addTransceiver(transceiver.kind, direction=transceiver.direction or "sendrecv")
        self._attach_channels(pc, answering=False)
        sdp = await local_description(pc, offer=True, addresses=self.options.host_addresses)
        if self.pc is not pc:
            return None
        return pc, self.trust.stamp_offer(sdp)

    async def _renew_answered(self, pc: RTCPeerConnection, sdp: str) -> None:
        if self.pc is not pc or pc.signalingState != "have-local-offer":
            return  # a newer round, or answered already
        reveal = self.trust.take_answer(sdp)
        if reveal is not None:
            self._spawn(self._reveal(reveal))
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def _renew_answer(self, round_: int, offer: str) -> str:
        pc = self._renewed_pc()
        try:  # an offer we cannot take changes nothing (the offerer sends a round again)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        except Exception:
            self._spawn(pc.close())
            raise
        self.trust.renew(round_)
        self.trust.take_offer(offer)
        old = self.pc
        self._switch_to(pc)
        # The same directions as before (our tracks join when it connects).
        was = {t.kind: t.direction for t in old.getTransceivers()} if old is not None else {}
        for transceiver in pc.getTransceivers():
            transceiver.direction = was.get(transceiver.kind, "inactive")
        self._attach_channels(pc, answering=True)
        answer = await local_description(pc, offer=False, addresses=self.options.host_addresses)
        return self.trust.stamp_answer(offer, answer)

    def _close_replaced(self) -> None:
        """Close the connections a renewal replaced, in the background (over a dead
        path aioice's TURN deallocation retransmits for ~30 s)."""
        replaced, self._replaced = self._replaced, []
        for old in replaced:
            self._spawn(old.close())

    def _on_renewed(self, pc: RTCPeerConnection) -> None:
        """A renewed transport connected: the check code again, sampling moves to it."""
        took = self.renewal.connected()
        if took is None:
            return
        log.info("call %s: transport renewed in %.2f s", self.call_id[:6], took)
        # Only now: a DTLS close on an old connection could reach the other side
        # before our answer does, and end the track its sink still reads.
        self._move_tracks(pc)
        self._close_replaced()
        self._renewing(False)
        self._settle_check_code()
        if self.options.quality_interval:
            self._quality.move_to(pc, self.media, self.options.quality_interval,
                                  video=self.video, cid=self.call_id)  # fmt: skip

    @property
    def longest_gap_ms(self) -> float | None:
        """The longest time without a received audio frame since media flowed
        (None before), in ms, to the watch's tick (a quarter second)."""
        return round(self._watch.longest_gap * 1000) if self._watch is not None else None

    def _server_lost(self, reason: str, retrying: bool) -> None:
        """The phone lost the server during this connected call: it goes on."""
        if self.ended is not None or self.server_gone:
            return
        self.server_gone = True
        self._emit(ev.ServerLost(call_id=self.call_id, reason=reason, retrying=retrying))

    def _server_back(self) -> None:
        """The phone is connected (and logged in) again: does the server still know us?"""
        if self.ended is None and self.server_gone:
            self._spawn(self._reconcile())

    async def _reconcile(self) -> None:
        known = False
        if self.is_room and self.call_id and not self.server_forgot:
            try:  # our seat, back on this session (the server kept it for a while)
                joined = await self.client.room_reseat(self.room_token, self._seat, 5.0)
                known = joined.call_id == self.call_id
            except SignalingClientError as exc:  # SignalingError included
                log.info("room %s: the seat is gone (%s)", self.room_token[:6], exc)
        elif self.call_id and not self.is_room and not self.server_forgot:
            try:  # harmless to repeat; refused unless this session is a party of it
                await self.client.request(p.Connected(call_id=self.call_id), timeout=5.0)
                known = True
            except SignalingClientError as exc:  # SignalingError included
                log.info("call %s: the server forgot it (%s)", self.call_id[:6], exc)
        self.server_gone = False
        self.server_forgot = not known
        if self.ended is None:
            self._emit(ev.ServerBack(call_id=self.call_id, call_known=known))

    def _peer_left_server(self) -> None:
        self._peer_closed_seen = self.server_forgot = True
        # Either side's hang-up makes the peer's session close (the echo peer's at
        # once): that "closed" races the end already under way, and is no news.
        if self._hangup_requested or self._peer_said_bye or self.ended is not None:
            self._closed_while_ending = True
            return
        self._notice("the server lost the other side: the call goes on peer to peer", "call")

    def _p2p_note(self) -> str:
        if self.server_gone:
            return "ended peer to peer: the server was unreachable"
        if self._closed_while_ending:  # the server ended it because of the hang-up itself
            return ""
        return "ended peer to peer: the server had forgotten the call"

    async def _say_bye(self) -> None:
        """Tell the peer over the data channel that we hang up (and let it leave)."""
        if not self.chat.send_control("bye"):
            return
        with contextlib.suppress(TimeoutError):  # handed to SCTP, before the pc closes
            async with asyncio.timeout(0.5):
                while self.chat.buffered:
                    await asyncio.sleep(0.01)

    def _on_control(self, kind: str) -> None:
        if self._hangup_requested:  # we are hanging up ourselves: that end wins
            return
        if kind == "bye" and self.ended is None and self.stage == "connected":
            self._peer_said_bye = True
            note = self._p2p_note() if (self.server_gone or self.server_forgot) else ""
            self._spawn(self._end("hangup", note))

    async def _leave_room(self, reason: p.HangupReason = "hangup") -> None:
        """Leave the room on the server, once, whichever way the call ends (our
        hang-up, the peer's bye, a lost path: ``media-fail``, the other side says so
        in words): else the server keeps our seat and a rejoin is refused. Not when
        the server is gone; a refusal changes nothing."""
        if not self.is_room or self._left_room or self.server_gone:
            return
        self._left_room = True
        with contextlib.suppress(SignalingClientError, SignalingError):
            await self.client.room_leave(self.room_token, reason)

    async def _connection_lost(self, why: str) -> None:
        """A connected call's media path is gone (or the peer closed it)."""
        if self.ended is not None or self.stage != "connected" or self._hangup_requested:
            return
        if why == "closed":  # the peer closed its DTLS: it left (a bye may have been lost)
            await self._end("closed", self._p2p_note() if self.server_forgot else "")
            return
        who = self.peer or "the other side"
        log.info("call %s: media path lost (%s)", self.call_id[:6], why)
        if self._peer_closed_seen:
            await self._end("closed", f"lost the connection to {who} (network)")
            return
        if self.call_id and not (self.server_gone or self.server_forgot):
            hangup = p.Hangup(call_id=self.call_id, reason="media-fail")
            if self.is_room:
                await self._leave_room("media-fail")
            else:
                with contextlib.suppress(SignalingClientError):
                    await self.client.request(hangup, timeout=2.0)
        await self._end("media-fail", f"lost the connection to {who} (network)")

    async def _media_failed(self, why: str) -> None:
        if self.ended is not None or self.stage == "connected":
            return
        if self.is_room:
            await self._leave_room()
        elif self.call_id:
            hangup = p.Hangup(call_id=self.call_id, reason="media-fail")
            await self._tell(self.client.request(hangup))
        await self._end("media-fail", why)

    # ------------------------------------------------------------ drivers
    async def _run_outgoing(self, to: str) -> None:
        self.trust.peer_account = to
        self._emit(ev.Dialing(to=to))
        await self._call_relays()
        sdp = await self._new_offer()
        self._placing = True
        try:
            call_id = await self.client.call(to, sdp, video=self.options.video_source is not None)
        finally:
            self._placing = False
        self.call_id = call_id
        self.phone._register(call_id, self)
        if self._hangup_requested:  # hung up while the call was being placed
            reason = self._queued_end()
            if reason is not None:
                await self._end(reason)
            else:
                await self.hangup()
            return
        await self._serve_inbox()

    async def _run_accept(self) -> None:
        await self._call_relays()
        # `accept` goes out first (its task's first step sends it); the peer
        # connection (its certificate, the adapters: 1-3 ms) is made while the
        # server answers with the held offer, not after it came back.
        request = asyncio.ensure_future(self.client.accept(self.call_id))
        pc: RTCPeerConnection | None = None
        try:
            await asyncio.sleep(0)  # the request's first step sends it, before we make pc
            pc = self._make_pc()
            offer = await request
        except BaseException:
            request.cancel()
            if pc is not None:  # never used: nothing to wait for
                closing = asyncio.ensure_future(pc.close())
                closing.add_done_callback(lambda t: t.cancelled() or t.exception())
            raise
        self.trust.take_offer(offer)
        answer = await self._answer_offer(offer, pc)
        self._arm_media_timer()
        await self.client.answer(self.call_id, answer)
        await self._serve_inbox()

    async def _run_room(self, url: str) -> None:
        self._emit(ev.Dialing(to=url, room=True))
        await self._room_relays()
        sdp = await self._new_offer()
        self.phone._room_calls[self.room_token] = self  # before joining: peer-joined may follow
        entered = await self.client.room_enter(self.room_token, offer=sdp, seat=self._seat)
        joined = await self._let_in(entered) if isinstance(entered, p.RoomKnocking) else entered
        if joined is None:  # not let in: the call has ended
            return
        self._emit(room_entered(url, joined.room))
        if joined.call_id:  # a peer was there: our offer went to it
            self.call_id = joined.call_id
            self.phone._register(joined.call_id, self)
            self._set_stage("connecting")
            self._emit(ev.Connecting(call_id=self.call_id))
            self._arm_media_timer()
        else:  # alone: wait for the peer, who will offer
            assert self.pc is not None
            self.chat.detach()
            self.share.detach()
            await self.pc.close()
            self.pc = None
            self._set_stage("waiting")
            self._emit(ev.Waiting(token=self.room_token))
        await self._serve_inbox()

    async def _room_relays(self) -> None:
        """Without a TURN server of our own (anonymous, or none configured), ask the
        server for the room's short-lived credentials (server/room_turn.py)."""
        if has_turn(self.options.ice_servers):
            return
        try:
            turn = await self.client.room_turn(self.room_token)
        except SignalingError as exc:  # rationed or refused: try direct paths only
            log.info("room %s: no relay (%s)", self.room_token[:6], exc.code)
            return
        if turn:
            servers = [*self.options.ice_servers, *ice_servers(None, turn)]
            self.options = self.media.options = replace(self.options, ice_servers=servers)

    async def _call_relays(self) -> None:
        """A direct call: the login's TURN credentials may be hours old and coturn
        re-checks their expiry on every allocation refresh, so past half their
        lifetime ask for fresh ones (server/room_turn.py, ``call-turn``)."""
        servers = self.options.ice_servers
        if not turn_is_stale(servers, time.time()):
            return
        try:
            turn = await self.client.call_turn()
        except SignalingError as exc:  # rationed or refused: keep what we have
            log.info("call: no fresh relay credentials (%s)", exc.code)
            return
        if turn:
            fresh = [*without_timed_turn(servers), *ice_servers(None, turn)]
            self.options = self.media.options = replace(self.options, ice_servers=fresh)

    async def _let_in(self, knocking: p.RoomKnocking) -> p.RoomJoined | None:
        """A knock-to-enter room: wait in its lobby (our offer held by the server's
        instance) until the owner admits us (``room-joined`` follows) or not."""
        token, knock = self.room_token, knocking.knock
        self._emit(ev.Knocking(token=token, owner_present=knocking.owner_present))
        while self.ended is None:
            match await self._inbox.get():
                case p.RoomKnocking(knock=k, owner_present=present) if k == knock:
                    self._emit(ev.Knocking(token=token, owner_present=present))
                case p.RoomKnockEnded(knock=k, reason="admitted") if k == knock:
                    self._emit(ev.Admitted(token=token))
                case p.RoomKnockEnded(knock=k, reason=why) if k == knock:
                    self._emit(ev.Declined(token=token, reason=why))
                    reason, text = _NOT_LET_IN.get(why, _NOT_LET_IN["closed"])
                    await self._end(reason, text)
                case p.RoomJoined() as joined if joined.room.token == token:
                    return joined
                case other:
                    log.debug("call: ignoring %s while knocking", type(other).__name__)
        return None

    async def admit(self, knock: str) -> None:
        """A room we own: let the visitor who knocked (``ev.Knock.knock``) in."""
        await self.client.room_admit(self.room_token, knock)

    async def decline(self, knock: str) -> None:
        """A room we own: turn the visitor who knocked away."""
        await self.client.room_decline(self.room_token, knock)

    async def _serve_inbox(self) -> None:
        while self.ended is None:
            msg = await self._inbox.get()
            await self._handle(msg)

    async def _handle(self, msg: p.Message) -> None:
        match msg:
            case p.Ringing() if self.stage == "dialing":
                self._set_stage("ringing")
                self._emit(ev.Ringing(call_id=self.call_id))
            case p.Accepted():
                self.trust.peer_key = msg.callee_key
                self.trust.peer_chain = list(msg.callee_chain)
                self._set_stage("connecting")
                self._emit(ev.Connecting(call_id=self.call_id))
                self._arm_media_timer()
            case p.Answer() if self.pc is not None and self.pc.signalingState == "have-local-offer":
                # The answer fixed the answerer's nonce: now (never earlier) ours may go.
                reveal = self.trust.take_answer(msg.sdp)
                if reveal is not None:
                    self._spawn(self._reveal(reveal))
                answer = RTCSessionDescription(sdp=msg.sdp, type="answer")
                await self.pc.setRemoteDescription(answer)
                self._settle_check_code()
            case p.SasReveal() if self.trust.take_reveal(msg.nonce):
                self._settle_check_code()
            case p.RenewOffer() if self.stage == "connected":
                self._spawn(self.renewal.answer(msg))
            case p.RenewAnswer():
                self.renewal.take_answer(msg)
            case p.Offer() if self.is_room and self.pc is None:  # one exchange per call
                if self.stage == "waiting":
                    self._t0 = time.perf_counter()
                    self._set_stage("connecting")
                    self._emit(ev.Connecting(call_id=self.call_id))
                our_answer = await self._answer_offer(msg.sdp)
                self._arm_media_timer()
                await self.client.answer(self.call_id, our_answer)
            case p.CallEnded() if msg.reason == "closed" and self.stage == "connected":
                # The peer's server connection vanished, not necessarily the peer:
                # the media path decides (a bye, its DTLS closing, or the watch).
                self._peer_left_server()
            case p.CallEnded() if msg.reason == "media-fail" and self.stage == "connected":
                who = self.peer or "the other side"
                await self._end("media-fail", f"lost the connection to {who} (network)")
            case p.CallEnded():
                await self._end(msg.reason)
            case p.PeerLeft() if msg.reason == "closed" and self.stage == "connected":
                self._peer_left_server()
            case p.PeerLeft() if msg.reason == "media-fail" and self.stage == "connected":
                self._left_room = True  # the server took us out with the pair
                who = self.peer or "the other side"
                await self._end("media-fail", f"lost the connection to {who} (network)")
            case p.PeerLeft():
                await self._leave_room()
                await self._end(msg.reason)
            case p.PeerName() | p.PeerJoined() if msg.display_name:
                self.peer_name = msg.display_name
                self._emit(ev.PeerName(call_id=self.call_id, name=msg.display_name))
            case p.RoomKnock():  # someone knocks at our room: the face admits or declines
                self._emit(
                    ev.Knock(
                        call_id=self.call_id,
                        token=msg.token,
                        knock=msg.knock,
                        name=msg.display_name,
                    )
                )
            case p.RoomKnockEnded():
                self._emit(
                    ev.KnockEnded(
                        call_id=self.call_id, token=msg.token, knock=msg.knock, reason=msg.reason
                    )
                )
            case _:
                log.debug("call %s: ignoring %s", self.call_id[:6], type(msg).__name__)

    # ------------------------------------------------------------ the end
    async def _close_media(self) -> None:
        """Close the media, waiting at most :data:`CLOSE_WAIT`: over a dead path
        aioice's TURN deallocation retransmits for ~30 s; the rest finishes
        in the background (or with the process)."""
        closing = asyncio.ensure_future(self.media.close(self.pc))
        closing.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        try:
            await asyncio.wait_for(asyncio.shield(closing), CLOSE_WAIT)
        except TimeoutError:
            log.info("call %s: media still closing after %g s", self.call_id[:6], CLOSE_WAIT)

    async def _end(self, reason: p.CallEndReason, message: str = "") -> ev.Ended:
        if self.ended is not None:
            return self.ended
        await self._leave_room()  # every way a room call ends (a no-op for the rest)
        if self.ended is not None:  # ended meanwhile, while we told the server
            return self.ended
        stage = self.stage
        assert stage != "ended"  # self.ended is set whenever the stage is
        duration = round(time.time() - self.connected_at, 3) if self.connected_at else 0.0
        self._quality.stop()  # no sample after this point
        outcome = ev.call_outcome(reason, stage)
        quality = summarize(
            self._quality.samples, outcome=outcome, reason=reason, duration_s=duration
        )
        self.ended = ev.Ended(
            call_id=self.call_id,
            reason=reason,
            duration=duration,
            stage=stage,
            message=message,
            outcome=outcome,
            quality=quality,
            peer=self.peer or "",
            direction=self.direction,
        )
        self.stage = "ended"
        if self._media_timer is not None:
            self._media_timer.cancel()
        if self._watch is not None:
            self._watch.stop()
        self.phone._unregister(self)
        self.chat.close()  # before Ended: a notice for what was never sent
        await self.share.close()  # the shared program hung up, every grant ends
        for old in self._replaced:  # a renewal's leftovers: closing on their own
            closing = asyncio.ensure_future(old.close())
            closing.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._replaced = []
        await self._close_media()
        self._emit(self.ended)
        for background in list(self._background):
            if background is not asyncio.current_task():
                background.cancel()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        return self.ended


def room_entered(url: str, room: p.RoomInfo) -> ev.RoomEntered:
    """The room's name and context, decrypted with the key in ``url`` (if any)."""
    from hello_tui.signaling.roomcrypt import (
        RoomContext,
        RoomCryptError,
        decrypt_context,
        decrypt_name,
        parse_room_url,
    )

    name: str | None = None
    context = RoomContext()
    try:
        _, key = parse_room_url(url)
        if key is not None:
            name = decrypt_name(key, room.name)
            context = decrypt_context(key, room.context)
    except RoomCryptError as exc:
        log.info("room %s: %s", room.token[:6], exc)
    return ev.RoomEntered(
        token=room.token, name=name, description=context.description, url=context.url
    )
