"""Track wrappers: aiortc ``MediaStreamTrack`` s that wrap another track.

A call never hands a source or a remote track to its consumer directly; it
puts one of these in between, each with one job:

- :class:`GatedTrack` — mute: forwards the source's audio, zeroed while
  :attr:`~GatedTrack.muted` (pacing and pts unchanged: the far side hears
  silence, not a gap, and the stream never stalls).
- :class:`CameraGate` — the camera switch: the source's video while on,
  nothing while off; the first frame after switching on is a key frame.
  Every frame sent also goes to the self-view (a :class:`~hello_tui.media.video.FrameSink`).
- :class:`TappedTrack` — calls back once, on the first received frame (the
  call's "media flowing").
- :class:`MeteredTrack` — measures what getStats() lacks: the last audio
  frame's level, video frames seen and their size (for the quality samples).
- :class:`LoopbackTrack` — the echo peer: sends back the remote track,
  attached once the peer connection reports it.

Stopping a wrapper stops the track it wraps. What is not here: sources
(``sources.py``, ``video.py``) and consumers (``sinks.py``, ``FrameSink``),
which read or produce frames but wrap no track.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hello_tui.media.levels import dbfs_to_level, frame_dbfs

if TYPE_CHECKING:
    from av.frame import Frame
    from av.packet import Packet
    from av.stream import Stream

    from hello_tui.media.video import FrameSink, VideoSource

    # What any MediaStreamTrack.recv() may return (aiortc's annotation).
    Received = Frame | Packet[Stream]

__all__ = [
    "CameraGate",
    "GatedTrack",
    "LoopbackTrack",
    "MeteredTrack",
    "TappedTrack",
    "VideoReading",
]


class GatedTrack(MediaStreamTrack):
    """Forwards ``source``'s frames, zeroed while :attr:`muted` (pacing and pts
    unchanged, so the far side receives silence, not a gap)."""

    kind = "audio"

    def __init__(self, source: MediaStreamTrack) -> None:
        super().__init__()
        self.source = source
        self._muted = False
        self._on_mute: Callable[[], None] | None = None

    @property
    def muted(self) -> bool:
        return self._muted

    @muted.setter
    def muted(self, muted: bool) -> None:
        self._muted = muted
        if muted:  # the send path in C: no frame of ours goes out from now on
            stop, self._on_mute = self._on_mute, None
            if stop is not None:
                stop()

    def native_source(self, stop: Callable[[], None]) -> Any:
        """The microphone whose frames C may send (aiortc_adapter's send path in C):
        none while muted; ``stop`` is called at once when muted."""
        if self._muted:
            return None
        ask = getattr(self.source, "native_source", None)
        if ask is None:
            return None
        self._on_mute = stop
        return ask(stop)

    async def recv(self) -> Received:
        frame = await self.source.recv()
        if self._muted and isinstance(frame, av.AudioFrame):
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
        return frame

    def stop(self) -> None:
        super().stop()
        self.source.stop()


class CameraGate(MediaStreamTrack):
    """What a call sends: ``source``'s frames while :attr:`sending`, nothing while off.

    Off, ``recv()`` waits (without reading the source), so the sender sends no
    packets and the far side stops receiving frames; a paced source skips ahead
    when read again. The first frame after switching on is marked as a key
    frame (``pict_type`` I, which aiortc's VP8 encoder honours). Every frame
    sent is also pushed to ``preview`` (the self-view). Not ``on``: the track is a
    pyee emitter, whose ``on()`` registers a listener (aiortc listens for "ended")."""

    kind = "video"

    def __init__(self, source: VideoSource, preview: FrameSink | None = None) -> None:
        super().__init__()
        self.source = source
        self.preview = preview
        self._sending = asyncio.Event()
        self._sending.set()
        self._keyframe = False

    @property
    def sending(self) -> bool:
        return self._sending.is_set()

    def set_sending(self, sending: bool) -> None:
        if sending and not self._sending.is_set():
            self._keyframe = True
            self._sending.set()
        elif not sending:
            self._sending.clear()

    async def recv(self) -> av.VideoFrame:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            await self._sending.wait()
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self.source.recv()
            if not self._sending.is_set():  # switched off while waiting for the source
                continue
            if self._keyframe:
                self._keyframe = False
                frame.pict_type = av.video.frame.PictureType.I
            if self.preview is not None:
                self.preview.push(frame)
            return frame

    def stop(self) -> None:
        super().stop()
        self._sending.set()  # wake a waiting recv(): it raises MediaStreamError
        self.source.stop()


class TappedTrack(MediaStreamTrack):
    """Forwards a remote track; calls ``on_first`` once, on the first frame."""

    def __init__(self, track: MediaStreamTrack, on_first: Callable[[], None]) -> None:
        super().__init__()
        self.kind = track.kind
        self.track = track
        self._on_first: Callable[[], None] | None = on_first
        self.frames = 0

    def replace(self, track: MediaStreamTrack) -> None:
        """A renewed transport's remote track takes over (the call keeps its consumer);
        a read waiting on the old one moves on when the old connection closes."""
        self.track = track

    async def recv(self) -> Received:
        while True:
            track = self.track
            try:
                frame = await track.recv()
                break
            except MediaStreamError:
                if self.track is track:  # not replaced: this track really ended
                    raise
        self.frames += 1
        if self._on_first is not None:
            callback, self._on_first = self._on_first, None
            callback()
        return frame

    def stop(self) -> None:
        super().stop()
        self.track.stop()

    def native_frames(self, n: int) -> None:
        """Frames the receive path in C played without coming through :meth:`recv`
        (the call's media watch counts them as received)."""
        self.frames += n


@dataclass(frozen=True, slots=True)
class VideoReading:
    """Cumulative video frames and the last frame's size (what fps/resolution come from)."""

    frames: int
    width: int | None
    height: int | None


class MeteredTrack(MediaStreamTrack):
    """Passes ``track``'s frames through, keeping what getStats() lacks.

    Audio: the level of the last frame (``level()``, WebRTC's 0..1
    ``audioLevel``, computed when asked, not per frame). Video: frames seen
    and the last frame's size (``video()``), for fps and resolution. Put it
    between a source and ``addTrack`` (outgoing level) or between the remote
    track and its consumer (incoming video).
    """

    def __init__(self, track: MediaStreamTrack) -> None:
        super().__init__()
        self.kind = track.kind
        self._track = track
        self._last: av.AudioFrame | None = None
        self._level_dbov: Callable[[], float] | None = None  # (the send path in C)
        self.frames = 0
        self.width: int | None = None
        self.height: int | None = None

    def replace(self, track: MediaStreamTrack) -> None:
        """A renewed transport's remote track takes over (as :meth:`TappedTrack.replace`)."""
        self._track = track

    async def recv(self) -> Received:
        while True:
            track = self._track
            try:
                frame = await track.recv()
                break
            except MediaStreamError:
                if self._track is track:  # not replaced: this track really ended
                    raise
        self.frames += 1
        if isinstance(frame, av.VideoFrame):
            self.width, self.height = frame.width, frame.height
        elif isinstance(frame, av.AudioFrame):
            self._last = frame
        return frame

    def native_source(self, stop: Callable[[], None]) -> Any:
        """What the wrapped track answers (the send path in C, see GatedTrack's)."""
        ask = getattr(self._track, "native_source", None)
        return ask(stop) if ask is not None else None

    def level_from(self, level_dbov: Callable[[], float] | None) -> None:
        """While C sends the frames (not through here), :meth:`level` is the last one's
        RFC 6465 level from C, in dB (the same RMS as frame_dbfs, rounded to 1 dB)."""
        self._level_dbov = level_dbov

    def level(self) -> float:
        """audioLevel (0..1) of the last audio frame passed through; 0 before any."""
        if self._level_dbov is not None:
            return dbfs_to_level(self._level_dbov())
        frame = self._last
        if frame is None:
            return 0.0
        return dbfs_to_level(frame_dbfs(frame))

    def video(self) -> VideoReading:
        return VideoReading(self.frames, self.width, self.height)

    def stop(self) -> None:
        super().stop()
        self._track.stop()


class LoopbackTrack(MediaStreamTrack):
    """Sends back what it receives (the echo peer): its source is the remote
    track, attached once the peer connection reports it."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._inner: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self._track: MediaStreamTrack | None = None  # the latest attached

    def attach(self, track: MediaStreamTrack) -> None:
        """The remote track to send back; a renewed transport's takes over (a read
        waiting on the old one moves on when the old connection closes)."""
        self._track = track
        if not self._inner.done():
            self._inner.set_result(track)

    async def recv(self) -> Received:
        if self.readyState != "live":
            raise MediaStreamError
        await self._inner
        while True:
            inner = self._track
            assert inner is not None
            try:
                return await inner.recv()
            except MediaStreamError:
                if self._track is inner or self.readyState != "live":  # really ended
                    raise

    def stop(self) -> None:
        super().stop()
        if self._track is not None:
            self._track.stop()
        else:
            self._inner.cancel()
