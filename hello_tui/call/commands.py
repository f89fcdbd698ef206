"""Commands that steer a live call: one table for every face.

A command is one JSON object (``{"cmd": "chat", "text": "hi"}``); the CLI
reads them one per line on stdin with ``--json`` (docs/calls.md), and a
control socket or the TUI can reuse the same table: :func:`parse_command`
turns a line into a typed command (or :class:`CommandError`),
:func:`run_command` applies it to a :class:`~hello_tui.call.call.Call`
(or raises :class:`CommandError`, e.g. chat too fast, no camera). Nothing
here prints: a refused command becomes the face's error event
(:meth:`CommandError.to_json`), and what a command does shows as the call's
own events (``chat`` from ``local``, ``muted``, ``camera-on``, ``ended``).

| cmd | fields | does |
|---|---|---|
| ``chat`` | ``text`` (string) | ``call.send_chat(text)`` |
| ``mute`` / ``unmute`` | | the microphone gate |
| ``camera`` | ``on`` (bool) | ``call.set_camera(on)`` (a video call only) |
| ``hangup`` | | ``call.hangup()`` |
| ``share-start`` | ``command`` or ``shell``; ``cols``, ``rows`` | share a terminal (80x24) |
| ``share-stop`` | | stop sharing (the program is hung up) |
| ``share-grant`` / ``share-revoke`` | | the other side may / may not type in ours |
| ``share-snapshot`` | ``side`` (optional) | a ``share-snapshot`` event: the screen |
| ``share-input`` | ``data`` (string) | type in ours, or in theirs when granted |
| ``audio-in`` / ``audio-out`` | ``endpoint`` (``device:NAME``) | move the mic / speaker |
| ``share-tmux`` | ``pane``; ``cols``, ``rows`` (optional) | share a tmux pane (docs/sharing.md) |

``command`` is split like a shell would (no shell runs it); ``shell``: true
shares ``$SHELL``. ``side`` is ``local`` or ``remote`` (default: theirs if
they share, else ours). Sharing is docs/sharing.md.

Lines are untrusted: at most :data:`MAX_LINE_BYTES`, unknown fields refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from hello_tui.call.call import Call

__all__ = [
    "COMMANDS",
    "MAX_LINE_BYTES",
    "AudioIn",
    "AudioOut",
    "Camera",
    "Chat",
    "Command",
    "CommandError",
    "Hangup",
    "Mute",
    "ShareGrant",
    "ShareInput",
    "ShareRevoke",
    "ShareSnapshotCmd",
    "ShareStart",
    "ShareStop",
    "Unmute",
    "parse_command",
    "run_command",
]

MAX_LINE_BYTES = 16 * 1024  # a chat message is at most 8 KiB encoded: room for JSON escapes


class CommandError(ValueError):
    """A line that is not a command, or a command the call refuses: one line."""

    def to_json(self) -> dict[str, Any]:
        """The error event the faces print (``{"kind": "error", "message": ...}``)."""
        return {"kind": "error", "message": str(self)}


@dataclass(frozen=True, slots=True)
class Chat:
    text: str


@dataclass(frozen=True, slots=True)
class Mute:
    pass


@dataclass(frozen=True, slots=True)
class Unmute:
    pass


@dataclass(frozen=True, slots=True)
class Camera:
    on: bool


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class ShareStart:
    argv: tuple[str, ...]
    cols: int = 80
    rows: int = 24


@dataclass(frozen=True, slots=True)
class ShareStop:
    pass


@dataclass(frozen=True, slots=True)
class ShareGrant:
    pass


@dataclass(frozen=True, slots=True)
class ShareRevoke:
    pass


@dataclass(frozen=True, slots=True)
class ShareSnapshotCmd:
    side: Literal["local", "remote"] | None = None


@dataclass(frozen=True, slots=True)
class ShareInput:
    data: str


@dataclass(frozen=True, slots=True)
class AudioIn:
    endpoint: str


@dataclass(frozen=True, slots=True)
class AudioOut:
    endpoint: str


@dataclass(frozen=True, slots=True)
class ShareTmux:
    pane: str
    cols: int | None = None  # None: the pane's window's size
    rows: int | None = None


Command = (
    Chat | Mute | Unmute | Camera | Hangup | AudioIn | AudioOut
    | ShareStart | ShareStop | ShareGrant | ShareRevoke | ShareSnapshotCmd | ShareInput
    | ShareTmux
)  # fmt: skip


def share_argv(command: str | None, shell: bool) -> tuple[str, ...]:
    """What ``--share CMD`` / ``--share-shell`` (and ``share-start``) run: CMD split
    the way a shell would (no shell in between), or ``$SHELL`` (else /bin/sh)."""
    import os
    import shlex

    if shell:
        return (os.environ.get("SHELL") or "/bin/sh",)
    try:
        argv = tuple(shlex.split(command or ""))
    except ValueError as exc:
        raise CommandError(f"share: cannot split the command ({exc})") from None
    if not argv:
        raise CommandError('"share-start" needs "command" (a string) or "shell": true')
    return argv


def _share_start(o: dict[str, Any]) -> ShareStart:
    command, shell = o.get("command"), o.get("shell", False)
    if (command is not None and not isinstance(command, str)) or not isinstance(shell, bool):
        raise CommandError('"share-start" needs "command" (a string) or "shell": true')
    size: dict[str, int] = {}
    for name in ("cols", "rows"):
        if name in o:
            value = o[name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CommandError(f'"share-start": "{name}" must be a positive integer')
            size[name] = value
    return ShareStart(share_argv(command, shell), **size)


_INPUT = "share-input"


def _share_tmux(o: dict[str, Any]) -> ShareTmux:
    pane = _field(o, "pane", str, "share-tmux")
    size = _share_start({"command": "tmux", **{k: o[k] for k in ("cols", "rows") if k in o}})
    if ("cols" in o) != ("rows" in o):
        raise CommandError('"share-tmux": "cols" and "rows" go together')
    return ShareTmux(pane, size.cols, size.rows) if "cols" in o else ShareTmux(pane)


def _share_side(o: dict[str, Any]) -> ShareSnapshotCmd:
    side = o.get("side")
    if side not in (None, "local", "remote"):
        raise CommandError('"share-snapshot": "side" is "local" or "remote"')
    return ShareSnapshotCmd(side)


def _field(obj: dict[str, Any], name: str, kind: type, cmd: str) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise CommandError(f'"{cmd}" needs "{name}": a {kind.__name__}')
    return value


# name → (fields it takes, how to build it)
COMMANDS: dict[str, tuple[frozenset[str], Callable[[dict[str, Any]], Command]]] = {
    "chat": (frozenset({"text"}), lambda o: Chat(_field(o, "text", str, "chat"))),
    "mute": (frozenset(), lambda o: Mute()),
    "unmute": (frozenset(), lambda o: Unmute()),
    "camera": (frozenset({"on"}), lambda o: Camera(_field(o, "on", bool, "camera"))),
    "hangup": (frozenset(), lambda o: Hangup()),
    "share-start": (frozenset({"command", "shell", "cols", "rows"}), _share_start),
    "share-stop": (frozenset(), lambda o: ShareStop()),
    "share-grant": (frozenset(), lambda o: ShareGrant()),
    "share-revoke": (frozenset(), lambda o: ShareRevoke()),
    "share-snapshot": (frozenset({"side"}), _share_side),
    "share-input": (frozenset({"data"}), lambda o: ShareInput(_field(o, "data", str, _INPUT))),
    "audio-in": (
        frozenset({"endpoint"}),
        lambda o: AudioIn(_field(o, "endpoint", str, "audio-in")),
    ),
    "audio-out": (
        frozenset({"endpoint"}),
        lambda o: AudioOut(_field(o, "endpoint", str, "audio-out")),
    ),
    "share-tmux": (frozenset({"pane", "cols", "rows"}), _share_tmux),
}


def parse_command(line: str | bytes) -> Command:
    """One command from one line of JSON; :class:`CommandError` says what is wrong."""
    if len(line) > MAX_LINE_BYTES:
        raise CommandError(f"command line too long (at most {MAX_LINE_BYTES} bytes)")
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        raise CommandError("not a JSON command: expected one JSON object a line") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("cmd"), str):
        raise CommandError('not a command: expected {"cmd": ...}')
    name = obj["cmd"]
    entry = COMMANDS.get(name)
    if entry is None:
        known = ", ".join(COMMANDS)
        raise CommandError(f"unknown command {json.dumps(name)[:40]} (known: {known})")
    fields, build = entry
    extra = set(obj) - fields - {"cmd"}
    if extra:
        raise CommandError(f'"{name}" takes no field {json.dumps(sorted(extra)[0])[:40]}')
    return build(obj)


async def run_command(call: Call, command: Command) -> None:
    """Apply ``command`` to ``call``; :class:`CommandError` if the call refuses it."""
    from hello_tui.call.audio_devices import switch_audio
    from hello_tui.call.chat import ChatError
    from hello_tui.call.media_policy import NoVideo
    from hello_tui.media.errors import MediaError
    from hello_tui.share.wire import ShareError

    if call.ended is not None:
        raise CommandError("the call is over")
    try:
        match command:
            case Chat(text=text):
                call.send_chat(text)
            case Mute():
                call.mute()
            case Unmute():
                call.unmute()
            case Camera(on=on):
                call.set_camera(on)
            case Hangup():
                await call.hangup()
            case ShareStart(argv=argv, cols=cols, rows=rows):
                await call.share.start(argv, cols=cols, rows=rows)
            case ShareStop():
                await call.share.stop()
            case ShareGrant():
                call.share.grant()
            case ShareRevoke():
                call.share.revoke()
            case ShareSnapshotCmd(side=side):
                call.share_snapshot(side)
            case ShareInput(data=data):
                call.share.send_input(data)
            case AudioIn(endpoint=endpoint):
                await switch_audio(call, "in", endpoint)
            case AudioOut(endpoint=endpoint):
                await switch_audio(call, "out", endpoint)
            case ShareTmux(pane=pane, cols=cols, rows=rows):
                from hello_tui.share.tmux import start_tmux_share

                size = (cols, rows) if cols is not None and rows is not None else None
                await start_tmux_share(call.share, pane, size=size)
    except (ChatError, NoVideo, ShareError, MediaError) as exc:
        raise CommandError(str(exc)) from None
