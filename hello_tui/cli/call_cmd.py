"""``hello-tui call``, ``hello-tui answer`` and ``hello-tui join``: scripted calls.

Built for scripts: no TTY needed, one event per line on stdout (human text,
or JSON with ``--json``, flushed at once), an exit code that says how the
call went (:data:`EXIT_CODES`). SIGINT and SIGTERM hang up cleanly: the
other side sees ``hangup`` (``cancel`` before an answer).

With ``--json``, stdin steers the call: one JSON command a line
(:mod:`hello_tui.call.commands`: chat, mute, unmute, camera, hangup, share-*); a bad
line is an ``error`` event and the call goes on; stdin closing changes
nothing. Without ``--json`` stdin is never read during the call.

Quality: on a terminal, one live line (``render_line``) rewritten in place
every second and cleared at the end; with ``--json`` every sample is a
``quality`` event; the ``ended`` event carries the call's quality summary.

Telemetry (docs/telemetry.md): off unless ``[telemetry] enabled``; asked
once on the first interactive run; ``--no-telemetry`` for one run. Reports
are queued locally after the call and sent for at most a few seconds once
the call is over (what is not sent goes on the next run). ``--feedback`` (or
a one-key question on a terminal) answers "How was your conversation?".
Only with a server to send to: the embedded default gets nothing.

Module level: stdlib and hello_tui.cli only (the parser imports this module
for ``--help``); aiortc, aiohttp and the call engine load inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from hello_tui.cli.account_cmd import context, has_account, server_option
from hello_tui.cli.errors import CliError
from hello_tui.util.display import printable

if TYPE_CHECKING:
    from hello_tui.call import events as ev
    from hello_tui.call.engine import Call
    from hello_tui.cli.context import Context
    from hello_tui.media.sinks import SinkStats
    from hello_tui.session.connect import Session

CLI_RECONNECT_CAP = 2.0  # seconds: the longest wait between two reconnect attempts

# ---------------------------------------------------------------- exit codes
OK, ERROR, USAGE, UNREACHABLE, REFUSED, NO_ANSWER, MEDIA_FAIL, INTERRUPTED = (
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    130,
)

EXIT_CODES = """\
exit codes:
  0    the call completed (connected, then hung up by either side)
  1    other error (bad file, bad config, ...); one line on stderr
  2    usage error
  3    server unreachable, unknown user, user unavailable, unknown or expired room
  4    busy or rejected (room full counts as busy)
  5    no answer (ringing timed out, or --timeout expired)
  6    media failure (ICE/DTLS did not connect, or the connection was lost mid-call)
  130  interrupted (SIGINT/SIGTERM) before the call connected
"""

_BY_REASON = {
    "hangup": OK,
    "answered-elsewhere": OK,
    "unreachable": UNREACHABLE,
    "user-unknown": UNREACHABLE,
    "unavailable": UNREACHABLE,
    "busy": REFUSED,
    "rejected": REFUSED,
    "timeout": NO_ANSWER,
    "setup-timeout": NO_ANSWER,
    "media-fail": MEDIA_FAIL,
}


def exit_code(
    reason: str, stage: str, *, interrupted: bool = False, timed_out: bool = False
) -> int:
    """The documented exit code for a call that ended with ``reason`` at ``stage``."""
    if timed_out and stage != "connected":
        return NO_ANSWER
    if stage == "connected" and reason in ("hangup", "closed", "cancel"):
        return OK
    if interrupted and reason == "cancel":
        return INTERRUPTED
    return _BY_REASON.get(reason, ERROR)


# ---------------------------------------------------------------- arguments
def _media_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--audio-in",
        metavar="SRC",
        help="what to send: device:[NAME], file:PATH, sine:HZ, null: (default: [audio] input)",
    )
    p.add_argument(
        "--audio-out",
        metavar="SINK",
        help="where to play: device:[NAME], file:PATH.wav, null: (default: [audio] output)",
    )
    p.add_argument(
        "--video",
        nargs="?",
        const="",
        default=None,
        metavar="SRC",
        help="a video call: camera:INDEX, pattern: (a test picture) or null: (receive only); "
        "without SRC, [video] source. Write --video=SRC before TARGET (default: audio only, "
        "or [video] source when [video] enabled = true)",
    )
    p.add_argument(
        "--video-out",
        metavar="SINK",
        help="record the received video: file:PATH.y4m or file:PATH.mp4",
    )
    p.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="hang up after SECONDS of media (default: until the far side hangs up, "
        "or the --audio-in file has been sent)",
    )
    for stage, what in (("aec", "echo cancellation"), ("noise-suppression", "noise suppression"),
                        ("auto-gain", "automatic gain")):  # fmt: skip
        p.add_argument(
            f"--no-{stage}",
            action="store_true",
            help=f"no {what} on a device: input this time (default: [audio] "
            f"{stage.replace('-', '_')})",
        )
    p.add_argument(
        "--aec-tuning",
        choices=("tuned", "default"),
        help="AEC3's config this time: ours (when its shim is built) or pywebrtc-audio's "
        "default (default: [audio] echo_tuning)",
    )
    p.add_argument("--json", action="store_true", help="JSON lines on stdout, one per event")
    share = p.add_mutually_exclusive_group()
    share.add_argument(
        "--share",
        metavar="CMD",
        help="share a terminal running CMD once connected (read-only for the other side; "
        'grant control with {"cmd": "share-grant"} on stdin with --json)',
    )
    share.add_argument("--share-shell", action="store_true", help="share a terminal running $SHELL")
    share.add_argument(
        "--share-tmux",
        metavar="PANE",
        help="share a tmux pane (e.g. %%3 or work:1.0), read-only for the other side",
    )
    p.add_argument(
        "--share-size",
        metavar="COLSxROWS",
        default=None,
        help="the shared terminal's size (default: 80x24; a tmux pane: its window's)",
    )
    p.add_argument(
        "--sounds",
        action="store_true",
        help="call sounds as [sounds] says (connecting, connected, failed, joined, left, "
        "message) on the output device, else the terminal bell (default: silent)",
    )
    p.add_argument(
        "--no-telemetry",
        action="store_true",
        help="send no call report this time (see 'hello-tui privacy')",
    )
    p.add_argument(
        "--feedback",
        metavar="RATING",
        help="how the call went, sent to the server after it: happy, or sad[:REASON,...] "
        "(audio-quality, video-quality, disconnected, confusing-controls, setup-slow, other)",
    )
    server_option(p)


def _epilog(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EXIT_CODES


def args_call(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "target",
        metavar="TARGET",
        help="an account name, a contact (name or e-mail), a room URL, or 'echo'",
    )
    _media_options(p)
    p.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="stop ringing after SECONDS (exit 5)"
    )
    _epilog(p)


def args_answer(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--auto",
        nargs="?",
        type=float,
        const=0.0,
        default=None,
        metavar="DELAY",
        help="accept every call (after DELAY seconds) and join your rooms when someone "
        "waits in one; without it calls just ring",
    )
    p.add_argument(
        "--from",
        dest="allow",
        action="append",
        default=[],
        metavar="NAME",
        help="accept only these callers (repeatable); others are refused as busy",
    )
    p.add_argument("--once", action="store_true", help="exit after the first call")
    p.add_argument(
        "--admit",
        choices=("all", "none"),
        default=None,
        help="in a knock-to-enter room you are in: let every visitor in, or turn every "
        "one away (default with --auto: all; else knocks are only printed)",
    )
    _media_options(p)
    _epilog(p)


def args_join(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", metavar="URL", help="the room's URL (…/r/TOKEN#k=KEY) or token")
    _media_options(p)
    _epilog(p)


# ---------------------------------------------------------------- printing
class Printer:
    """Events as human lines or JSON lines, flushed one by one. Quality samples:
    every one with ``--json``; on a terminal, one line rewritten in place."""

    def __init__(self, as_json: bool, live: bool | None = None) -> None:
        self.as_json = as_json
        self.live = (not as_json and _isatty(sys.stdout)) if live is None else live
        self._live_shown = False

    def _write(self, text: str) -> None:
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:  # a closed pipe must not turn a good call into a crash
            pass

    def clear_live(self) -> None:
        if self._live_shown:
            self._live_shown = False
            self._write("\r\x1b[K")

    def line(self, data: dict[str, Any], text: str) -> None:
        if self.as_json:
            from hello_tui.call.events import json_line

            self._write(json_line(data))
        else:  # one line each: a name's newline or ESC is shown, not obeyed
            self.clear_live()
            self._write(printable(text) + "\n")

    def event(self, event: ev.CallEvent) -> None:
        from hello_tui.call import events as ev

        if isinstance(event, ev.Quality):
            if self.as_json:
                self.line(event.to_json(), "")
            elif self.live:
                self._live(event.sample)
            return
        self.line(event.to_json(), self.human(event))
        if isinstance(event, ev.Ended) and not self.as_json:
            quality = event.quality
            if quality is not None and quality.samples:
                self.line({}, summary_line(quality))

    def _live(self, sample: Any) -> None:
        import shutil

        from hello_tui.quality.render import render_line

        encoding = (getattr(sys.stdout, "encoding", "") or "").lower().replace("-", "")
        text = render_line(sample, ascii_only=encoding != "utf8")
        width = shutil.get_terminal_size((100, 24)).columns - 1
        self._live_shown = True
        self._write("\r" + text[: max(width, 10)] + "\x1b[K")

    @staticmethod
    def human(event: ev.CallEvent) -> str:
        from hello_tui.call import events as ev

        match event:
            case ev.Dialing(to=to, room=room):
                return f"Joining room {to}" if room else f"Calling {to}..."
            case ev.Incoming(caller=caller):
                return f"Incoming call from {caller or 'an anonymous caller'}"
            case ev.Ringing():
                return "Ringing..."
            case ev.Waiting():
                return "In the room, waiting for someone to join..."
            case ev.Connecting():
                return "Connecting..."
            case ev.Connected():
                return "Connected, encrypted (DTLS-SRTP). Check code: waiting..."
            case ev.CheckCode() | ev.Identity() | ev.Ended():
                return event.line()
            case ev.MediaFlowing(setup_ms=setup_ms):
                return f"Audio flowing ({setup_ms:.0f} ms after dialing)"
            case ev.Notice(text=text):
                return f"Note: {text}"
            case ev.CameraOn():
                return "Camera on"
            case ev.CameraOff():
                return "Camera off"
            case ev.Muted():
                return "Muted"
            case ev.Unmuted():
                return "Unmuted"
            case ev.RoomEntered(name=name, description=description, url=url):
                parts = [f"Room: {name}" if name else "Room (name unknown: no key in the URL)"]
                parts += [f"About: {description}"] * bool(description)
                parts += [f"Link (not opened): {url}"] * bool(url)
                return " · ".join(parts)
            case ev.PeerName(name=name):
                return f"In the room: {name}"
            case (
                ev.ChatMessage()
                | ev.ServerLost()
                | ev.ServerBack()
                | ev.MediaResumed()
                | ev.ShareStarted()
                | ev.ShareStopped()
                | ev.ShareControl()
            ):
                return event.line()
            case ev.Knocking(owner_present=present):
                if present:
                    return "Knocking: waiting for the room's owner to let you in..."
                return "Knocking: the room's owner is not here yet; they were told you are waiting"
            case ev.Admitted():
                return "Let in by the room's owner"
            case ev.Declined(reason=reason):
                return {
                    "declined": "Not let in: the room's owner declined",
                    "timeout": "Not let in: nobody answered your knock in time",
                }.get(reason, "Not let in: the room was closed")
            case ev.Knock(name=name):
                return f"{name or 'Someone'} is knocking at your room"
            case ev.KnockEnded(reason=reason):
                return f"A knock ended: {reason}"
            case ev.Reconnecting(cause="network-change"):
                return "The network changed: reconnecting..."
            case ev.Reconnecting():
                return "No audio from the other side: reconnecting..."
            case ev.ShareSnapshot(side=side, text=text):
                rows = "\n".join("  " + printable(row) for row in text.split("\n"))
                return f"{'Your' if side == 'local' else 'Their'} shared terminal:\n{rows}"
            case ev.AudioDeviceChanged() | ev.MutedSpeech():
                return event.line()
        return event.kind

    def stats(self, call: Call, code: int, hint: dict[str, Any] | None = None) -> None:
        self.clear_live()
        sink = call.sink.stats() if call.sink is not None else None
        ended = call.ended
        data = {
            "kind": "stats",
            "call_id": call.call_id,
            "reason": ended.reason if ended else "",
            "exit_code": code,
            "duration": ended.duration if ended else 0.0,
            "setup_ms": call.flowing_ms,
            "sas": call.sas,
            "check": call.check_status,
            "identity": call.identity.status if call.identity is not None else None,
            "frames_received": sink.frames if sink else 0,
            "samples_received": sink.samples if sink else 0,
            "video_frames_received": call.remote_video.frames if call.remote_video else 0,
            "longest_audio_gap_ms": call.longest_gap_ms,
            # A call that did not connect: try again, or share a link (drive's recovery_hint).
            "recovery": {k: v for k, v in hint.items() if k != "line"} if hint else None,
            # A device sink's playout at the end (benchmarks read where its target went).
            "playout": _playout(sink),
        }
        if self.as_json:
            self.line(data, "")


def _playout(sink: SinkStats | None) -> dict[str, Any] | None:
    if sink is None or not sink.latency_ms:
        return None  # no playout buffer (null:, file:)
    return {
        "buffer_ms": sink.buffer_ms,
        "target_ms": sink.target_ms,
        "card_ms": sink.latency_ms,
        "underruns": sink.underruns,
        "card_underruns": sink.card_underruns,
    }


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def summary_line(q: Any) -> str:
    """The end-of-call quality summary, for humans."""

    def ms(p50: float | None, p95: float | None) -> str:
        if p50 is None:
            return "–"
        return f"{p50:.0f} ms (p95 {p95:.0f})" if p95 is not None else f"{p50:.0f} ms"

    loss50 = (q.fraction_lost_p50 or 0.0) * 100
    loss95 = (q.fraction_lost_p95 or 0.0) * 100
    mos = "–" if q.mos_mean is None else f"{q.mos_mean:.1f} (min {q.mos_min:.1f})"
    rtt, jitter = ms(q.rtt_ms_p50, q.rtt_ms_p95), ms(q.jitter_ms_p50, q.jitter_ms_p95)
    return (
        f"Quality: RTT {rtt}, jitter {jitter}, loss {loss50:.1f} % (p95 {loss95:.1f}), "
        f"MOS {mos}; {q.samples} samples"
    )


# ---------------------------------------------------------------- steering
def read_lines(fd: int, post: Any) -> None:
    """Post each line read from ``fd`` (raw reads: a daemon thread blocked here
    holds no lock at exit), a one-line complaint for a line too long, until EOF."""
    import os

    from hello_tui.call.commands import MAX_LINE_BYTES

    too_long = f"command line too long (at most {MAX_LINE_BYTES} bytes)"
    buf, skipping = b"", False  # skipping: the rest of a line already refused
    while chunk := os.read(fd, 65536):
        buf += chunk
        while (end := buf.find(b"\n")) >= 0:
            line, buf = buf[: end + 1], buf[end + 1 :]
            if not skipping:
                post(line if len(line) <= MAX_LINE_BYTES else too_long)
            skipping = False
        if len(buf) > MAX_LINE_BYTES:
            if not skipping:
                post(too_long)
            buf, skipping = b"", True
    if buf and not skipping:
        post(buf)


class Steering:
    """``--json``: the commands on stdin (one JSON object a line), applied to the
    call in progress (``steering.call``); each refused line prints an ``error``
    event. A daemon thread reads stdin (any kind: pipe, file, terminal), so
    nothing waits for it at exit; end of input stops reading, nothing else."""

    def __init__(self, printer: Printer, fd: int | None = None) -> None:
        self.printer = printer
        self.call: Call | None = None
        self._fd = fd
        self._consumer: Any = None

    def start(self) -> None:
        import asyncio
        import contextlib
        import threading

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | str | None] = asyncio.Queue()

        def post(item: bytes | str | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: the run is over
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def read() -> None:
            try:
                fd = sys.stdin.fileno() if self._fd is None else self._fd
                read_lines(fd, post)
            except (OSError, ValueError):  # no usable stdin: nothing to steer with
                pass
            post(None)

        threading.Thread(target=read, daemon=True, name="hello-tui-commands").start()
        self._consumer = loop.create_task(self._consume(queue))

    async def _consume(self, queue: Any) -> None:
        from hello_tui.call.commands import CommandError, parse_command, run_command

        while (line := await queue.get()) is not None:
            try:
                if isinstance(line, str):
                    raise CommandError(line)
                if not line.strip():
                    continue
                command = parse_command(line)
                if self.call is None or self.call.ended is not None:
                    raise CommandError("no call in progress")
                await run_command(self.call, command)
            except CommandError as exc:
                self.printer.line(exc.to_json(), f"error: {exc}")

    async def stop(self) -> None:
        import asyncio
        import contextlib

        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer


# ---------------------------------------------------------------- telemetry
FLUSH_SECONDS = 3.0  # after the call: how long the process may spend sending reports
FEEDBACK_KEYS = {"a": "audio-quality", "v": "video-quality", "d": "disconnected",
                 "c": "confusing-controls", "s": "setup-slow", "o": "other"}  # fmt: skip


def _read_key(prompt: str) -> str:
    """Show ``prompt`` and read one key (no Enter needed); "" on Enter. Keys typed
    during the call are discarded first (they answer nothing)."""
    import os
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSAFLUSH)  # flushes pending input
        sys.stdout.write(prompt)
        sys.stdout.flush()
        key = os.read(fd, 1).decode(errors="ignore")
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
    return "" if key in ("\r", "\n") else key.lower()


def ask_feedback(read_key: Any = _read_key, out: Any = None) -> tuple[str, list[str]] | None:
    """The question "How was your conversation?": one key; then, if sad, one for why."""
    out = out or sys.stdout
    key = read_key("How was your conversation? [h]appy [s]ad [enter] skip ")
    if key not in ("h", "s"):
        out.write("\n")
        return None
    if key == "h":
        out.write("happy\n")
        return "happy", []
    out.write("sad\n")
    why = "What went wrong? [a]udio [v]ideo [d]isconnected [c]ontrols [s]low setup [o]ther "
    reason = FEEDBACK_KEYS.get(read_key(why + "[enter] skip "))
    out.write((reason or "") + "\n")
    return "sad", [reason] if reason else []


class Telemetry:
    """This run's telemetry: whether it is on, where reports go, what is queued.

    Nothing here may break or delay a call: every step swallows its errors
    (logged at debug level) and sending happens after the call, bounded."""

    def __init__(self, ctx: Context, args: argparse.Namespace, server_url: str) -> None:
        from hello_tui.telemetry.report import parse_feedback
        from hello_tui.telemetry.store import TelemetryStore

        self.ctx = ctx
        self.args = args
        self.server_url = server_url  # "" for the embedded server: nothing is sent
        self.store = TelemetryStore(ctx.paths.data_dir)
        self.interactive = not args.json and _isatty(sys.stdin) and _isatty(sys.stdout)
        self.settings = ctx.settings  # after the first-run question, if asked
        self.feedback: tuple[str, list[str]] | None = None
        if getattr(args, "feedback", None):
            if args.no_telemetry:
                raise CliError("--feedback sends a report; --no-telemetry sends none: pick one")
            try:
                self.feedback = parse_feedback(args.feedback)
            except ValueError as exc:
                raise CliError(str(exc)) from None

    def _url(self, kind: str) -> str:
        from hello_tui.telemetry.sender import endpoint

        return endpoint(self.server_url, kind)

    def before(self) -> None:
        """The first-run question (interactive only), then decide for this run."""
        if not self.server_url or self.args.no_telemetry:
            return  # nothing to send to, or nothing to send this time
        settings = self.ctx.settings
        try:
            from hello_tui.telemetry.consent import enforce_off, first_run

            settings = first_run(
                settings,
                self.ctx.paths.config_file,
                self.store,
                interactive=self.interactive,
                stdin=sys.stdin,
                stdout=sys.stdout,
            )
            enforce_off(self.store, settings)
            if self.interactive:
                self._offer_crashes()
        except (OSError, ValueError) as exc:
            print(f"hello-tui: note: telemetry: {exc}", file=sys.stderr)
        self.settings = settings

    def _offer_crashes(self) -> None:
        crashes = self.store.crashes()
        if not crashes:
            return
        sys.stdout.write(
            f"{len(crashes)} crash report(s) saved in {self.store.crash_dir} "
            "('hello-tui privacy crashes list' shows them).\n"
            f"Send them to {self._url('crash')}? [y/N] "
        )
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() in ("y", "yes"):
            queue_crashes(self.store, self._url("crash"))

    def after_call(self, call: Call) -> None:
        """Queue this call's report (if on) and the --feedback answer (if any)."""
        from hello_tui.telemetry.after_call import queue_call_report

        queue_call_report(
            self.store, call, self.settings, self.server_url, opted_out=self.args.no_telemetry
        )
        try:
            if self.feedback is not None:
                self.send_feedback(*self.feedback)
        except Exception as exc:
            import logging

            logging.getLogger(__name__).debug("telemetry: no report: %r", exc)

    def ask_feedback(self, call: Call) -> None:
        """On a terminal, after a call that connected: the one-key question."""
        if (
            self.feedback is not None
            or not self.interactive
            or not self.server_url
            or call.ended is None
            or call.ended.stage != "connected"
        ):
            return
        try:
            answer = ask_feedback()
        except (OSError, ImportError, ValueError):  # not a real terminal after all
            return
        if answer is not None:
            self.send_feedback(*answer)

    def send_feedback(self, rating: str, reasons: list[str]) -> None:
        if not self.server_url:
            return
        from hello_tui.telemetry.feedback import queue_feedback

        queue_feedback(self.store, self.server_url, rating, reasons)

    async def flush(self) -> None:
        """Send what is queued (this run's bodies and earlier leftovers), bounded in
        time; what is not sent stays queued for the next run."""
        if self.args.no_telemetry or not self.server_url or not self.store.queued():
            return
        from hello_tui.telemetry.sender import flush_for

        await flush_for(self.store, FLUSH_SECONDS)

    def flush_now(self) -> None:
        """:meth:`flush` in its own event loop, once the call's loop is over."""
        import asyncio

        try:
            asyncio.run(self.flush())
        except Exception as exc:
            import logging

            logging.getLogger(__name__).debug("telemetry: flush failed: %r", exc)


def queue_crashes(store: Any, url: str) -> int:
    """Move saved crash reports into the send queue (the user said yes)."""
    n = 0
    for path in store.crashes():
        store.enqueue("crash", url, path.read_text(encoding="utf-8").strip())
        path.unlink(missing_ok=True)
        n += 1
    return n


# ---------------------------------------------------------------- shared engine
def _settings_audio(ctx: Context, args: argparse.Namespace) -> tuple[str, str]:
    audio = ctx.settings.audio
    return args.audio_in or audio.input, args.audio_out or audio.output


def _settings_processing(ctx: Context, args: argparse.Namespace) -> Any:
    """The settings with --no-aec / --no-noise-suppression / --no-auto-gain / --aec-tuning
    applied."""
    import msgspec

    audio = ctx.settings.audio
    off: dict[str, Any] = {key: False for key in ("aec", "noise_suppression", "auto_gain")
                           if getattr(args, f"no_{key}", False)}  # fmt: skip
    if getattr(args, "aec_tuning", None):
        off["echo_tuning"] = args.aec_tuning
    if not off:
        return ctx.settings
    return msgspec.structs.replace(ctx.settings, audio=msgspec.structs.replace(audio, **off))


def _settings_video(ctx: Context, args: argparse.Namespace) -> str | None:
    """The video source of this run: ``--video[=SRC]``, else [video] when enabled, else None."""
    video = ctx.settings.video
    if args.video is None:
        return video.source if video.enabled else None
    return args.video or video.source


def _check_endpoints(audio_in: str, audio_out: str) -> None:
    from hello_tui.media.endpoint import EndpointError, parse_endpoint

    try:
        source = parse_endpoint(audio_in, "audio-source")
        parse_endpoint(audio_out, "audio-sink")
    except EndpointError as exc:
        raise CliError(str(exc)) from None
    if source.kind == "file":  # before dialling, not as a failed call
        import os

        path = os.path.expanduser(source.arg)
        if not os.path.isfile(path):
            raise CliError(f"audio input {audio_in}: no such file")
        if not os.access(path, os.R_OK):
            raise CliError(f"audio input {audio_in}: not readable")


def _check_video(ctx: Context, args: argparse.Namespace) -> None:
    from hello_tui.media.endpoint import EndpointError, parse_endpoint

    source = _settings_video(ctx, args)
    try:
        if source is not None:
            parse_endpoint(source, "video-source")
    except EndpointError as exc:
        raise CliError(f"--video: {exc}") from None
    out = args.video_out
    if out is not None:
        path = out.removeprefix("file:")
        if not out.startswith("file:") or not path.lower().endswith((".y4m", ".mp4")):
            raise CliError(f"--video-out {out!r}: expected file:PATH.y4m or file:PATH.mp4")
        if source is None:
            raise CliError("--video-out records received video: add --video")


def _audio_only(ctx: Context, args: argparse.Namespace) -> None:
    """An audio-only call loads no PyAV (FFmpeg): its stand-in goes in before
    anything imports aiortc (media/av_standin.py; not with video or a file: endpoint)."""
    from hello_tui.media.av_standin import audio_only_call

    ends = (*_settings_audio(ctx, args), ctx.settings.sounds.output)
    audio_only_call(ends, _settings_video(ctx, args))


def _session(
    ctx: Context, args: argparse.Namespace, *, login: bool | None, callers: Any = None
) -> Session:
    """This run's connection (hello_tui.session): --server or [server] url, else
    the embedded server; media from the options, else the config. A dropped server
    is reconnected to (backoff, jitter): a connected call outlives it."""
    from hello_tui.session.connect import Session
    from hello_tui.signaling.client import ReconnectPolicy

    audio_in, audio_out = _settings_audio(ctx, args)
    session = Session(
        ctx.paths,
        _settings_processing(ctx, args),
        server_url=getattr(args, "server", None),
        login=login,
        audio_in=audio_in,
        audio_out=audio_out,
        video_source=_settings_video(ctx, args),
        video_out=args.video_out,
        callers=callers,
        face=args._handler.rpartition(":cmd_")[2] if hasattr(args, "_handler") else "",
        reconnect=True,
        # A call in progress wants its server back soon: full jitter, capped at 2 s.
        policy=ReconnectPolicy(base=0.25, cap=CLI_RECONNECT_CAP),
        sounds=getattr(args, "sounds", False),
    )
    session.bell = _terminal_bell
    return session


def _terminal_bell() -> None:
    """A call sound's stand-in without a sound output: BEL on stderr, if a terminal."""
    import sys

    if sys.stderr.isatty():
        sys.stderr.write("\a")
        sys.stderr.flush()


async def _follow(call: Call, printer: Printer) -> None:
    async for event in call.events():
        printer.event(event)


async def drive(
    call: Call,
    args: argparse.Namespace,
    printer: Printer,
    stop: Any,
    share_server: tuple[str, ...] | None = None,
) -> int:
    """Print the call's events, apply --duration/--timeout, hang up on ``stop``;
    returns the exit code. A ``call`` that did not connect ends with the
    recovery hint (``share_server``: the ``room create`` options that reach the
    call's server; None: no server to make a room on, only Retry)."""
    import asyncio

    from hello_tui.call import events as ev
    from hello_tui.media.sources import FileSource

    state = {"timed_out": False}

    async def limits() -> None:
        timeout = getattr(args, "timeout", None)
        try:
            if timeout:
                try:
                    await call.wait_for(ev.Connected, timeout)
                except TimeoutError:
                    state["timed_out"] = True
                    await call.hangup()
                    return
            await call.wait_for(ev.MediaFlowing)
            if args.duration is not None:
                await asyncio.sleep(args.duration)  # the call's length, not a synchronisation
            elif call.source is not None and isinstance(call.source.source, FileSource):
                await call.source.source.ended.wait()
            else:
                return
            await call.hangup()
        except LookupError:  # the call ended first
            return

    follower = asyncio.create_task(_follow(call, printer))
    limiter = asyncio.create_task(limits())
    sharer = asyncio.create_task(share_when_connected(call, args, printer))
    stopper = asyncio.create_task(stop.wait())
    ender = asyncio.create_task(call.wait_ended())
    await asyncio.wait({stopper, ender}, return_when=asyncio.FIRST_COMPLETED)
    interrupted = stop.is_set() and call.ended is None
    if interrupted:
        await call.hangup()
    ended = await call.wait_ended()
    for task in (limiter, stopper, ender, sharer):
        task.cancel()
    await asyncio.gather(limiter, stopper, ender, sharer, return_exceptions=True)
    await follower
    code = exit_code(
        ended.reason, ended.stage, interrupted=interrupted, timed_out=state["timed_out"]
    )
    if ended.reason in ("error", "unreachable") and ended.message:
        print(f"hello-tui: error: {ended.message}", file=sys.stderr, flush=True)
    hint = recovery_hint(call, getattr(args, "target", ""), state["timed_out"], share_server)
    if hint is not None and not printer.as_json:
        printer.line({}, hint["line"])
    printer.stats(call, code, hint)
    return code


def share_size(text: str) -> tuple[int, int]:
    """``--share-size COLSxROWS``: (cols, rows); CliError if it is not one."""
    from hello_tui.share.limits import MAX_COLS, MAX_ROWS

    cols, _, rows = text.lower().partition("x")
    if not (cols.isdigit() and rows.isdigit()):
        raise CliError(f"--share-size {text!r}: expected COLSxROWS, e.g. 80x24")
    if not (1 <= int(cols) <= MAX_COLS and 1 <= int(rows) <= MAX_ROWS):
        raise CliError(f"--share-size {text!r}: at most {MAX_COLS}x{MAX_ROWS}")
    return int(cols), int(rows)


def check_share(args: argparse.Namespace) -> None:
    """``--share-size`` and ``--share-tmux``'s pane, before dialling: a one-line CliError."""
    share_size(getattr(args, "share_size", None) or "80x24")
    pane = getattr(args, "share_tmux", None)
    if pane is not None:
        from hello_tui.share.tmux import check_pane
        from hello_tui.share.wire import ShareError

        try:
            check_pane(pane)
        except ShareError as exc:
            raise CliError(str(exc)) from None


async def share_when_connected(call: Call, args: argparse.Namespace, printer: Printer) -> None:
    """``--share CMD`` / ``--share-shell``: share once the call connects; a
    program that cannot start is an error event, and the call goes on."""
    from hello_tui.call import events as ev
    from hello_tui.call.commands import CommandError, share_argv
    from hello_tui.share.wire import ShareError

    command, shell = getattr(args, "share", None), getattr(args, "share_shell", False)
    pane, size = getattr(args, "share_tmux", None), getattr(args, "share_size", None)
    if not command and not shell and pane is None:
        return
    cols, rows = share_size(size or "80x24")
    try:
        if pane is not None:
            from hello_tui.share.tmux import start_tmux_share

            await call.wait_for(ev.Connected)
            await start_tmux_share(call.share, pane, size=(cols, rows) if size else None)
            return
        argv = share_argv(command, shell)
        await call.wait_for(ev.Connected)
        await call.share.start(argv, cols=cols, rows=rows)
    except LookupError:  # the call ended first
        return
    except (CommandError, ShareError) as exc:
        printer.line({"kind": "error", "message": str(exc)}, f"error: {exc}")


def recovery_hint(
    call: Call, target: str, timed_out: bool, share_server: tuple[str, ...] | None
) -> dict[str, Any] | None:
    """Like Hello after a failed or unanswered call: try again, or share a link
    instead (session/recovery.py). ``line`` for people; ``retry`` and ``share``
    (None: not offered) are the commands, ready for a shell."""
    import shlex

    from hello_tui.session.recovery import recovery_for, share_room_name

    if call.ended is None or not target:
        return None
    offer = recovery_for(call.ended, outgoing=call.direction == "outgoing", room=call.is_room,
                         target=target, timed_out=timed_out)  # fmt: skip
    if offer is None:
        return None
    retry = shlex.join(["hello-tui", "call", target])
    share = None
    if offer.share and share_server is not None:
        name = share_room_name(call.peer or target)
        share = shlex.join(["hello-tui", "room", "create", "--qr", *share_server, name])
    line = f"{offer.lead.capitalize()}: try again ({retry})"
    line += f", or share a link instead ({share})" if share else ""
    return {"lead": offer.lead, "retry": retry, "share": share, "line": line}


def _run(main: Any) -> int:
    """Run ``main(stop)`` with SIGINT/SIGTERM setting ``stop``; map connection errors."""
    import asyncio
    import signal

    from hello_tui.signaling.errors import ServerUnreachable

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return int(await main(stop))
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    try:
        return asyncio.run(runner())
    except ServerUnreachable as exc:
        print(f"hello-tui: error: {exc}", file=sys.stderr)
        return UNREACHABLE


def _unreachable_json(args: argparse.Namespace, message: str) -> None:
    if args.json:
        Printer(True).line(
            {"kind": "ended", "reason": "unreachable", "duration": 0.0, "stage": "dialing",
             "message": message}, ""
        )  # fmt: skip


# ---------------------------------------------------------------- targets
def resolve_target(ctx: Context, target: str) -> tuple[str, str, bool]:
    """``(to, shown, is_room)``: a room URL, ``echo``, else a contact named the
    way ``contacts show`` names one (id, e-mail, whole or partial name: its
    first e-mail is dialled); text that names no contact is an account name.
    A name that matches several contacts is an error listing them: never a
    literal account name dialled by accident."""
    text = target.strip()
    if "://" in text:
        return text, "room", True
    if text.casefold() == "echo":
        return "echo", "echo", False
    from hello_tui.cli.contacts_cmd import NoContact, find

    try:
        store = ctx.contacts()
    except Exception:  # no usable address book: the target is an account name
        return text, text, False
    try:
        contact, _ = find(store, text)
    except NoContact:
        return text, text, False
    finally:
        store.close()
    from hello_tui.util.logs import mark_sensitive

    mark_sensitive(contact.name, *contact.emails)  # the log says "[name]", never who
    if not contact.emails:
        raise CliError(
            f"{printable(contact.name)} has no e-mail address to call (add one: contacts edit)"
        )
    by_email = next((e for e in contact.emails if e.casefold() == text.casefold()), None)
    return by_email or contact.emails[0], contact.name, False


# ---------------------------------------------------------------- handlers
def _place(args: argparse.Namespace, *, room: bool) -> int:
    from hello_tui.signaling.errors import ServerUnreachable

    ctx = context(args)
    if room:
        to, shown, is_room = args.url, "room", True
    else:
        to, shown, is_room = resolve_target(ctx, args.target)
    login: bool | None = None
    if is_room:
        from hello_tui.signaling.account_local import is_own_server
        from hello_tui.signaling.roomcrypt import parse_room_url
        from hello_tui.signaling.urls import canonical_origin

        parse_room_url(to)  # a malformed URL is a one-line error before connecting
        if not getattr(args, "server", None) and "://" in to:  # a bare token: [server] url
            args.server = canonical_origin(to)  # a room URL names its server
            # ...but never where the account key signs in: only the configured
            # server gets a login; any other is joined anonymously.
            if not is_own_server(ctx.settings, args.server or ""):
                login = False
                if has_account(ctx):
                    print(
                        f"hello-tui: note: this link is on another server ({args.server}); "
                        "joining without your account",
                        file=sys.stderr,
                        flush=True,
                    )
    _check_endpoints(*_settings_audio(ctx, args))
    _check_video(ctx, args)
    _audio_only(ctx, args)
    check_share(args)  # before dialling, not as a failed share
    session = _session(ctx, args, login=login)
    printer = Printer(args.json)
    if not is_room and to != "echo" and not session.login:
        # The server refuses it too (no oracle for strangers); say it before dialling.
        raise CliError(
            f"calling {shown} needs an account: run 'hello-tui account register NAME' "
            "(without one: 'hello-tui call echo' and rooms)"
        )
    telemetry = Telemetry(ctx, args, session.url)
    telemetry.before()
    calls: list[Call] = []
    steering = Steering(printer) if args.json else None

    async def main(stop: Any) -> int:
        try:
            async with session as phone:
                call = phone.join(to, peer=shown) if is_room else phone.dial(to, peer=shown)
                calls.append(call)
                if steering is not None:
                    steering.call = call
                    steering.start()
                share: tuple[str, ...] | None = None  # the embedded server keeps no rooms
                if not session.embedded:
                    share = ("--server", args.server) if args.server else ()
                try:
                    code = await drive(call, args, printer, stop, share)
                finally:
                    if steering is not None:
                        await steering.stop()
                telemetry.after_call(call)
                return code
        except ServerUnreachable as exc:
            _unreachable_json(args, str(exc))
            raise

    code = _run(main)
    if calls:
        telemetry.ask_feedback(calls[0])
    telemetry.flush_now()
    return code


def cmd_call(args: argparse.Namespace) -> int:
    return _place(args, room=False)


def cmd_join(args: argparse.Namespace) -> int:
    return _place(args, room=True)


def cmd_answer(args: argparse.Namespace) -> int:
    import asyncio

    ctx = context(args)
    if not has_account(ctx):
        raise CliError("answering needs an account: run 'hello-tui account register NAME'")
    _audio_only(ctx, args)  # before anything imports aiortc
    from hello_tui.session.callers import Callers

    callers = Callers(open_store=ctx.contacts, allowed=args.allow)
    session = _session(ctx, args, login=True, callers=callers)
    printer = Printer(args.json)
    if session.embedded:
        raise CliError(
            "answering needs a server others can reach: set [server] url or pass --server URL"
        )
    _check_endpoints(*_settings_audio(ctx, args))
    _check_video(ctx, args)
    check_share(args)  # before dialling, not as a failed share
    telemetry = Telemetry(ctx, args, session.url)
    telemetry.before()

    from hello_tui.signaling.rooms_local import rooms_file

    rooms_path = rooms_file(ctx.paths.data_dir)
    steering = Steering(printer) if args.json else None

    async def main(stop: Any) -> int:
        code = OK
        senders: set[asyncio.Task[None]] = set()  # reports go out while we wait for calls
        if steering is not None:
            steering.start()
        try:
            return await answering(stop, code, senders)
        finally:
            if steering is not None:
                await steering.stop()

    async def answering(stop: Any, code: int, senders: set[asyncio.Task[None]]) -> int:
        from hello_tui.call import events as ev

        async with session as phone:
            phone.on_missed = lambda shown: printer.line(
                ev.missed_json(shown),
                f"Missed call from {shown} (busy in another call)",
            )
            waiting = RoomWaitingQueue(printer, rooms_path)
            phone.on_room_waiting = waiting.heard
            printer.line(
                {"kind": "listening", "name": phone.client.name},
                f"Waiting for calls as {phone.client.name}...",
            )
            while not stop.is_set():
                getter = asyncio.create_task(phone.next_incoming())
                room = asyncio.create_task(waiting.next())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({getter, room, stopper}, return_when=asyncio.FIRST_COMPLETED)
                stopper.cancel()
                if not getter.done() and not room.done():
                    getter.cancel()
                    room.cancel()
                    break
                if getter.done():
                    room.cancel()
                    call = getter.result()
                    if args.auto is not None:
                        if args.auto > 0:
                            await asyncio.sleep(args.auto)  # the requested answering delay
                        if call.ended is None:
                            await call.accept()
                else:
                    getter.cancel()
                    if args.auto is None:  # printed as it came: only --auto joins
                        continue
                    found = room.result()
                    call = phone.join(found.url or found.token, peer=found.name or "room")
                if steering is not None:
                    steering.call = call
                policy = args.admit or ("all" if args.auto is not None else None)
                doorman = asyncio.create_task(answer_knocks(call, policy, printer))
                code = await drive(call, args, printer, stop)
                doorman.cancel()
                telemetry.after_call(call)
                sender = asyncio.create_task(telemetry.flush())
                senders.add(sender)
                sender.add_done_callback(senders.discard)
                if args.once:
                    break
        return code

    code = _run(main)
    telemetry.flush_now()
    return code


async def answer_knocks(call: Call, policy: str | None, printer: Printer) -> None:
    """Knocks at a room we are in (``ev.Knock``, printed by the call's follower):
    ``all`` admits each, ``none`` declines each, None leaves them to time out."""
    from hello_tui.call import events as ev
    from hello_tui.signaling.errors import SignalingClientError

    if policy is None:
        return
    async for event in call.events():
        if not isinstance(event, ev.Knock):
            continue
        try:
            await (call.admit if policy == "all" else call.decline)(event.knock)
        except SignalingClientError as exc:  # already gone, or someone else answered
            printer.line({"kind": "error", "message": str(exc)}, f"Note: {exc}")


class RoomWaitingQueue:
    """``room-waiting`` as the answering loop sees it: printed at once (``{"kind":
    "room-waiting", ...}`` with ``--json``), then queued for ``--auto`` to join."""

    def __init__(self, printer: Printer, rooms_path: Any) -> None:
        import asyncio

        self.printer = printer
        self.rooms_path = rooms_path
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=16)

    def heard(self, msg: Any) -> None:
        from hello_tui.signaling.rooms_local import waiting_room

        found = waiting_room(self.rooms_path, msg)
        who = found.visitor or "someone"
        where = f"your room {found.name}" if found.name else f"your room {found.token}"
        self.printer.line(
            {
                "kind": "room-waiting",
                "token": found.token,
                "name": found.name,
                "visitor": found.visitor,
                "url": found.url,
            },
            f"{who} is waiting in {where}",
        )
        if not self.queue.full():  # a flood of visitors is printed, not all queued
            self.queue.put_nowait(found)

    async def next(self) -> Any:
        return await self.queue.get()
