"""One call's terminal sharing, both ways: ours (a pty we share) and theirs (a
screen we view), over the call's ``share`` data channel (:mod:`.wire`).

**Sharing.** :meth:`ShareSession.start` runs a command in a pty
(:mod:`.pty_process`) and keeps a :class:`~.terminal.Terminal` of it. Output
is coalesced: at most :data:`FPS` frames a second, each the bytes read since
the last one (one read of the pty's pipe a frame), zlib-compressed; a
plain-text flood is cut to its last screenful and sent at :data:`FLOOD_FPS`.
Each frame's emulation is bounded in time (:data:`TICK_BUDGET`), frames
that cost more come less often (:data:`CPU_SHARE`); what is left waits,
and above :data:`PENDING_MAX` the pty is not read, so the program blocks:
a flood is throttled to what the call can afford, never queued without
bound. A viewer that falls behind (the channel's
``bufferedAmount`` above :data:`BUFFER_HIGH`) gets no more frames until the
buffer drains, then one snapshot of the screen as it is: the latest screen,
not a backlog. The last frame of a share is a snapshot too. An idle program
sends nothing.

**Control.** Read-only by default. Input from the other side reaches the pty
only while we granted control (:meth:`grant`; :meth:`revoke` takes it back);
the grant is ours, kept here, and ends with the share and with the call.
Input sent without a grant is dropped and counted (``input_refused``).

**Viewing.** Frames from the other side feed a terminal of the size they
announced; :meth:`snapshot` reads it as text. The time spent emulating them
is bounded (:data:`VIEW_SHARE` of the loop, :data:`VIEW_FRAME` per frame):
past that, frames are dropped (or cut short) and a snapshot asked for: a
hostile sharer cannot make us emulate without end, whatever its bytes cost.

Nothing here knows the call: changes go out through ``on_change`` (a
:class:`ShareChange`), one-line notices through ``on_notice``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hello_tui.share.limits import MAX_COLS, MAX_ROWS, utf8_cut
from hello_tui.share.pty_process import PtyProcess
from hello_tui.share.wire import (
    MAX_INPUT_CHARS,
    MAX_SCREEN_BYTES,
    SCREEN_BYTES,
    SCREEN_SNAPSHOT,
    Control,
    ShareError,
    decode_control,
    decode_screen,
    encode_control,
    encode_screen,
)
from hello_tui.util.data_channel import ChannelUser
from hello_tui.util.token_bucket import TokenBucket

if TYPE_CHECKING:
    from hello_tui.share.terminal import Terminal

__all__ = ["ShareChange", "ShareError", "ShareSession"]

log = logging.getLogger(__name__)


def _terminal(cols: int, rows: int) -> Terminal:
    # pyte is loaded by the first share, not by every call (docs/media.md, "Memory").
    from hello_tui.share.terminal import Terminal

    return Terminal(cols, rows)


def _view_terminal(cols: int, rows: int) -> Terminal:
    # The viewer's terminal keeps a scroll-back (share/scrollback.py); pyte, as above.
    from hello_tui.share.scrollback import ViewTerminal

    return ViewTerminal(cols, rows)


FPS = 30  # frames a second at most, each way
FLOOD_FPS = 10  # ... while a plain-text flood is cut to its last screenful (none can read it)
TICK_BUDGET = 0.010  # seconds of emulation per frame at most (the call's loop is shared)
PIECE = 1024  # bytes fed to the emulator between two looks at the clock
PENDING_MAX = 256 * 1024  # bytes read but not yet emulated: above this the pty is not read
READ_PER_FRAME = 256 * 1024  # bytes read from the pty between two frames at most (one read)
FRAME_BYTES = 64 * 1024  # terminal bytes a frame carries at most (+ a piece): inflated and
# even incompressible, well inside the wire's bounds (wire.MAX_FRAME_BYTES)
BUFFER_HIGH = 64 * 1024  # the channel's bufferedAmount above which the viewer is "behind"
BUFFER_LOW = 16 * 1024  # ... and below which it gets a snapshot
VIEW_SHARE = 0.25  # seconds of emulation a second a viewer spends at most (burst: twice)
VIEW_FRAME = 0.05  # seconds of emulation one received frame may take at most
INPUT_RATE = 200  # input frames a second from a granted viewer at most (burst: twice)
CPU_SHARE = 0.25  # a frame costing d seconds is followed by one no sooner than d / CPU_SHARE
NOTICE_INTERVAL = 10.0

Side = Literal["local", "remote"]


@dataclass(frozen=True, slots=True)
class ShareChange:
    """``started`` / ``stopped`` (``duration`` seconds) / ``control`` (``granted``).
    ``side``: ``local`` our terminal, ``remote`` theirs."""

    what: Literal["started", "stopped", "control"]
    side: Side
    cols: int = 0
    rows: int = 0
    title: str = ""
    granted: bool = False
    duration: float = 0.0


class ShareSession(ChannelUser):
    def __init__(
        self,
        *,
        on_change: Callable[[ShareChange], None],
        on_notice: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._on_change, self._on_notice, self._clock = on_change, on_notice, clock
        self._closed = False
        # ours
        self._pty: PtyProcess | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._unseen: Terminal | None = None  # a share that ended before the channel opened
        self.local: Terminal | None = None
        self._title = ""
        self._started = 0.0
        self.granted = False  # we let the other side type
        self._on_input: Callable[[str], None] | None = None  # typing, if not into the pty
        self._pending = bytearray()
        self._tick: asyncio.TimerHandle | None = None
        self._last_tick = -math.inf
        self._last_cost = 0.0  # seconds the last frame took: frames slow down when dear
        self._flood = False  # the last frame's bytes were cut (a plain-text flood)
        self._behind = True  # the viewer needs a snapshot (first one included)
        self._finishing = False
        self._input = TokenBucket(INPUT_RATE, 2 * INPUT_RATE, clock)
        # theirs
        self.remote: Terminal | None = None
        self.remote_title = ""
        self._remote_started = 0.0
        self.control = False  # they let us type
        self._view = TokenBucket(VIEW_SHARE, 2 * VIEW_SHARE, clock)
        self._sync_asked = -math.inf
        self._sync_retry: asyncio.TimerHandle | None = None
        self._synced = True  # false after a dropped frame, until the next snapshot
        # The last terminals that stopped: their final screens stay readable.
        self.last_local: Terminal | None = None
        self.last_remote: Terminal | None = None
        # counters (tests, benchmarks)
        self.frames_sent = self.bytes_sent = self.snapshots_sent = 0
        self.frames_received = self.frames_dropped = 0
        self.input_refused = 0
        self._noticed = -math.inf

    # ------------------------------------------------------------ the channel
    def _send(self, frame: str | bytes) -> None:
        if self.open:
            self._channel.send(frame)
            self.bytes_sent += len(frame)

    def _on_open(self) -> None:
        if self.local is not None:  # sharing already: announce it, then a snapshot
            self._announce()
            self._behind = True
            self._schedule()
        elif self._unseen is not None:  # shared and ended before the channel opened
            terminal, self._unseen = self._unseen, None
            start = Control("share-start", terminal.cols, terminal.rows, self._title)
            self._send(encode_control(start))
            self._send_screen(SCREEN_SNAPSHOT, terminal.snapshot(MAX_SCREEN_BYTES))
            self._send(encode_control(Control("share-stop")))

    def _announce(self) -> None:
        assert self.local is not None
        start = Control("share-start", self.local.cols, self.local.rows, self._title)
        self._send(encode_control(start))
        if self.granted:
            self._send(encode_control(Control("share-grant")))

    # ------------------------------------------------------------ sharing
    @property
    def sharing(self) -> bool:
        return self.local is not None

    async def start(
        self,
        argv: Sequence[str],
        *,
        cols: int = 80,
        rows: int = 24,
        title: str = "",
        on_input: Callable[[str], None] | None = None,
    ) -> None:
        """Share ``argv`` running in a new ``cols`` x ``rows`` pty. ``on_input(text)``,
        if given, types instead of the pty (a tmux pane: its client is read-only);
        the grant gate is the same."""
        if self._closed:
            raise ShareError("the call is over")
        if self._unavailable:
            raise ShareError(f"no sharing in this call: {self._unavailable}")
        if self.local is not None:
            raise ShareError("already sharing: stop first")
        if not (1 <= cols <= MAX_COLS and 1 <= rows <= MAX_ROWS):
            raise ShareError(f"a shared terminal is 1-{MAX_COLS} x 1-{MAX_ROWS}")
        pty = PtyProcess(self._on_pty_data, self._on_pty_eof)
        pty.read_bytes = READ_PER_FRAME
        terminal = _terminal(cols, rows)
        self._pty, self.local = pty, terminal  # before spawn: output may come at once
        self._title = title or " ".join(argv)
        self._pending.clear()
        self._finishing = False
        self.granted = False
        self._on_input = on_input
        self._unseen = None
        try:
            await pty.spawn(argv, cols, rows)
        except ShareError:
            self._pty = self.local = None
            raise
        if self._closed:
            await pty.close()
            raise ShareError("the call is over")
        self._started = self._clock()
        self._behind = True
        self._announce()
        self._on_change(ShareChange("started", "local", cols, rows, self._title))

    async def stop(self) -> None:
        """Stop sharing now: the program is hung up, the viewer told, the grant ends."""
        if self._pty is None:
            raise ShareError("not sharing")
        pty = self._pty
        self._finish()
        await pty.close()

    def _finish(self) -> None:
        if self._pty is None or self.local is None:
            return
        pty, self._pty = self._pty, None
        if self._tick is not None:
            self._tick.cancel()
            self._tick = None
        pty.pause()
        if pty.eof:  # the program ended by itself: close the pty once it is reaped
            task = asyncio.get_running_loop().create_task(pty.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        local, self.local = self.local, None
        if self.open:
            # The last screen as it is, whatever came before: a viewer that fell
            # behind or cut a frame short (its budget) ends on the right screen.
            self._send_screen(SCREEN_SNAPSHOT, local.snapshot(MAX_SCREEN_BYTES))
            self._send(encode_control(Control("share-stop")))
        elif not self._closed:
            self._unseen = local
        was_granted, self.granted = self.granted, False
        if was_granted:
            self._on_change(ShareChange("control", "local", granted=False))
        duration = round(self._clock() - self._started, 3)
        self._on_change(
            ShareChange("stopped", "local", local.cols, local.rows, self._title, duration=duration)
        )
        self.last_local = local  # its final screen stays readable (share-snapshot)

    def grant(self) -> None:
        """Let the other side type into our shared terminal."""
        self._set_grant(True)

    def revoke(self) -> None:
        """Take control back: input from the other side is dropped from now on."""
        self._set_grant(False)

    def _set_grant(self, granted: bool) -> None:
        if self.local is None:
            raise ShareError("not sharing")
        if self.granted == granted:
            return
        self.granted = granted
        self._send(encode_control(Control("share-grant" if granted else "share-revoke")))
        self._on_change(ShareChange("control", "local", granted=granted))

    def _on_pty_data(self, data: bytes) -> None:
        self._pending += data
        if self._pty is not None:
            # One read a frame (up to READ_PER_FRAME): the next comes after the
            # frame; meanwhile the pump's pipe fills and the program blocks.
            self._pty.pause()
        self._schedule()

    def _on_pty_eof(self) -> None:
        self._finishing = True
        self._schedule()

    def _schedule(self) -> None:
        if self._tick is None and self._pty is not None:
            loop = asyncio.get_running_loop()
            fps = FLOOD_FPS if self._flood else FPS
            spacing = max(1.0 / fps, self._last_cost / CPU_SHARE)
            delay = max(0.0, self._last_tick + spacing - self._clock())
            self._tick = loop.call_later(delay, self._run_tick)

    def _run_tick(self) -> None:
        self._tick = None
        self._last_tick = self._clock()
        try:
            self._frame()
        except Exception:  # never let a frame break the call
            log.exception("share: a frame failed")
        self._last_cost = self._clock() - self._last_tick

    def _emulate(self) -> bytes:
        """Feed what the pty gave to our terminal, for at most TICK_BUDGET; what was fed."""
        terminal = self.local
        assert terminal is not None
        work = bytes(self._pending)
        self._pending.clear()
        prefix, skip = terminal.plain_cut(work)
        self._flood = skip > 0
        work = prefix + work[skip:]
        deadline = self._clock() + TICK_BUDGET
        pos = 0
        while pos < len(work) and pos < FRAME_BYTES:
            end = min(pos + PIECE, len(work))
            if end < len(work):
                end = pos + (utf8_cut(work[pos:end]) or end - pos)
            terminal.feed(work[pos:end])
            pos = end
            if self._clock() > deadline:
                break
        self._pending[:0] = work[pos:]
        return work[:pos]

    def _frame(self) -> None:
        if self.local is None or self._pty is None:
            return
        fed = self._emulate() if self._pending else b""
        channel = self._channel
        if self.open:
            buffered = channel.bufferedAmount
            if buffered > BUFFER_HIGH:
                self._behind = True
            if self._behind:
                if buffered <= BUFFER_LOW and self.local.idle:
                    self._send_screen(SCREEN_SNAPSHOT, self.local.snapshot(MAX_SCREEN_BYTES))
                    self._behind = False
            elif fed:
                self._send_screen(SCREEN_BYTES, fed)
        elif fed:
            self._behind = True  # no viewer yet: it gets a snapshot when the channel opens
        if len(self._pending) < PENDING_MAX // 2 and self._pty is not None:
            self._pty.resume()
        if self._pending or (self._behind and self.open):
            self._schedule()
        elif self._finishing:
            self._finish()

    def _send_screen(self, kind: int, data: bytes) -> None:
        self._send(encode_screen(kind, data))
        self.frames_sent += 1
        self.snapshots_sent += kind == SCREEN_SNAPSHOT

    # ------------------------------------------------------------ input
    def send_input(self, data: str) -> None:
        """Type ``data``: into our own shared terminal, else theirs if they granted us control."""
        if not data or len(data) > MAX_INPUT_CHARS:
            raise ShareError(f"input must be 1-{MAX_INPUT_CHARS} characters")
        if self._pty is not None:
            self._type(data)
            return
        if self.remote is None:
            raise ShareError("no shared terminal to type into")
        if not self.control:
            raise ShareError("the other side has not given you control")
        self._send(encode_control(Control("share-input", data=data)))

    def _remote_input(self, data: str) -> None:
        if self._pty is None or not self.granted or not self._input.take():
            self.input_refused += 1
            self._notice("input from the other side was ignored (no control granted)")
            return
        self._type(data)

    def _type(self, data: str) -> None:
        if self._on_input is not None:
            self._on_input(data)
        elif self._pty is not None:
            self._pty.write(data.encode("utf-8", "replace"))

    # ------------------------------------------------------------ receiving
    def _receive(self, data: Any) -> None:
        try:
            if isinstance(data, bytes):
                self._receive_screen(data)
                return
            if not isinstance(data, str):
                raise ShareError("not a frame")
            control = decode_control(data)
        except ShareError as exc:
            self.frames_dropped += 1
            self._notice(f"a share frame from the other side was dropped ({exc})")
            return
        if control is None:
            return
        self._control(control)

    def _control(self, control: Control) -> None:
        match control.type:
            case "share-start":
                if self.remote is not None:
                    self._remote_stopped()
                self.remote = _view_terminal(control.cols, control.rows)  # with scroll-back
                self.remote_title = control.title
                self._remote_started = self._clock()
                self.control = False
                self._on_change(
                    ShareChange("started", "remote", control.cols, control.rows, control.title)
                )
            case "share-stop" if self.remote is not None:
                self._remote_stopped()
            case "share-grant" | "share-revoke" if self.remote is not None:
                granted = control.type == "share-grant"
                if self.control != granted:
                    self.control = granted
                    self._on_change(ShareChange("control", "remote", granted=granted))
            case "share-input":
                self._remote_input(control.data)
            case "share-sync" if self.local is not None:
                self._behind = True
                self._schedule()
            case _:
                log.debug("share: ignoring %s", control.type)

    def _remote_stopped(self) -> None:
        remote = self.remote
        assert remote is not None
        if self.control:
            self.control = False
            self._on_change(ShareChange("control", "remote", granted=False))
        duration = round(self._clock() - self._remote_started, 3)
        self._on_change(
            ShareChange(
                "stopped", "remote", remote.cols, remote.rows, self.remote_title, duration=duration
            )
        )
        self.last_remote = remote
        self.remote = None

    def _receive_screen(self, frame: bytes) -> None:
        if self.remote is None:
            raise ShareError("a screen frame while nothing is shared")
        kind, data = decode_screen(frame)
        self.frames_received += 1
        if kind == SCREEN_BYTES and not self._synced:
            self.frames_dropped += 1  # bytes after a drop: meaningless until a snapshot
            self._ask_sync()
            return
        if not self._view.spend(0.0):
            self._too_much()
            return
        if kind == SCREEN_SNAPSHOT:
            self.remote.reset()
            self._synced = True
        start = self._clock()
        for pos in range(0, len(data), PIECE * 4):
            self.remote.feed(data[pos : pos + PIECE * 4])
            if self._clock() - start > VIEW_FRAME and pos + PIECE * 4 < len(data):
                self._too_much()  # cut short: the screen is wrong until a snapshot
                break
        self._view.spend(self._clock() - start)

    def _too_much(self) -> None:
        self.frames_dropped += 1
        self._notice("the shared terminal sends too much: frames dropped, asking for a resync")
        self._ask_sync()

    def _ask_sync(self) -> None:
        # At most one ask a second; one that falls inside that second is sent at
        # its end instead, so a snapshot dropped in turn (over budget, or lost to
        # a sharer that missed the ask) cannot leave the view stuck unsynced.
        self._synced = False
        now = self._clock()
        wait = self._sync_asked + 1.0 - now
        if wait <= 0:
            self._sync_asked = now
            self._send(encode_control(Control("share-sync")))
        elif self._sync_retry is None and not self._closed:
            self._sync_retry = asyncio.get_running_loop().call_later(wait, self._retry_sync)

    def _retry_sync(self) -> None:
        self._sync_retry = None
        if not self._synced and self.remote is not None and not self._closed:
            self._sync_asked = self._clock()  # the second has passed on the loop
            self._send(encode_control(Control("share-sync")))

    # ------------------------------------------------------------ reading screens
    def snapshot(self, side: Side | None = None) -> tuple[Side, Terminal]:
        """The terminal to read: ``remote`` (theirs, the last one if it stopped) or
        ``local``; by default theirs if they share, else ours."""
        remote = self.remote or self.last_remote
        local = self.local or self.last_local
        if side is None:
            side = "remote" if self.remote is not None or local is None else "local"
        terminal = remote if side == "remote" else local
        if terminal is None:
            raise ShareError("no shared terminal to read")
        return side, terminal

    # ------------------------------------------------------------ the end
    async def close(self) -> None:
        """The call ended: our program is hung up, every grant ends."""
        self._closed = True
        if self._sync_retry is not None:
            self._sync_retry.cancel()
            self._sync_retry = None
        pty = self._pty
        if pty is not None:
            self._finish()
            await pty.close()
        if self.remote is not None:
            self._remote_stopped()
        self._channel = None

    def _notice(self, text: str) -> None:
        now = self._clock()
        if now - self._noticed >= NOTICE_INTERVAL:
            self._noticed = now
            self._on_notice(text)
