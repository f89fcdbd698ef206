"""``hello-tui ctl``: steer a call another hello-tui process holds.

The client of the control socket (hello_tui/session/control.py, docs/calls.md):
``ctl list`` shows the running processes and their calls, ``ctl chat TEXT``,
``ctl mute``, ``ctl unmute``, ``ctl camera on|off``, ``ctl hangup`` and ``ctl
send JSON`` send one command and wait for its answer, ``ctl events`` prints
the event stream (the JSON lines ``--json`` prints) until the process ends.
With several processes running, ``--pid`` picks one. Errors are one line and
exit 1 (nothing running, the socket refused, the command refused).

Module level: stdlib only (the parser imports it for ``--help``).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

from hello_tui.cli.errors import CliError
from hello_tui.util.display import printable

REPLY_SECONDS = 15.0  # a command's answer (a hang-up takes a round trip to the server)
CONNECT_SECONDS = 3.0


# ---------------------------------------------------------------- arguments
def _pid(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pid", type=int, metavar="PID", help="the process to steer (when several run)")


def args_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON line per process")


def args_events(p: argparse.ArgumentParser) -> None:
    _pid(p)
    p.add_argument(
        "--until-ended",
        action="store_true",
        help="stop after the next call's ended event (default: until the process exits)",
    )


def args_chat(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", metavar="TEXT", help="the message (end to end, never via the server)")
    _pid(p)


def args_camera(p: argparse.ArgumentParser) -> None:
    p.add_argument("state", choices=("on", "off"), help="camera on or off (a video call only)")
    _pid(p)


def args_send(p: argparse.ArgumentParser) -> None:
    p.add_argument("line", metavar="JSON", help='one command, e.g. \'{"cmd": "mute"}\'')
    _pid(p)


args_plain = _pid


# ---------------------------------------------------------------- the socket
class Control:
    """One connection to a process's control socket, read line by line."""

    def __init__(self, pid: int, path: Path) -> None:
        self.pid = pid
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_SECONDS)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            reason = exc.strerror or str(exc)
            raise CliError(f"process {pid}'s control socket refused: {reason}") from None
        self.sock = sock
        self.file = sock.makefile("rb")
        hello = self.read(CONNECT_SECONDS)
        if hello is None or hello.get("kind") != "control":
            self.close()
            message = (hello or {}).get("message") or "no greeting"
            raise CliError(f"process {pid}'s control socket: {printable(message)}")
        self.hello: dict[str, Any] = hello

    def read(self, timeout: float | None) -> dict[str, Any] | None:
        """The next line as an object; None at the end of the stream."""
        self.sock.settimeout(timeout)
        try:
            raw = self.file.readline()
        except TimeoutError:
            raise CliError(f"process {self.pid} did not answer in time") from None
        except OSError as exc:
            raise CliError(f"process {self.pid}: {exc.strerror or exc}") from None
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except ValueError:
            raise CliError(f"process {self.pid} sent a line that is not JSON") from None
        return data if isinstance(data, dict) else {}

    def send(self, line: str) -> dict[str, Any]:
        """Send one command line; its ``ok`` or ``error`` answer (events skipped)."""
        try:
            self.sock.sendall(line.encode() + b"\n")
        except OSError as exc:
            raise CliError(f"process {self.pid}: {exc.strerror or exc}") from None
        while True:
            data = self.read(REPLY_SECONDS)
            if data is None:
                raise CliError(f"process {self.pid} closed the control socket")
            if data.get("kind") in ("ok", "error"):
                return data

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def _sockets() -> list[tuple[int, Path]]:
    from hello_tui.session.control_dir import live_sockets

    return live_sockets()


def _pick(pid: int | None) -> tuple[int, Path]:
    running = _sockets()
    if pid is not None:
        for found in running:
            if found[0] == pid:
                return found
        raise CliError(f"no hello-tui process {pid} with a control socket")
    if not running:
        raise CliError(
            "no hello-tui process is running (or its control socket is off: [control] socket)"
        )
    if len(running) > 1:
        pids = ", ".join(str(p) for p, _ in running)
        raise CliError(f"several hello-tui processes run (pids {pids}): pick one with --pid")
    return running[0]


def _command(args: argparse.Namespace, line: str) -> int:
    control = Control(*_pick(args.pid))
    try:
        reply = control.send(line)
    finally:
        control.close()
    if reply.get("kind") == "error":
        raise CliError(str(reply.get("message") or "refused"))
    return 0


# ---------------------------------------------------------------- handlers
def cmd_chat(args: argparse.Namespace) -> int:
    return _command(args, json.dumps({"cmd": "chat", "text": args.text}, ensure_ascii=False))


def cmd_mute(args: argparse.Namespace) -> int:
    return _command(args, '{"cmd": "mute"}')


def cmd_unmute(args: argparse.Namespace) -> int:
    return _command(args, '{"cmd": "unmute"}')


def cmd_camera(args: argparse.Namespace) -> int:
    return _command(args, json.dumps({"cmd": "camera", "on": args.state == "on"}))


def cmd_hangup(args: argparse.Namespace) -> int:
    return _command(args, '{"cmd": "hangup"}')


def cmd_send(args: argparse.Namespace) -> int:
    if "\n" in args.line.strip():
        raise CliError("one command only: no newline in JSON")
    return _command(args, args.line.strip())


def cmd_events(args: argparse.Namespace) -> int:
    control = Control(*_pick(args.pid))
    try:
        _print(control.hello)
        while (data := control.read(None)) is not None:
            _print(data)
            if args.until_ended and data.get("kind") == "ended":
                break
    finally:
        control.close()
    return 0


def _print(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def cmd_list(args: argparse.Namespace) -> int:
    shown = 0
    for pid, path in _sockets():
        try:
            control = Control(pid, path)
        except CliError as exc:  # running, but not answering: say so, go on
            print(f"hello-tui: note: {exc}", file=sys.stderr)
            continue
        hello = control.hello
        control.close()
        shown += 1
        if args.json:
            _print(hello)
            continue
        calls = hello.get("calls") or []
        what = "; ".join(_call_words(c) for c in calls if isinstance(c, dict)) or "no call"
        who = f" as {printable(hello['account'])}" if hello.get("account") else ""
        print(f"{pid}  {printable(hello.get('face') or '?')}{who}  {what}")
    if not shown and not args.json:
        print("No hello-tui process is running.")
    return 0


def _call_words(call: dict[str, Any]) -> str:
    peer = printable(call.get("peer_name") or call.get("peer") or "?", 40)
    muted = ", muted" if call.get("muted") else ""
    return f"{'room' if call.get('room') else 'call'} {peer} ({call.get('stage')}{muted})"
