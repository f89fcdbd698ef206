"""Video: sources (``pattern:``, ``camera:INDEX``, ``null:``) and
:class:`FrameSink`, where front ends pick up the latest received picture.

Core: no Textual. OpenCV (``cv2``, the ``video`` extra) is imported only when a
``camera:`` endpoint is opened; a camera that cannot be used (no OpenCV, no
device, fails to open or to deliver a first frame) becomes ``null:`` with a
one-line :class:`VideoFallbackNotice`, never a crash.

Frames are ``av.VideoFrame`` in ``yuv420p`` with ``pts`` on the 90 kHz RTP
video clock (``time_base = 1/90000``), what aiortc's VP8 encoder takes as is.

- :class:`PatternSource` — a synthetic moving test picture: eight colour bars
  (top two thirds), a white box moving left and right (bottom third), and the
  frame number as 16 black/white cells along the bottom edge
  (:func:`decode_counter` reads it back from a decoded RGB picture). Paced by
  ``time.monotonic`` against ``pts`` (absolute deadlines; after a stall the
  source skips ahead rather than bursting, as the audio sources do).
- :class:`CameraSource` — ``cv2.VideoCapture`` read in a thread, converted and
  scaled there, handed to the loop through a bounded queue (oldest dropped).
- :class:`NullVideoSource` — no video (``has_video`` is False: nothing is sent).
- The camera gate (what a call sends while the camera is on) is a track
  wrapper: :class:`hello_tui.media.tracks.CameraGate`.
- :class:`FrameSink` — keeps only the latest frame, a counter and the measured
  frame rate; front ends pull a downscaled RGB picture at their own pace
  (:meth:`FrameSink.latest`). Optionally records to a file (:class:`VideoRecorder`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hello_tui.media.endpoint import parse_endpoint
from hello_tui.media.quiet import quiet_stderr

if TYPE_CHECKING:  # an audio-only process has av's stand-in, without containers
    from av.container import OutputContainer

__all__ = [
    "DEFAULT_FPS",
    "DEFAULT_HEIGHT",
    "DEFAULT_WIDTH",
    "VIDEO_CLOCK",
    "CameraSource",
    "FrameSink",
    "NullVideoSource",
    "PatternSource",
    "Picture",
    "VideoFallbackNotice",
    "VideoRecorder",
    "VideoSource",
    "decode_counter",
    "fit",
    "open_video_source",
    "pattern_colours",
]

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000  # RTP video clock rate (Hz)
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS = 320, 240, 15
MAX_STALL = 0.25  # s behind schedule before a generated source skips ahead
COUNTER_BITS = 16
CAMERA_QUEUE = 2  # frames between the capture thread and the loop
CAMERA_FIRST_FRAME = 3.0  # s to wait for a first frame before falling back

# Colour bars, left to right (RGB): white, yellow, cyan, green, magenta, red, blue, black.
BARS: tuple[tuple[int, int, int], ...] = (
    (235, 235, 235), (235, 235, 16), (16, 235, 235), (16, 235, 16),
    (235, 16, 235), (235, 16, 16), (16, 16, 235), (16, 16, 16),
)  # fmt: skip
BACKGROUND = (64, 64, 64)  # the bottom third, behind the moving box
BOX = (235, 235, 235)


@dataclass(frozen=True, slots=True)
class VideoFallbackNotice:
    """Why a video source was replaced by ``null:``. ``str()`` is the one line."""

    requested: str
    reason: str
    used: str = "null:"
    role: str = "video-source"

    def __str__(self) -> str:
        return f"no camera ({self.reason}); sending no video ({self.used})"


def _even(n: int) -> int:
    return max(16, int(n) // 2 * 2)


class VideoSource(MediaStreamTrack):
    """Base of the video sources: ``kind`` video, a size, a rate, a notice."""

    kind = "video"
    has_video = True  # False: nothing to send (null:)

    def __init__(self, width: int, height: int, fps: float, endpoint: str = "") -> None:
        super().__init__()
        self.width, self.height = _even(width), _even(height)
        self.fps = float(fps) if fps and fps > 0 else float(DEFAULT_FPS)
        self.endpoint = endpoint
        self.notice: VideoFallbackNotice | None = None
        self.frames = 0  # frames delivered by recv()

    async def recv(self) -> av.VideoFrame:  # pragma: no cover - subclasses
        raise NotImplementedError


class NullVideoSource(VideoSource):
    """No video: never delivers a frame (the call adds no sending track for it)."""

    has_video = False

    def __init__(self, notice: VideoFallbackNotice | None = None) -> None:
        super().__init__(DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_FPS, "null:")
        self.notice = notice
        self._stopped = asyncio.Event()

    async def recv(self) -> av.VideoFrame:
        await self._stopped.wait()
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._stopped.set()


# ---------------------------------------------------------------- the test pattern
def _rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Full-range RGB → BT.601 limited-range YUV (what swscale assumes both ways)."""
    r, g, b = (c / 255.0 for c in rgb)
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    u = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    v = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return round(y), round(u), round(v)


def pattern_colours() -> tuple[tuple[int, int, int], ...]:
    """The RGB colours of the bars, left to right."""
    return BARS


@dataclass(frozen=True, slots=True)
class _Layout:
    width: int
    height: int
    bars_h: int  # rows 0..bars_h: the colour bars
    cell_w: int  # counter cell width (16 cells)
    cell_y: int  # first row of the counter strip
    box: int  # box side


def _layout(width: int, height: int) -> _Layout:
    bars_h = (height * 2 // 3) // 2 * 2
    strip = max(2, (height // 10) // 2 * 2)
    box = max(2, ((height - bars_h - strip) * 2 // 3) // 2 * 2)
    return _Layout(width, height, bars_h, width // COUNTER_BITS // 2 * 2, height - strip, box)


def decode_counter(rgb: np.ndarray) -> int:
    """The frame number a :class:`PatternSource` wrote into a (decoded) RGB picture.

    Samples the middle of each of the 16 cells of the bottom strip; works on
    any scale of the picture (aspect kept) and survives lossy coding."""
    h, w = rgb.shape[:2]
    lay = _layout(w, h)
    cell_w = w / COUNTER_BITS
    y = int((lay.cell_y + h) / 2)
    value = 0
    for bit in range(COUNTER_BITS):
        x = int(cell_w * bit + cell_w / 2)
        luma = float(np.mean(rgb[y, x, :3]))
        value = value << 1 | (luma > 128)
    return value


class PatternSource(VideoSource):
    """``pattern:``: colour bars, a moving box and the frame number, paced by the clock."""

    def __init__(
        self,
        width: int = DEFAULT_WIDTH,
        height: int = DEFAULT_HEIGHT,
        fps: float = DEFAULT_FPS,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(width, height, fps, "pattern:")
        self._clock = clock
        self._t0: float | None = None
        self._n = -1  # index of the last frame delivered
        self.skipped = 0  # frames skipped after stalls
        self._lay = _layout(self.width, self.height)
        self._base = self._background()

    def _background(self) -> np.ndarray:
        lay = self._lay
        w, h = lay.width, lay.height
        y = np.empty((h, w), np.uint8)
        u = np.empty((h // 2, w // 2), np.uint8)
        v = np.empty((h // 2, w // 2), np.uint8)
        yb, ub, vb = _rgb_to_yuv(BACKGROUND)
        y[:], u[:], v[:] = yb, ub, vb
        bar_w = w / len(BARS)
        for i, colour in enumerate(BARS):
            x0, x1 = round(i * bar_w) // 2 * 2, round((i + 1) * bar_w) // 2 * 2
            cy, cu, cv = _rgb_to_yuv(colour)
            y[: lay.bars_h, x0:x1] = cy
            u[: lay.bars_h // 2, x0 // 2 : x1 // 2] = cu
            v[: lay.bars_h // 2, x0 // 2 : x1 // 2] = cv
        return np.concatenate([y.reshape(-1), u.reshape(-1), v.reshape(-1)])

    def picture(self, n: int) -> av.VideoFrame:
        """Frame number ``n`` of the pattern (no pts)."""
        lay = self._lay
        w, h = lay.width, lay.height
        buf = self._base.copy()
        y = buf[: w * h].reshape(h, w)
        u = buf[w * h : w * h + w * h // 4].reshape(h // 2, w // 2)
        v = buf[w * h + w * h // 4 :].reshape(h // 2, w // 2)
        # The moving box: left to right and back, 4 s a round trip at any rate.
        span = max(1, w - lay.box)
        phase = (n / self.fps / 2.0) % 2.0
        x = int((phase if phase <= 1 else 2 - phase) * span) // 2 * 2
        top = (lay.bars_h + (lay.cell_y - lay.bars_h - lay.box) // 2) // 2 * 2
        by, bu, bv = _rgb_to_yuv(BOX)
        y[top : top + lay.box, x : x + lay.box] = by
        u[top // 2 : (top + lay.box) // 2, x // 2 : (x + lay.box) // 2] = bu
        v[top // 2 : (top + lay.box) // 2, x // 2 : (x + lay.box) // 2] = bv
        # The counter: 16 cells, most significant bit first, white = 1.
        value = n % (1 << COUNTER_BITS)
        cw = w / COUNTER_BITS
        for bit in range(COUNTER_BITS):
            on = value >> (COUNTER_BITS - 1 - bit) & 1
            x0, x1 = round(bit * cw) // 2 * 2, round((bit + 1) * cw) // 2 * 2
            y[lay.cell_y :, x0:x1] = 235 if on else 16
            u[lay.cell_y // 2 :, x0 // 2 : x1 // 2] = 128
            v[lay.cell_y // 2 :, x0 // 2 : x1 // 2] = 128
        return av.VideoFrame.from_ndarray(buf.reshape(h * 3 // 2, w), format="yuv420p")

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        n = self._n + 1
        due = self._t0 + n / self.fps
        if now - due > MAX_STALL:  # the loop was blocked: skip ahead, never burst
            late = int((now - self._t0) * self.fps)
            self.skipped += late - n
            n = late
        elif due > now:
            await asyncio.sleep(due - now)
        self._n = n
        frame = self.picture(n)
        frame.pts = round(n * VIDEO_CLOCK / self.fps)
        frame.time_base = TIME_BASE
        self.frames += 1
        return frame


# ---------------------------------------------------------------- the camera
def _cv2() -> Any:
    """OpenCV, imported quietly (its own log silenced); raises ImportError."""
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
    os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
    with quiet_stderr():
        import cv2
    with contextlib.suppress(Exception):
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    return cv2


class CameraUnavailable(Exception):
    """A ``camera:`` endpoint cannot be used; the message is the one-line reason."""


class CameraSource(VideoSource):
    """``camera:INDEX`` through OpenCV: captured in a thread, scaled to ``width``×``height``
    there, queued (at most :data:`CAMERA_QUEUE` frames; the oldest is dropped and
    counted in :attr:`dropped`). ``pts`` follows the capture time."""

    def __init__(self, index: int, width: int, height: int, fps: float) -> None:
        super().__init__(width, height, fps, f"camera:{index}")
        self.index = index
        self.dropped = 0
        # Not ``_loop``: the track's base (pyee's emitter) owns that name.
        self._main_loop = asyncio.get_running_loop()
        self._queue: collections.deque[tuple[float, av.VideoFrame]] = collections.deque(
            maxlen=CAMERA_QUEUE
        )
        self._ready = asyncio.Event()
        self._halt = threading.Event()
        self._t0: float | None = None
        self._last_pts = -1
        cv2 = _cv2()
        with quiet_stderr():
            cap = cv2.VideoCapture(index)
            opened = cap.isOpened()
        if not opened:
            cap.release()
            missing = os.name == "posix" and not os.path.exists(f"/dev/video{index}")
            raise CameraUnavailable(
                f"/dev/video{index} does not exist" if missing else f"cannot open camera {index}"
            )
        with quiet_stderr():
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise CameraUnavailable(f"camera {index} delivers no picture")
        self._cap = cap
        self._thread = threading.Thread(target=self._capture, name=f"camera-{index}", daemon=True)
        self._thread.start()

    def _convert(self, bgr: np.ndarray) -> av.VideoFrame:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        return frame.reformat(width=self.width, height=self.height, format="yuv420p")

    def _capture(self) -> None:
        period = 1.0 / self.fps
        next_at = time.monotonic()
        failures = 0
        try:
            while not self._halt.is_set():
                ok, bgr = self._cap.read()
                now = time.monotonic()
                if not ok or bgr is None:
                    failures += 1
                    if failures > 50:
                        return
                    time.sleep(0.02)
                    continue
                failures = 0
                if now < next_at:  # the camera runs faster than we want: skip
                    continue
                next_at = max(next_at + period, now - period)
                frame = self._convert(bgr)
                with contextlib.suppress(RuntimeError):  # the loop is closed
                    self._main_loop.call_soon_threadsafe(self._push, now, frame)
        finally:
            with contextlib.suppress(Exception):
                self._cap.release()

    def _push(self, at: float, frame: av.VideoFrame) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((at, frame))
        self._ready.set()

    async def recv(self) -> av.VideoFrame:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.readyState != "live":
            raise MediaStreamError
        at, frame = self._queue.popleft()
        if self._t0 is None:
            self._t0 = at
        pts = max(self._last_pts + 1, round((at - self._t0) * VIDEO_CLOCK))
        self._last_pts = pts
        frame.pts, frame.time_base = pts, TIME_BASE
        self.frames += 1
        return frame

    def stop(self) -> None:
        super().stop()
        self._halt.set()
        self._ready.set()


def open_video_source(
    spec: str,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    fps: float = DEFAULT_FPS,
    *,
    fallback: bool = True,
) -> VideoSource:
    """The source an endpoint string names (must run inside the event loop).

    ``camera:`` that cannot be used returns a :class:`NullVideoSource` whose
    ``notice`` says why (``fallback=False``: raises :class:`CameraUnavailable`).
    ``has_video`` tells whether there is anything to send.
    """
    endpoint = parse_endpoint(spec, "video-source")
    if endpoint.kind == "pattern":
        return PatternSource(width, height, fps)
    if endpoint.kind == "null":
        return NullVideoSource()
    index = int(endpoint.arg or 0)
    try:
        try:
            _cv2()
        except ImportError:
            raise CameraUnavailable(
                "OpenCV is not installed: pip install 'hello-tui[video]'"
            ) from None
        return CameraSource(index, width, height, fps)
    except CameraUnavailable as exc:
        if not fallback:
            raise
        return NullVideoSource(VideoFallbackNotice(str(endpoint), str(exc)))


# ---------------------------------------------------------------- receiving: the sink
@dataclass(frozen=True, slots=True)
class Picture:
    """A frame ready to draw: ``rgb`` is (height, width, 3) uint8, already scaled."""

    rgb: np.ndarray
    index: int  # FrameSink.frames when this frame arrived (1 = the first)
    source_width: int
    source_height: int


def fit(src_w: int, src_h: int, max_w: int, max_h: int) -> tuple[int, int]:
    """The largest size within ``max_w``×``max_h`` with the aspect of ``src_w``×``src_h``
    (height even, at least 2×2)."""
    scale = min(max_w / src_w, max_h / src_h)
    w = max(2, int(src_w * scale))
    h = max(2, int(src_h * scale) // 2 * 2)
    return w, h


class FrameSink:
    """Keeps only the latest video frame; front ends pull it at their own rate.

    ``await sink.run(track)`` reads a track until it ends (or :meth:`push` frames
    in yourself). :attr:`frames` counts frames, :attr:`fps` is measured over the
    last second, :attr:`width`/:attr:`height` are the last frame's size.
    :meth:`latest` scales the newest frame to fit a box (cached per frame and
    size, so a front end asking twice pays once). No queue: a slow reader just
    sees fewer frames. Safe to call :meth:`latest` from a worker thread.
    """

    def __init__(
        self,
        max_width: int = 160,
        max_height: int = 120,
        *,
        recorder: VideoRecorder | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_width, self.max_height = max_width, max_height
        self.recorder = recorder
        self._clock = clock
        self._frame: av.VideoFrame | None = None
        self._index = 0
        self.frames = 0
        self.width: int | None = None
        self.height: int | None = None
        self.last_at: float | None = None
        self._times: collections.deque[float] = collections.deque(maxlen=256)
        self._cache: tuple[int, int, int, Picture] | None = None
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def push(self, frame: av.VideoFrame) -> None:
        now = self._clock()
        with self._lock:
            self._frame = frame
            self.frames += 1
            self._index = self.frames
        self.width, self.height = frame.width, frame.height
        self.last_at = now
        self._times.append(now)
        if self.recorder is not None:
            self.recorder.write(frame)

    @property
    def fps(self) -> float:
        """Frames received during the last second."""
        now = self._clock()
        return float(sum(1 for t in self._times if now - t <= 1.0))

    def latest(self, max_width: int | None = None, max_height: int | None = None) -> Picture | None:
        """The newest frame as RGB, scaled to fit (aspect kept); None before any."""
        with self._lock:
            frame, index = self._frame, self._index
        if frame is None:
            return None
        mw, mh = max_width or self.max_width, max_height or self.max_height
        cached = self._cache
        if cached is not None and cached[:3] == (index, mw, mh):
            return cached[3]
        w, h = fit(frame.width, frame.height, mw, mh)
        rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
        picture = Picture(rgb, index, frame.width, frame.height)
        self._cache = (index, mw, mh, picture)
        return picture

    async def run(self, track: MediaStreamTrack) -> None:
        """Read ``track`` until it ends, keeping the latest frame."""
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                if isinstance(frame, av.VideoFrame):
                    self.push(frame)
        finally:
            if self.recorder is not None:
                self.recorder.close()

    def start(self, track: MediaStreamTrack) -> None:
        """Run :meth:`run` in a task (stopped by :meth:`stop`)."""
        self._task = asyncio.get_running_loop().create_task(self.run(track))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.recorder is not None:
            self.recorder.close()


class VideoRecorder:
    """Writes received frames to ``PATH.y4m`` (raw YUV4MPEG2) or ``PATH.mp4`` (MPEG-4 part 2).

    The size is the first frame's (later frames are scaled to it); frames are
    timed by arrival at ``fps``. The file is complete after :meth:`close`."""

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".y4m", ".mp4"):
            raise ValueError(f"{path}: video can be recorded to .y4m or .mp4")
        self.fps = fps
        self.frames = 0
        self._out: tuple[OutputContainer, av.VideoStream] | None = None  # at the first frame
        self._time_base = fractions.Fraction(1, 15)
        self._closed = False

    def write(self, frame: av.VideoFrame) -> None:
        if self._closed:
            return
        if self._out is None:
            self._out = self._open(frame)
        container, stream = self._out
        out = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
        out.pts, out.time_base = self.frames, self._time_base
        self.frames += 1
        for packet in stream.encode(out):
            container.mux(packet)

    def _open(self, first: av.VideoFrame) -> tuple[OutputContainer, av.VideoStream]:
        mp4 = self.path.suffix.lower() == ".mp4"
        container = av.open(str(self.path), "w", format=None if mp4 else "yuv4mpegpipe")
        rate = fractions.Fraction(round(self.fps * 1000), 1000)
        self._time_base = 1 / rate
        stream = container.add_stream("mpeg4" if mp4 else "rawvideo", rate=rate)
        stream.width, stream.height = first.width, first.height
        stream.pix_fmt = "yuv420p"
        if mp4:
            stream.bit_rate = 1_000_000
        return container, stream

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._out is None:
            return
        container, stream = self._out
        with contextlib.suppress(Exception):
            for packet in stream.encode(None):
                container.mux(packet)
        container.close()
