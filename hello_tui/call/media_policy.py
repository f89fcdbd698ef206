"""A call's media, chosen when the phone is made: the media policy.

:class:`CallMedia` (the default) is a person's call: the options' microphone
and speaker (``audio_in`` / ``audio_out``), camera and recording, opened
before any SDP so that a device error surfaces before ringing.
:class:`EchoMedia` is the echo peer's: no device at all, what is received is
sent back (audio, and video when the caller offers it). The engine
(:class:`~hello_tui.call.call.Call`) holds one media object per call and asks
it the same four things whatever the policy: open, the track to send, the
video m-line, and what to do with a remote track.

``Phone(client, options, media=EchoMedia)`` picks the policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from hello_tui.call.options import CallOptions
from hello_tui.media.audio_processing import attach_processing, follow_output
from hello_tui.media.sinks import AudioSink, open_audio_sink
from hello_tui.media.sources import open_audio_source
from hello_tui.media.tracks import (
    CameraGate,
    GatedTrack,
    LoopbackTrack,
    MeteredTrack,
    TappedTrack,
    VideoReading,
)
from hello_tui.media.video import (
    FrameSink,
    VideoRecorder,
    VideoSource,
    open_video_source,
)

__all__ = ["CallMedia", "EchoMedia", "MediaPolicy", "NoVideo"]

log = logging.getLogger(__name__)

Notice = Callable[[str, str], None]  # (text, source): one line for the user
# What the worker opened (None: was there already) and the notices to tell.
_Opened = tuple[GatedTrack | None, AudioSink | None, list[tuple[str, str]]]


def _endpoints(opts: CallOptions) -> tuple[str, str, object]:
    """What the opened audio endpoints depend on."""
    return opts.audio_in, opts.audio_out, opts.audio_processing


Spawn = Callable[[Coroutine[Any, Any, Any]], None]  # a task that ends with the call
# Seconds after the first remote audio before asking whether the speaker is a headset
# (devices opened for the call itself): echo cancellation runs on a headset meanwhile.
HEADSET_AFTER = 1.0


class NoVideo(RuntimeError):
    """``set_camera()`` on a call that sends no video (video is negotiated when
    the call starts; there is no renegotiation)."""


class CallMedia:
    """One call's media endpoints under the normal policy (the options' devices).

    ``notice`` tells the user something in one line (a device fallback);
    ``spawn`` runs a task that the call cancels when it ends; ``first_frame``
    is called once, on the first remote audio frame."""

    def __init__(
        self, options: CallOptions, *, notice: Notice, spawn: Spawn, first_frame: Callable[[], None]
    ) -> None:
        self.options = options
        self._notice, self._spawn, self._first_frame = notice, spawn, first_frame
        self.source: GatedTrack | None = None  # what we send, gated by mute
        self.sink: AudioSink | None = None
        self.remote: TappedTrack | None = None
        self.metered: MeteredTrack | None = None  # what we send, for audio_level_out
        # Video (None on an audio-only call): our source, what we send (the camera
        # gate), the self-view, the far side's picture and its meter.
        self.video_source: VideoSource | None = None
        self.video_track: CameraGate | None = None
        self.local_video: FrameSink | None = None
        self.remote_video: FrameSink | None = None
        self.video_meter: MeteredTrack | None = None
        # prepare(): for which endpoints, the worker opening them, what it opened.
        self._prepared_for: tuple[str, str, object] | None = None
        self._opening: asyncio.Future[_Opened] | None = None
        self._own_source: GatedTrack | None = None
        self._own_sink: AudioSink | None = None
        self._warmed = 0  # 1: the speaker was started early, 2: the microphone too
        # The opening thread starts the microphone after opening if this says so by
        # then (an answer while it rang); ``_thread_done``: too late, the loop starts it.
        self._gate = threading.Lock()
        self._capture_wanted = False
        self._thread_done = False
        self._preparing: asyncio.Future[None] | None = None  # begin(): prepare() under way
        self.mute_on_open = False  # muted before the source was open (begin())
        # Opened in the background: is the speaker a headset? Asked once audio flows.
        self._ask_headset = False
        self._flowing = False

    # ------------------------------------------------------------ audio
    def open(self) -> None:
        """Open the source and sink (once; before any SDP: errors surface before ringing)."""
        if self.source is None or self.sink is None:
            self._adopt(self._open_endpoints(self.options, self.source, self.sink))
            self._ask_headset = False
            if (notice := self._headset_notice()) is not None:
                self._notice(notice, "audio-in")

    async def prepare(self, *, capture: bool = True) -> None:
        """:meth:`open` with its blocking part (PortAudio opening the streams, the
        processing stage loading) in a worker thread, which then starts the devices
        (:meth:`warm`), so the streams run by the time ICE and DTLS have connected
        instead of starting after. ``capture=False`` (a call
        still ringing) starts only the speaker: the microphone starts once the
        user answers. The same call preparing again (ringing, then answered)
        reuses what was opened, except what depends on an endpoint that changed
        (answered with other devices): that is closed and opened anew. A slot
        filled from outside meanwhile (a test's recorder) is left alone."""
        wanted = _endpoints(self.options)
        if self._prepared_for is not None and self._prepared_for != wanted:
            was, self._prepared_for = self._prepared_for, None
            processing = was[2] != wanted[2]
            await self._retire(source=processing or was[0] != wanted[0],
                               sink=processing or was[1] != wanted[1])  # fmt: skip
        if self._prepared_for is None:
            self._launch(capture)
        elif capture and self._warmed < 2 and self._opening is not None:
            with self._gate:  # answered while the devices still open: that thread starts it
                if not self._thread_done:
                    self._capture_wanted, self._warmed = True, 2
        await self._adopt_opened()
        if self._warmed < (2 if capture else 1):
            self._warmed = 2 if capture else 1
            self._spawn(asyncio.to_thread(self.warm, capture=capture))

    def _launch(self, capture: bool) -> None:
        """Submit the opening thread now (not a task that starts one on the loop's
        next turn); the devices are started there, right after opening: not a hop
        through the loop, which is busy connecting the call meanwhile."""
        wanted = _endpoints(self.options)
        self._prepared_for = wanted
        self._warmed = 2 if capture else 1
        with self._gate:
            self._capture_wanted, self._thread_done = capture, False
        self._opening = asyncio.get_running_loop().run_in_executor(
            None, self._open_and_start, self.options, self.source, self.sink
        )

    def begin(self, *, capture: bool = True) -> None:
        """:meth:`prepare` without waiting for it: the devices open (PortAudio and
        the sound server: 40-250 ms, mostly waiting) while the call is signalled
        and ICE/DTLS connect. :meth:`sent_track` and the remote audio's playout
        wait for them (:meth:`ready`); the call awaits :meth:`ready` to learn of
        a failure."""
        if self._prepared_for is None:
            self._launch(capture)  # now: prepare() below runs on the loop's next turn
        self._preparing = asyncio.ensure_future(self.prepare(capture=capture))
        self._preparing.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def ready(self) -> None:
        """Wait for what :meth:`begin` started (raises what opening raised)."""
        if self._preparing is not None:
            await asyncio.shield(self._preparing)

    def warm(self, *, capture: bool = True) -> None:
        """Start the devices now (blocking; any thread): the speaker plays silence
        and the microphone's blocks are dropped until the call reads them
        (``DeviceSink.warm`` / ``DeviceSource.warm``). A device that fails to start
        here fails again, visibly, where the call starts it."""
        _start(self.sink, self.source if capture else None)

    def _open_and_start(
        self, opts: CallOptions, source: GatedTrack | None, sink: AudioSink | None
    ) -> _Opened:
        """:meth:`_open_endpoints`, then start what it opened (:meth:`warm`): the
        speaker, and the microphone if capture is wanted by then (a call answered
        while its devices were opening starts capturing here, not after a hop
        through the loop)."""
        return self._start_opened(self._open_endpoints(opts, source, sink))

    def _start_opened(self, opened: _Opened) -> _Opened:
        if self._capture_wanted:  # the microphone first: its first block takes longest
            _start(None, opened[0])
            _start(opened[1], None)
            return opened
        _start(opened[1], None)
        with self._gate:
            capture, self._thread_done = self._capture_wanted, True
        if capture:
            _start(None, opened[0])
        return opened

    @staticmethod
    def _open_endpoints(
        opts: CallOptions, source: GatedTrack | None, sink: AudioSink | None
    ) -> _Opened:
        """Open the missing endpoints (blocking; None for one given); notices are
        told by :meth:`_adopt_opened`, in the loop."""
        notices: list[tuple[str, str]] = []
        new_source = new_sink = None
        if source is None:
            src = open_audio_source(opts.audio_in, fallback=opts.audio_fallback)
            if src.notice is not None:
                notices.append((str(src.notice), "audio-in"))
            source = new_source = GatedTrack(src)
        if sink is None:
            sink = new_sink = open_audio_sink(opts.audio_out, fallback=opts.audio_fallback)
            if sink.notice is not None:
                notices.append((str(sink.notice), "audio-out"))
        if new_source is not None or new_sink is not None:
            # Echo cancellation etc. on device: capture (the sink's playout is its reference).
            # Whether the speaker is a headset (two pactl runs: 30-50 ms, and the sound
            # server's work for them) is asked after audio flows (_tell_headset), not
            # between opening and starting the devices.
            notice = attach_processing(
                source.source, sink, opts.audio_processing, ask_headset=False
            )
            if notice is not None:
                notices.append((notice, "audio-in"))
        return new_source, new_sink, notices

    def _adopt(self, opened: _Opened) -> None:
        source, sink, notices = opened
        self.source = source or self.source
        self.sink = sink or self.sink
        for text, role in notices:
            self._notice(text, role)

    async def _adopt_opened(self) -> None:
        """Put what the worker opened into the slots still empty (and close what
        was opened for a slot filled meanwhile from outside)."""
        opening = self._opening
        if opening is None:
            return
        source, sink, notices = await asyncio.shield(opening)
        if self._opening is not opening:  # another waiter (ringing, then answered) took it
            return
        self._opening = None
        if source is not None:
            if self.source is None:
                self.source = self._own_source = source
                source.muted = self.mute_on_open
            else:
                source.stop()
        if sink is not None:
            if self.sink is None:
                self.sink = self._own_sink = sink
            else:
                await sink.stop()
        for text, role in notices:
            self._notice(text, role)
        self._ask_headset = source is not None or sink is not None
        if self._flowing:
            self._spawn(self._tell_headset())

    def _headset_notice(self) -> str | None:
        """Echo cancellation off if the speaker is a headset (blocking: asks the sound
        server); the notice saying so, or None."""
        return follow_output(self.source.source if self.source else None, self.sink)

    async def _tell_headset(self) -> None:
        if self._ask_headset:
            self._ask_headset = False
            # Not at once: the pactl runs would take the CPU the far side's first
            # packets need (its own first audio comes a few ms after ours).
            await asyncio.sleep(HEADSET_AFTER)
            notice = await asyncio.to_thread(self._headset_notice)
            if notice is not None:
                self._notice(notice, "audio-in")

    def _on_first_frame(self) -> None:
        self._flowing = True
        self._first_frame()
        self._spawn(self._tell_headset())

    async def _retire(self, *, source: bool, sink: bool) -> None:
        """Close what :meth:`prepare` opened for endpoints that changed since."""
        with contextlib.suppress(Exception):  # it failed to open: nothing to close
            await self._adopt_opened()
        self._warmed = 0
        if source and self._own_source is not None and self.source is self._own_source:
            self._own_source.stop()
            self.source = self._own_source = None
        if sink and self._own_sink is not None and self.sink is self._own_sink:
            await self._own_sink.stop()
            self.sink = self._own_sink = None

    def connected(self) -> None:
        """The call's media connected (DTLS up): the microphone's blocks are kept
        from now on (``DeviceSource.listen``), not only from the sender's first
        read, which comes after the loop has done the connection's own steps."""
        listen = getattr(self.source.source if self.source else None, "listen", None)
        if listen is not None:  # muted: the gate zeroes what it forwards
            listen()

    def sent_track(self) -> MeteredTrack:
        """The source as sent, metered (the outgoing level of the quality samples);
        before :meth:`begin`'s devices are open, a stand-in that waits for them."""
        if self.metered is None:
            if self.source is None:
                assert self._preparing is not None, "open(), prepare() or begin() first"
                self.metered = MeteredTrack(_OpeningSource(self))
            else:
                self.metered = MeteredTrack(self.source)
        return self.metered

    def sent_video(self) -> MediaStreamTrack | None:
        """What we send on the video m-line (a renewed transport's sender takes it)."""
        return self.video_track

    def on_track(self, track: MediaStreamTrack) -> None:
        """A remote track arrived (the peer connection's ``track`` event)."""
        if track.kind == "video":
            self._on_video(track)
        elif track.kind == "audio" and self.remote is not None:
            self.remote.replace(track)  # a renewed transport's: the same consumer reads it
        elif track.kind == "audio":
            self.remote = TappedTrack(track, self._on_first_frame)
            self._play(self.remote)

    def _play(self, remote: TappedTrack) -> None:
        if self.sink is not None:
            self._spawn(self.sink.start(remote))
        elif self._preparing is not None:  # begin(): the speaker is still opening
            self._spawn(self._play_when_open(remote))

    async def _play_when_open(self, remote: TappedTrack) -> None:
        with contextlib.suppress(Exception):  # the call is told by its own ready()
            await self.ready()
        if self.sink is not None and self.remote is remote:
            await self.sink.start(remote)

    # ------------------------------------------------------------ video
    def add_video(self, pc: RTCPeerConnection, *, offer: bool) -> None:
        """The video m-line: send our gate if we have one, else receive only;
        answering an offer with video while audio-only: inactive."""
        if self.options.video_source is None:
            if not offer:
                for transceiver in pc.getTransceivers():
                    if transceiver.kind == "video":
                        transceiver.direction = "inactive"
            return
        if offer:
            self._open_video()
            if self.video_track is not None:
                pc.addTransceiver(self.video_track, direction="sendrecv")
            else:
                pc.addTransceiver("video", direction="recvonly")
            return
        if not any(t.kind == "video" for t in pc.getTransceivers()):
            return
        self._open_video()
        if self.video_track is not None:
            pc.addTrack(self.video_track)

    def camera(self) -> CameraGate:
        """The camera gate, or :class:`NoVideo` saying why this call sends no video."""
        if self.video_track is not None:
            return self.video_track
        why = self.video_source.notice if self.video_source is not None else None
        raise NoVideo(
            f"this call sends no video ({why})"
            if why
            else "this call sends no video: start the call with video to use the camera"
        )

    def _open_video(self) -> None:
        """Open the video source (once; a camera that cannot be used → a notice)."""
        opts = self.options
        if self.video_source is not None or opts.video_source is None:
            return
        src = open_video_source(opts.video_source, opts.video_width, opts.video_height,
                                opts.video_fps)  # fmt: skip
        self.video_source = src
        if src.notice is not None:
            self._notice(str(src.notice), "video-in")
        if src.has_video:
            self.local_video = FrameSink()
            self.video_track = CameraGate(src, self.local_video)

    def _on_video(self, track: MediaStreamTrack) -> None:
        if self.video_meter is not None:  # a renewed transport's: the same picture reads it
            self.video_meter.replace(track)
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

    def video_reading(self) -> VideoReading:
        meter = self.video_meter
        return meter.video() if meter is not None else VideoReading(0, None, None)

    # ------------------------------------------------------------ the end
    async def close(self, pc: RTCPeerConnection | None) -> None:
        """Stop everything opened (the call has ended); ``pc`` is closed after the
        sink stopped reading from it."""
        with contextlib.suppress(Exception):  # still opening: adopt it, to close it
            await self._adopt_opened()
        if self.sink is not None:
            await self.sink.stop()
        if pc is not None:
            await pc.close()
        if self.source is not None:
            self.source.stop()
        if self.video_track is not None:
            self.video_track.stop()
        elif self.video_source is not None:
            self.video_source.stop()
        if self.remote_video is not None:
            await self.remote_video.stop()


def _start(sink: AudioSink | None, source: GatedTrack | None) -> None:
    """Start a sink and a source that can be started early (devices); blocking."""
    for device in (sink, source.source if source is not None else None):
        warm = getattr(device, "warm", None)
        if warm is not None:
            try:
                warm()
            except Exception as exc:  # PortAudio's error: the call's own start says it
                log.info("warming %s failed: %s", type(device).__name__, exc)


class _OpeningSource(MediaStreamTrack):
    """What a call sends while :meth:`CallMedia.begin`'s devices are still opening
    (the SDP needs a track, not the device): the first ``recv`` (once DTLS is up)
    waits for them, then the sent track reads the source itself."""

    kind = "audio"

    def __init__(self, media: CallMedia) -> None:
        super().__init__()
        self._media = media

    async def recv(self) -> Any:
        try:
            await self._media.ready()
        except Exception as exc:  # the call ends on it (its own ready())
            raise MediaStreamError(f"the audio source did not open: {exc}") from None
        source, metered = self._media.source, self._media.metered
        if source is None or metered is None or self.readyState != "live":
            raise MediaStreamError("the audio source did not open")
        metered.replace(source)
        return await source.recv()


class _VideoLoopback(LoopbackTrack):
    """The echo peer's video: sends back the received video track."""

    kind = "video"


class EchoMedia(CallMedia):
    """The echo peer's policy: sends back what it receives; no device, no file.

    The received audio track is the sent one (a :class:`LoopbackTrack`):
    decoded Opus frames go straight back to the encoder. A caller that offers
    video gets its own video back. The echo never offers (it only answers)."""

    def __init__(
        self, options: CallOptions, *, notice: Notice, spawn: Spawn, first_frame: Callable[[], None]
    ) -> None:
        super().__init__(options, notice=notice, spawn=spawn, first_frame=first_frame)
        self._loopback: LoopbackTrack | None = None
        self._video_loopback: _VideoLoopback | None = None

    def open(self) -> None:
        if self.source is None:
            self._loopback = LoopbackTrack()
            self.source = GatedTrack(self._loopback)

    async def prepare(self, *, capture: bool = True) -> None:
        self.open()  # no device: nothing to open in the background

    def begin(self, *, capture: bool = True) -> None:
        self.open()

    def _play(self, remote: TappedTrack) -> None:
        if self._loopback is not None:
            self._loopback.attach(remote)

    def add_video(self, pc: RTCPeerConnection, *, offer: bool) -> None:
        videos = [t for t in pc.getTransceivers() if t.kind == "video"]
        if offer or not videos:
            return
        self._video_loopback = self._video_loopback or _VideoLoopback()
        pc.addTrack(self._video_loopback)
        receiver_track = videos[0].receiver.track
        if receiver_track is not None:
            self._video_loopback.attach(receiver_track)

    def _on_video(self, track: MediaStreamTrack) -> None:
        if self._video_loopback is not None:
            self._video_loopback.attach(track)

    def sent_video(self) -> MediaStreamTrack | None:
        return self._video_loopback  # the caller's own video, sent back


MediaPolicy = type[CallMedia]  # CallMedia (devices and files) or EchoMedia (sends back)
