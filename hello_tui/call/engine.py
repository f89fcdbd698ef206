"""The call engine: a signaling connection joined to aiortc peer connections.

:class:`Phone` owns one :class:`SignalingClient` and routes what the server
sends to the right :class:`Call` (by call id, or by room token for a room
that is waiting for its peer). A :class:`Call` is one conversation: outgoing
(``phone.dial(name)``), incoming (``phone.next_incoming()`` then
``call.accept()`` / ``call.reject()``) or a room (``phone.join(url)``). Each
emits one stream of typed events (:mod:`hello_tui.call.events`), read with
``async for ev in call.events()`` by any number of consumers, each seeing the
whole stream from the start.

Connecting fast: the caller gathers its ICE candidates before sending the
offer (host candidates on loopback take a millisecond), the offer rides with
``call`` (and with ``room-join``), so the callee's answer comes back one round
trip after ``accept``. No trickle ICE.

Core: no Textual, no CLI. The front ends decide what to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal, TypeVar

from aiortc import RTCIceServer, RTCPeerConnection, RTCSessionDescription

from hello_tui.call import events as ev
from hello_tui.call.identity_proof import Identity, proven, stamp
from hello_tui.call.peer import (
    GatedTrack,
    LoopbackTrack,
    TappedTrack,
    host_addresses,
    new_peer_connection,
)
from hello_tui.call.sas import SasError, SasExchange, fingerprint_from_sdp
from hello_tui.contacts.pins import key_fingerprint
from hello_tui.history.store import CallRecord, HistoryStore
from hello_tui.media.sinks import AudioSink, open_audio_sink
from hello_tui.media.sources import open_audio_source
from hello_tui.media.video import (
    DEFAULT_FPS,
    DEFAULT_HEIGHT,
    DEFAULT_WIDTH,
    CameraGate,
    FrameSink,
    VideoRecorder,
    VideoSource,
    open_video_source,
)
from hello_tui.quality.collector import MeteredTrack, QualityCollector, VideoReading
from hello_tui.quality.sample import QualitySample
from hello_tui.quality.summary import summarize
from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import Disconnected, Reconnected, SignalingClient
from hello_tui.signaling.errors import SignalingClientError, SignalingError

__all__ = ["Call", "CallOptions", "NoVideo", "Phone"]

log = logging.getLogger(__name__)
E = TypeVar("E", bound=ev.CallEvent)
Stage = Literal["dialing", "ringing", "waiting", "connecting", "connected", "ended"]
Direction = Literal["outgoing", "incoming"]

MEDIA_TIMEOUT = 10.0  # answered → ICE+DTLS connected, else media-fail (the server's timer too)
QUALITY_INTERVAL = 1.0  # seconds between QualitySamples while connected
UNROUTED_MAX = 64  # server messages kept for a call id not registered yet
# A refused request that ends a call: the reason it ends with.
_ERROR_REASONS = {"unknown-call": "closed", "room-full": "busy", "unknown-room": "user-unknown",
                  "room-expired": "user-unknown"}  # fmt: skip


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
    else:
        log.info("call %s: %s", cid, event.kind)


class NoVideo(RuntimeError):
    """``set_camera()`` on a call that sends no video (video is negotiated when
    the call starts; there is no renegotiation)."""


class _VideoLoopback(LoopbackTrack):
    """The echo peer's video: sends back the received video track."""

    kind = "video"


class CallOptions:
    """What a call needs besides signaling: media endpoints, ICE, history.

    Video: ``video_source`` (an endpoint, ``camera:INDEX`` / ``pattern:`` /
    ``null:``) makes a video call; None (the default) an audio-only one.
    ``null:`` (or a camera that cannot be used) still receives the far side's
    video. ``video_out`` (``file:PATH.y4m`` / ``.mp4``) records what is received.
    ``identity``: the account we signed in as (name and key): direct calls sign
    our DTLS fingerprint with it (:mod:`hello_tui.call.identity_proof`).
    """

    def __init__(
        self,
        *,
        audio_in: str = "null:",
        audio_out: str = "null:",
        ice_servers: Sequence[RTCIceServer] = (),
        history: HistoryStore | None = None,
        host_addresses: Sequence[str] | None = None,
        media_timeout: float = MEDIA_TIMEOUT,
        audio_fallback: bool = True,
        loopback: bool = False,
        quality_interval: float | None = QUALITY_INTERVAL,
        video_source: str | None = None,
        video_width: int = DEFAULT_WIDTH,
        video_height: int = DEFAULT_HEIGHT,
        video_fps: int = DEFAULT_FPS,
        video_out: str | None = None,
        identity: Identity | None = None,
    ) -> None:
        self.audio_in = audio_in
        self.audio_out = audio_out
        self.ice_servers = list(ice_servers)
        self.history = history
        self.host_addresses = tuple(host_addresses) if host_addresses else None
        self.media_timeout = media_timeout
        self.audio_fallback = audio_fallback
        self.loopback = loopback  # send back what we receive (the echo peer)
        self.quality_interval = quality_interval  # None: no quality samples
        self.video_source = video_source
        self.video_width, self.video_height, self.video_fps = video_width, video_height, video_fps
        self.video_out = video_out
        self.identity = identity


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
        self.is_room = bool(room_token)
        self.stage: Stage = "dialing" if direction == "outgoing" else "ringing"
        self.started = time.time()
        self._t0 = time.perf_counter()  # dial (or accept) instant, for setup_ms
        self.connected_at: float | None = None
        self.sas: str | None = None  # the check code, once verified (never before)
        self._sas: SasExchange | None = None  # this offer/answer's commitment exchange
        self._sas_shown = False
        # Who the other side is by key: the account name and key the server
        # announced, whether its SDP signature checked out, and the settled event.
        self.peer_account = ""
        self.peer_key = ""
        self._peer_proven = False
        self.identity: ev.Identity | None = None
        # Whether a front end may show the contact of that name (its photo):
        # not while the key is known to differ from the pinned one, or unproven.
        self.contact_shown = True
        self.ended: ev.Ended | None = None
        self.pc: RTCPeerConnection | None = None
        self.source: GatedTrack | None = None
        self.sink: AudioSink | None = None
        self.remote: TappedTrack | None = None
        self.metered: MeteredTrack | None = None  # what we send, for audio_level_out
        self.quality_samples: list[QualitySample] = []  # exactly those emitted as Quality
        self._quality_task: asyncio.Task[None] | None = None
        self.history_record: CallRecord | None = None
        self._inbox: asyncio.Queue[p.Message] = asyncio.Queue()
        self._log: list[ev.CallEvent] = []
        loop = asyncio.get_running_loop()
        self._waker: asyncio.Future[None] = loop.create_future()
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._hangup_requested = False
        self._placing = False
        self._media_timer: asyncio.TimerHandle | None = None
        self.caller_video = False
        # Video (None on an audio-only call): our source, what we send (the camera
        # gate), the self-view, the far side's picture and its meter.
        self.video_source: VideoSource | None = None
        self.video_track: CameraGate | None = None
        self.local_video: FrameSink | None = None
        self.remote_video: FrameSink | None = None
        self.video_meter: MeteredTrack | None = None
        self._video_loopback: _VideoLoopback | None = None

    # ------------------------------------------------------------ events
    def _emit(self, event: ev.CallEvent) -> None:
        self._log.append(event)
        _log_event(event)
        waker, self._waker = self._waker, asyncio.get_running_loop().create_future()
        waker.set_result(None)

    async def events(self) -> AsyncIterator[ev.CallEvent]:
        """Every event of this call from the first, ending after :class:`Ended`."""
        i = 0
        while True:
            while i < len(self._log):
                event = self._log[i]
                i += 1
                yield event
                if isinstance(event, ev.Ended):
                    return
            await asyncio.shield(self._waker)

    async def wait_for(self, kind: type[E], timeout: float | None = None) -> E:
        """The first event of type ``kind`` (raises LookupError if the call ends
        without one, TimeoutError after ``timeout``)."""
        async with asyncio.timeout(timeout):
            async for event in self.events():
                if isinstance(event, kind):
                    return event
        raise LookupError(f"the call ended ({self.ended and self.ended.reason}) before {kind.kind}")

    async def wait_ended(self, timeout: float | None = None) -> ev.Ended:
        return await self.wait_for(ev.Ended, timeout)

    @property
    def event_log(self) -> list[ev.CallEvent]:
        return list(self._log)

    def _ms(self) -> float:
        return round((time.perf_counter() - self._t0) * 1000, 1)

    # ------------------------------------------------------------ controls
    @property
    def muted(self) -> bool:
        return self.source is not None and self.source.muted

    def mute(self, muted: bool = True) -> None:
        """The far side receives silence while muted (the stream keeps flowing)."""
        if self.source is None or self.ended is not None or self.source.muted == muted:
            return
        self.source.muted = muted
        self._emit(ev.Muted(call_id=self.call_id) if muted else ev.Unmuted(call_id=self.call_id))

    def unmute(self) -> None:
        self.mute(False)

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
        return self.video_track is not None and self.video_track.on

    def set_camera(self, on: bool) -> None:
        """Start/stop sending our video (the far side stops receiving new frames).

        Raises :class:`NoVideo` if this call sends no video (audio-only, or the
        camera could not be opened): video is negotiated when the call starts."""
        gate = self.video_track
        if gate is None:
            why = self.video_source.notice if self.video_source is not None else None
            raise NoVideo(
                f"this call sends no video ({why})"
                if why
                else "this call sends no video: start the call with video to use the camera"
            )
        if self.ended is not None or gate.on == on:
            return
        gate.set_on(on)
        self._emit(ev.CameraOn(call_id=self.call_id) if on else ev.CameraOff(call_id=self.call_id))

    async def hangup(self, reason: Literal["hangup", "media-fail"] = "hangup") -> ev.Ended:
        """End the call (cancel before an answer); returns the Ended event."""
        if self.ended is not None:
            return self.ended
        self._hangup_requested = True
        if self.direction == "incoming" and self.stage == "ringing":
            return await self.reject()
        if self.is_room:
            with contextlib.suppress(SignalingClientError):
                await self.client.room_leave(self.room_token)
            return await self._end(reason if self.stage == "connected" else "cancel")
        if not self.call_id:
            if self._placing:  # the call is on its way: hung up as soon as it has an id
                return await self.wait_ended()
            await self._kill_task()
            return await self._end("cancel")
        end_reason = reason
        try:
            reply = await self.client.request(p.Hangup(call_id=self.call_id, reason=reason))
        except SignalingError as exc:
            if exc.code != "unknown-call":
                log.info("hangup refused: %s", exc)
            end_reason = self._queued_end() or end_reason
        except SignalingClientError as exc:
            log.info("hangup not delivered: %s", exc)
        else:
            if isinstance(reply, p.CallEnded):
                end_reason = reply.reason
        if self.ended is not None:
            return self.ended
        return await self._end(end_reason)

    async def accept(self, *, video: str | None = None) -> None:
        """Answer an incoming call: fetch the held offer, answer it. ``video``: the
        video source to answer with (default: the options'; only used if the
        caller offered video)."""
        if self.direction != "incoming" or self.stage != "ringing" or self.ended:
            raise RuntimeError("this call cannot be accepted now")
        if video is not None:
            self.options.video_source = video
        await self._kill_task()  # the ringing-phase inbox reader
        self._t0 = time.perf_counter()
        self._set_stage("connecting")
        self._emit(ev.Connecting(call_id=self.call_id))
        self._start(self._run_accept())

    async def reject(self, reason: Literal["rejected", "busy"] = "rejected") -> ev.Ended:
        """Decline an incoming call (``busy``: only this device withdraws)."""
        if self.ended is not None:
            return self.ended
        with contextlib.suppress(SignalingClientError):
            await self.client.reject(self.call_id, reason)
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

    def _queued_end(self) -> str | None:
        """The reason of a call-ended/peer-left already waiting in the inbox."""
        items: list[p.Message] = []
        reason = None
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
        pc = new_peer_connection(self.options.ice_servers)

        @pc.on("connectionstatechange")
        async def _state() -> None:
            if self.pc is not pc or self.ended is not None:
                return
            state = pc.connectionState
            if state == "connected" and self.stage != "connected":
                self._on_media_connected()
            elif state == "failed":
                self._spawn(self._media_failed("ICE/DTLS failed"))

        @pc.on("track")
        def _track(track: Any) -> None:
            if track.kind == "video":
                self._on_video_track(track)
                return
            if track.kind != "audio" or self.remote is not None:
                return
            self.remote = TappedTrack(track, self._on_first_frame)
            if isinstance(self.source.source if self.source else None, LoopbackTrack):
                assert self.source is not None
                self.source.source.attach(self.remote)  # type: ignore[attr-defined]
            elif self.sink is not None:
                self._spawn(self.sink.start(self.remote))

        return pc

    def _on_video_track(self, track: Any) -> None:
        if self._video_loopback is not None:
            self._video_loopback.attach(track)
            return
        if self.options.video_source is None or self.remote_video is not None:
            return  # not a video call: the transceiver is made inactive (no frames)
        recorder = None
        if self.options.video_out:
            recorder = VideoRecorder(self.options.video_out.removeprefix("file:"),
                                     self.options.video_fps)  # fmt: skip
        self.video_meter = MeteredTrack(track)
        self.remote_video = FrameSink(recorder=recorder)
        self.remote_video.start(self.video_meter)

    def _open_video(self) -> None:
        """Open the video source (once; a camera that cannot be used → a notice)."""
        if self.video_source is not None or self.options.video_source is None:
            return
        opts = self.options
        src = open_video_source(opts.video_source, opts.video_width, opts.video_height,
                                opts.video_fps)  # fmt: skip
        self.video_source = src
        if src.notice is not None:
            self._emit(ev.Notice(call_id=self.call_id, text=str(src.notice), source="video-in"))
        if src.has_video:
            self.local_video = FrameSink()
            self.video_track = CameraGate(src, self.local_video)

    def _add_video(self, pc: RTCPeerConnection, *, offer: bool) -> None:
        """The video m-line: send our gate if we have one, else receive only;
        answering an offer with video while audio-only: inactive."""
        if offer:
            if self.options.video_source is None or self.options.loopback:
                return
            self._open_video()
            if self.video_track is not None:
                pc.addTransceiver(self.video_track, direction="sendrecv")
            else:
                pc.addTransceiver("video", direction="recvonly")
            return
        videos = [t for t in pc.getTransceivers() if t.kind == "video"]
        if not videos:
            return
        if self.options.loopback:
            self._video_loopback = self._video_loopback or _VideoLoopback()
            pc.addTrack(self._video_loopback)
            receiver_track = videos[0].receiver.track
            if receiver_track is not None:
                self._video_loopback.attach(receiver_track)
            return
        if self.options.video_source is None:
            for transceiver in videos:
                transceiver.direction = "inactive"
            return
        self._open_video()
        if self.video_track is not None:
            pc.addTrack(self.video_track)

    def _open_media(self) -> None:
        """Open the source and sink (before any SDP: errors surface before ringing)."""
        if self.options.loopback:
            if self.source is None:
                self.source = GatedTrack(LoopbackTrack())
            return
        if self.source is None:
            src = open_audio_source(self.options.audio_in, fallback=self.options.audio_fallback)
            if src.notice is not None:
                self._emit(ev.Notice(call_id=self.call_id, text=str(src.notice), source="audio-in"))
            self.source = GatedTrack(src)
        if self.sink is None:
            sink = open_audio_sink(self.options.audio_out, fallback=self.options.audio_fallback)
            if sink.notice is not None:
                self._emit(
                    ev.Notice(call_id=self.call_id, text=str(sink.notice), source="audio-out")
                )
            self.sink = sink

    async def _local_description(self, pc: RTCPeerConnection, offer: bool) -> str:
        """Create and set our SDP; ICE gathering completes inside (aiortc)."""
        with host_addresses(self.options.host_addresses):
            desc = await (pc.createOffer() if offer else pc.createAnswer())
            await pc.setLocalDescription(desc)
        return pc.localDescription.sdp

    async def _new_offer(self) -> str:
        self._open_media()
        self.pc = self._make_pc()
        self.pc.addTransceiver(self._sent_track(), direction="sendrecv")
        self._add_video(self.pc, offer=True)
        self._sas = SasExchange("offerer")
        sdp = self._sas.stamp_offer(await self._local_description(self.pc, offer=True))
        return self._sign(sdp, "offer")

    async def _answer_offer(self, sdp: str) -> str:
        self._open_media()
        if self.pc is not None:
            await self.pc.close()
        self.pc = self._make_pc()
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self.pc.addTrack(self._sent_track())
        self._add_video(self.pc, offer=False)
        self._sas = SasExchange("answerer")
        answer = self._sas.stamp_answer(sdp, await self._local_description(self.pc, offer=False))
        return self._sign(answer, "answer")

    def _sign(self, sdp: str, role: str) -> str:
        """Our identity signature on a direct call's SDP (rooms are anonymous)."""
        identity = self.options.identity
        return sdp if identity is None or self.is_room else stamp(sdp, role, identity)

    def _sent_track(self) -> MeteredTrack:
        """The source as sent, metered (the outgoing level of the quality samples)."""
        assert self.source is not None
        if self.metered is None:
            self.metered = MeteredTrack(self.source)
        return self.metered

    async def _collect_quality(self, pc: RTCPeerConnection, interval: float) -> None:
        """One Quality event per ``interval`` while connected (never breaks the call)."""
        sink, metered = self.sink, self.metered
        collector = QualityCollector(
            pc,
            sink.stats if sink is not None else None,
            metered.level if metered is not None else None,
            video=self._video_reading if self.video else None,
        )
        try:
            async for sample in collector.run(interval):
                if self.ended is not None or self.pc is not pc:
                    return
                self.quality_samples.append(sample)
                self._emit(ev.Quality(call_id=self.call_id, sample=sample))
        except asyncio.CancelledError:
            raise
        except Exception:  # stats are a window on the call, not part of it
            log.warning("call %s: quality sampling stopped", self.call_id[:6], exc_info=True)

    def _video_reading(self) -> VideoReading:
        meter = self.video_meter
        return meter.video() if meter is not None else VideoReading(0, None, None)

    def _arm_media_timer(self) -> None:
        if self._media_timer is None:
            self._media_timer = asyncio.get_running_loop().call_later(
                self.options.media_timeout,
                lambda: self._spawn(self._media_failed("media did not connect in time")),
            )

    def _on_media_connected(self) -> None:
        pc = self.pc
        assert pc is not None
        self._set_stage("connected")
        self.connected_at = time.time()
        if self._media_timer is not None:
            self._media_timer.cancel()
        self._emit(ev.Connected(call_id=self.call_id, setup_ms=self._ms()))
        self._settle_identity()
        self._settle_check_code()
        if self.options.quality_interval and self._quality_task is None:
            self._quality_task = asyncio.get_running_loop().create_task(
                self._collect_quality(pc, self.options.quality_interval)
            )
        if self.call_id and not self.is_room:
            self._spawn(self._tell_connected())

    @property
    def check_status(self) -> str:
        """``waiting``, ``verified`` (``sas`` holds the code), ``mismatch`` or ``unsupported``."""
        return self._sas.status if self._sas is not None else "waiting"

    def _settle_check_code(self) -> None:
        """Emit :class:`~hello_tui.call.events.CheckCode` once the exchange is settled:
        a mismatch at once; a code (or its absence) once DTLS has checked the fingerprints."""
        exchange, pc = self._sas, self.pc
        if exchange is None or pc is None or self._sas_shown or exchange.status == "waiting":
            return
        if exchange.status != "mismatch" and self.stage != "connected":
            return
        self._sas_shown = True
        status = exchange.status
        try:
            local = fingerprint_from_sdp(pc.localDescription.sdp)
            remote = fingerprint_from_sdp(pc.remoteDescription.sdp)
        except SasError:  # cannot happen with aiortc's SDP; never block a call on it
            local = remote = ""
        if status == "verified":
            offer, answer = (local, remote) if exchange.role == "offerer" else (remote, local)
            self.sas = exchange.code(offer, answer) if local else None
            status = status if self.sas else "unsupported"
        if status == "mismatch":
            log.warning("call %s: the check code's reveal does not match", self.call_id[:6])
        self._emit(ev.CheckCode(call_id=self.call_id, status=status, code=self.sas or ""))

    def _settle_identity(self) -> None:
        """Once DTLS is up (the peer holds the certificate its SDP signed):
        judge the key against the pins and emit :class:`~hello_tui.call.events.Identity`."""
        pins = self.phone.pins
        if self.is_room or pins is None or not pins.applies(self.peer_account):
            return
        name, key = self.peer_account, self.peer_key
        try:
            status = pins.record(name, key) if self._peer_proven else "unproven"
            pin = pins.get(name)
        except Exception as exc:  # the pins are a safeguard: say so, never break the call
            log.warning("call %s: the known keys cannot be read or written", self.call_id[:6])
            self._emit(ev.Notice(call_id=self.call_id, text=str(exc), source="known-keys"))
            return
        self._emit_identity(status, pin, proven=self._peer_proven)

    def _emit_identity(self, status: str, pin: Any, *, proven: bool) -> None:
        key = self.peer_key
        event = ev.Identity(
            call_id=self.call_id,
            name=self.peer_account,
            status=status,
            fingerprint=key_fingerprint(key) if key else "",
            pinned=pin.fingerprint if pin is not None and pin.key != key else "",
            proven=proven,
        )
        if status in ("changed", "unproven"):
            log.warning("call %s: the peer's account key is %s", self.call_id[:6], status)
            self.peer = self.peer_account or self.peer  # not the contact: the raw name
            self.contact_shown = False
        self.identity = event
        self._emit(event)

    def mark_verified(self) -> ev.Identity:
        """The user compared the check code aloud: mark this account's pinned key
        verified (``RuntimeError`` saying why when it cannot be)."""
        identity, pins = self.identity, self.phone.pins
        if identity is None or pins is None:
            raise RuntimeError("no account key to verify on this call")
        if not identity.proven or identity.status not in ("new", "known", "verified"):
            raise RuntimeError(f"this account's key is {identity.status}: it cannot be verified")
        if self.check_status != "verified":
            raise RuntimeError("compare the check code first (there is none on this call yet)")
        if identity.status != "verified":
            pin = pins.verify(self.peer_account)
            self._emit_identity("verified", pin, proven=True)
        assert self.identity is not None
        return self.identity

    def accept_new_key(self) -> ev.Identity:
        """The user accepts this account's changed key (proven on this call): it
        replaces the pinned one, unverified (``RuntimeError`` saying why not)."""
        identity, pins = self.identity, self.phone.pins
        if identity is None or pins is None or identity.status != "changed":
            raise RuntimeError("this account's key has not changed")
        if not identity.proven:
            raise RuntimeError("answer first: the new key is not proven yet")
        pin = pins.trust(self.peer_account, self.peer_key)
        self._emit_identity("known", pin, proven=True)
        assert self.identity is not None
        return self.identity

    async def _reveal(self, nonce: str) -> None:
        with contextlib.suppress(SignalingClientError, SignalingError):
            await self.client.request(p.SasReveal(call_id=self.call_id, nonce=nonce))

    async def _tell_connected(self) -> None:
        with contextlib.suppress(SignalingClientError):
            await self.client.connected(self.call_id)

    def _on_first_frame(self) -> None:
        if self.ended is None:
            self._emit(ev.MediaFlowing(call_id=self.call_id, setup_ms=self._ms()))

    async def _media_failed(self, why: str) -> None:
        if self.ended is not None or self.stage == "connected":
            return
        if self.is_room:
            with contextlib.suppress(SignalingClientError):
                await self.client.room_leave(self.room_token)
        elif self.call_id:
            with contextlib.suppress(SignalingClientError):
                await self.client.request(p.Hangup(call_id=self.call_id, reason="media-fail"))
        await self._end("media-fail", why)

    # ------------------------------------------------------------ drivers
    async def _run_outgoing(self, to: str) -> None:
        self.peer_account = to
        self._emit(ev.Dialing(to=to))
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
        offer = await self.client.accept(self.call_id)
        self._peer_proven = proven(offer, "offer", self.peer_account, self.peer_key)
        answer = await self._answer_offer(offer)
        self._arm_media_timer()
        await self.client.answer(self.call_id, answer)
        await self._serve_inbox()

    async def _run_room(self, url: str) -> None:
        self._emit(ev.Dialing(to=url, room=True))
        sdp = await self._new_offer()
        self.phone._room_calls[self.room_token] = self  # before joining: peer-joined may follow
        joined = await self.client.room_join(self.room_token, offer=sdp)
        if joined.call_id:  # a peer was there: our offer went to it
            self.call_id = joined.call_id
            self.phone._register(joined.call_id, self)
            self._set_stage("connecting")
            self._emit(ev.Connecting(call_id=self.call_id))
            self._arm_media_timer()
        else:  # alone: wait for the peer, who will offer
            assert self.pc is not None
            await self.pc.close()
            self.pc = None
            self._set_stage("waiting")
            self._emit(ev.Waiting(token=self.room_token))
        await self._serve_inbox()

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
                self.peer_key = msg.callee_key
                self._set_stage("connecting")
                self._emit(ev.Connecting(call_id=self.call_id))
                self._arm_media_timer()
            case p.Answer() if self.pc is not None and self.pc.signalingState == "have-local-offer":
                # The answer fixed the answerer's nonce: now (never earlier) ours may go.
                reveal = self._sas.take_answer(msg.sdp) if self._sas is not None else None
                if reveal is not None:
                    self._spawn(self._reveal(reveal))
                if not self.is_room:
                    self._peer_proven = proven(msg.sdp, "answer", self.peer_account, self.peer_key)
                answer = RTCSessionDescription(sdp=msg.sdp, type="answer")
                await self.pc.setRemoteDescription(answer)
                self._settle_check_code()
            case p.SasReveal() if self._sas is not None:
                self._sas.take_reveal(msg.nonce)
                self._settle_check_code()
            case p.Offer() if self.is_room and self.pc is None:  # one exchange per call
                if self.stage == "waiting":
                    self._t0 = time.perf_counter()
                    self._set_stage("connecting")
                    self._emit(ev.Connecting(call_id=self.call_id))
                answer = await self._answer_offer(msg.sdp)
                self._arm_media_timer()
                await self.client.answer(self.call_id, answer)
            case p.CallEnded():
                await self._end(msg.reason)
            case p.PeerLeft():
                with contextlib.suppress(SignalingClientError):
                    await self.client.room_leave(self.room_token)
                await self._end(msg.reason)
            case _:
                log.debug("call %s: ignoring %s", self.call_id[:6], type(msg).__name__)

    # ------------------------------------------------------------ the end
    async def _end(self, reason: str, message: str = "") -> ev.Ended:
        if self.ended is not None:
            return self.ended
        stage = self.stage
        duration = round(time.time() - self.connected_at, 3) if self.connected_at else 0.0
        if self._quality_task is not None:  # no sample after this point
            self._quality_task.cancel()
        outcome = ev.call_outcome(reason, stage)
        quality = summarize(
            self.quality_samples, outcome=outcome, reason=reason, duration_s=duration
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
        self.phone._unregister(self)
        if self.sink is not None:
            await self.sink.stop()
        if self.pc is not None:
            await self.pc.close()
        if self.source is not None:
            self.source.stop()
        if self.video_track is not None:
            self.video_track.stop()
        elif self.video_source is not None:
            self.video_source.stop()
        if self.remote_video is not None:
            await self.remote_video.stop()
        self._write_history(reason, stage, duration)
        self._emit(self.ended)
        for task in list(self._background):
            if task is not asyncio.current_task():
                task.cancel()
        task = self._task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
        return self.ended

    def outcome(self, reason: str, stage: str) -> str:
        """The history's word for how the call went."""
        if self.connected_at is not None and reason in ("hangup", "closed", "cancel"):
            return "answered"
        if self.direction == "incoming" and reason in (
            "cancel",
            "timeout",
            "setup-timeout",
            "closed",
        ):
            return "missed"
        return reason

    def _write_history(self, reason: str, stage: str, duration: float) -> None:
        record = CallRecord(
            direction=self.direction,
            peer=self.peer or "anonymous",
            outcome=self.outcome(reason, stage),
            start=self.started,
            duration=duration,
        )
        self.history_record = add_to_history(self.options.history, record)


def add_to_history(store: HistoryStore | None, record: CallRecord) -> CallRecord | None:
    """Append ``record`` if there is a history; the history is a convenience:
    a failure is logged, never raised into a call or the phone."""
    if store is None:
        return None
    try:
        return store.add(record)
    except Exception as exc:
        log.warning("could not write the call history: %s", exc)
        return None


class Phone:
    """Calls over one signaling connection; routes server messages to them.

    ``async with Phone(client, options) as phone:`` then :meth:`dial`,
    :meth:`join` or :meth:`next_incoming`. The client must be connected (and
    logged in, to receive calls).
    """

    def __init__(self, client: SignalingClient, options: CallOptions | None = None) -> None:
        self.client = client
        self.options = options or CallOptions()
        self._calls: dict[str, Call] = {}
        self._room_calls: dict[str, Call] = {}
        self._unrouted: deque[p.Message] = deque(maxlen=UNROUTED_MAX)
        self._incoming: asyncio.Queue[Call] = asyncio.Queue()
        self._router: asyncio.Task[None] | None = None
        self.live: set[Call] = set()
        # Front-end hooks: refuse a caller before ringing (blocked contacts: return
        # "busy" or "rejected"), and the name to show/record for a caller.
        self.screen: Callable[[str], str | None] | None = None
        self.name_of: Callable[[str], str] | None = None
        # Someone called while this device was in another call (the server told
        # them busy): the shown name, once it is in the history.
        self.on_missed: Callable[[str], None] | None = None
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
            self._router = asyncio.get_running_loop().create_task(self._route())

    async def close(self) -> None:
        """Hang up every live call and stop routing."""
        for call in list(self.live):
            with contextlib.suppress(Exception):
                await call.hangup()
        if self._router is not None:
            self._router.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._router
            self._router = None

    # ------------------------------------------------------------ placing calls
    def _options(self, **overrides: Any) -> CallOptions:
        base = self.options
        opts = CallOptions(
            audio_in=base.audio_in,
            audio_out=base.audio_out,
            ice_servers=base.ice_servers,
            history=base.history,
            host_addresses=base.host_addresses,
            media_timeout=base.media_timeout,
            audio_fallback=base.audio_fallback,
            loopback=base.loopback,
            video_source=base.video_source,
            video_width=base.video_width,
            video_height=base.video_height,
            video_fps=base.video_fps,
            video_out=base.video_out,
            identity=base.identity,
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(opts, key, value)
        return opts

    def dial(self, to: str, *, peer: str | None = None, **overrides: Any) -> Call:
        """Call the account ``to``; returns at once (watch the call's events)."""
        self.start()
        call = Call(self, "outgoing", self._options(**overrides), peer=peer or to)
        self.live.add(call)
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
        self.live.add(call)
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
            await call._end("unreachable", "the signaling connection closed")

    async def _dispatch(self, message: Any) -> None:
        if isinstance(message, (Disconnected, Reconnected)):
            if isinstance(message, Disconnected):
                for call in list(self.live):
                    await call._end("unreachable", f"lost the server: {message.reason}")
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
            call = self._room_calls.get(message.token)
            if call is not None:
                call.call_id = message.call_id
                self._register(message.call_id, call)
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
        trusted = self._ring_time_status(caller, msg.caller_key) not in ("changed", "unproven")
        named = self.name_of(caller) if self.name_of and caller and trusted else caller
        shown = named or "anonymous"
        if self.screen is not None and caller and self.screen(caller) is not None:
            return  # blocked (or do-not-disturb): not even a missed call to show
        log.info("missed call %s while in another call", msg.call_id[:6])
        add_to_history(
            self.options.history, CallRecord(direction="incoming", peer=shown, outcome="missed")
        )
        if self.on_missed is not None:
            self.on_missed(shown)

    def _ring_time_status(self, caller: str, key: str) -> str | None:
        """What the pins say of the announced key before any proof (None: no pins)."""
        if self.pins is None or not self.pins.applies(caller):
            return None
        try:
            return str(self.pins.judge(caller, key))
        except Exception:  # an unreadable file: the proven check will say so
            return None

    async def _on_incoming(self, msg: p.Incoming) -> None:
        caller = msg.caller
        status = self._ring_time_status(caller, msg.caller_key)
        # A contact (its name, its photo) only for a key that is not known to be wrong.
        trusted = status not in ("changed", "unproven")
        named = self.name_of(caller) if self.name_of and caller and trusted else caller
        shown = named or "anonymous"
        call = Call(self, "incoming", self._options(), peer=shown, call_id=msg.call_id)
        call.caller_video = msg.video
        call.peer_account, call.peer_key = caller, msg.caller_key
        call.contact_shown = trusted
        verdict = self.screen(caller) if self.screen is not None else None
        self._register(msg.call_id, call)
        self.live.add(call)
        call._emit(ev.Incoming(call_id=msg.call_id, caller=caller, video=msg.video))
        if status == "changed":  # warn while it rings, before anyone answers
            call._emit_identity("changed", self.pins.get(caller), proven=False)
        if verdict in ("busy", "rejected"):
            await call.reject(verdict)  # type: ignore[arg-type]
            return
        call._start(call._serve_inbox())
        with contextlib.suppress(SignalingClientError):
            await self.client.ringing(msg.call_id)
        call._emit(ev.Ringing(call_id=msg.call_id))
        self._incoming.put_nowait(call)
