"""A local control socket: steer a call this process holds from another one.

Every process with a phone (the TUI, ``call``/``answer``/``join``) listens on
one unix socket, ``ctl-PID.sock`` in :func:`runtime_dir` (``$XDG_RUNTIME_DIR/
hello-tui``, else ``run/`` in the state directory; the directory 0700, the
socket 0600, and a peer of another uid is refused by its credentials).
``hello-tui ctl`` is its client (hello_tui/cli/ctl_cmd.py); ``[control]
socket = false`` turns it off. docs/calls.md has the wire format:

- a client first receives one ``{"kind": "control", ...}`` line (the pid,
  the face, the account, the calls in progress);
- then every event of every call as the same JSON line ``--json`` prints
  (:func:`hello_tui.call.events.json_line` of ``event.to_json()``);
- it may send the ``--json`` stdin commands (:mod:`hello_tui.call.commands`,
  the one parser), one a line; each gets ``{"kind": "ok", "cmd": ...}`` or
  the ``error`` line, after the events the command caused.

Bounded: a line at most :data:`MAX_LINE_BYTES` (longer: an error, then the
client is dropped), at most :data:`MAX_CLIENTS` clients, and a client that
reads too slowly (:data:`QUEUE_LINES` lines behind) is dropped: the call never
waits for a reader. A socket left by a dead process is removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hello_tui.call import events as ev
from hello_tui.call.commands import (
    MAX_LINE_BYTES,
    CommandError,
    parse_command,
    run_command,
)
from hello_tui.call.phone import CallListener
from hello_tui.session.control_dir import (
    live_sockets,
    private_runtime_dir,
    runtime_dir,
    socket_path,
)

if TYPE_CHECKING:
    from hello_tui.call.call import Call
    from hello_tui.call.phone import Phone

__all__ = [
    "MAX_CLIENTS",
    "ControlServer",
    "live_sockets",
    "runtime_dir",
    "socket_path",
]

log = logging.getLogger(__name__)

MAX_CLIENTS = 8
CLOSE_SECONDS = 1.0  # closing: how long queued lines may take to go out
QUEUE_LINES = 512  # lines a client may lag behind before it is dropped


def _peer_uid(sock: Any) -> int | None:
    """The uid of the process at the other end (Linux SO_PEERCRED), None unknown."""
    opt = getattr(socket, "SO_PEERCRED", None)
    if sock is None or opt is None:
        return None
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i"))
    except OSError:
        return None
    return int(struct.unpack("3i", raw)[1])


# ---------------------------------------------------------------- the server
class _Client:
    """One connected client: its own queue of lines and a task writing them."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=QUEUE_LINES)
        self.task: asyncio.Task[None] | None = None
        self.dropped = False

    def put(self, line: str) -> bool:
        """Queue ``line``; False (and the client dropped) when it lags too far."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.drop()
            return False
        return True

    def put_end(self) -> bool:
        """No more lines: the pump stops after the queued ones (False: dropped)."""
        if self.dropped or self.queue.full():
            self.drop()
            return False
        self.queue.put_nowait(None)
        return True

    def drop(self) -> None:
        self.dropped = True
        self.writer.transport.abort()  # at once: nothing it has not read will follow
        if self.task is not None:
            self.task.cancel()

    async def pump(self) -> None:
        try:
            while (line := await self.queue.get()) is not None:
                self.writer.write(line.encode())
                await self.writer.drain()
        except (ConnectionError, OSError):
            self.dropped = True


class ControlServer(CallListener):
    """The control socket of one phone (``await start()``, ``await close()``).

    ``face`` names this process in ``hello-tui ctl list`` (``tui``, ``answer``)."""

    def __init__(self, phone: Phone, *, face: str = "", where: Path | None = None) -> None:
        self.phone = phone
        self.face = face
        self.where = where
        self.path: Path | None = None
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self._serving: set[asyncio.Task[Any]] = set()  # one per connection
        self._inode: int | None = None

    async def start(self) -> Path:
        """Listen; returns the socket's path. Raises OSError if it cannot."""
        where = private_runtime_dir(self.where or runtime_dir())
        live_sockets(where)  # clear what dead processes left
        path = socket_path(os.getpid(), where)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # our pid's name: a dead process's, or an earlier session's
        # The directory is 0700, so the moment before chmod exposes nothing.
        self._server = await asyncio.start_unix_server(
            self._serve, path=str(path), limit=MAX_LINE_BYTES + 1
        )
        os.chmod(path, 0o600)
        self._inode = os.stat(path).st_ino
        self.path = path
        self.phone.listeners.append(self)
        log.info("control socket at %s", path)
        return path

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.phone.listeners.remove(self)
        if self._server is not None:
            self._server.close()
            self._server = None
        clients, self._clients = list(self._clients), set()
        pumps = [c.task for c in clients if c.put_end() and c.task is not None]
        if pumps:  # what was queued (a last Ended) goes out, briefly
            await asyncio.wait(pumps, timeout=CLOSE_SECONDS)
        for client in clients:  # close flushes what is written; abort what is stuck
            if client.task is not None and client.task.done() and not client.dropped:
                client.writer.close()
            else:
                client.drop()
        if self._serving:  # each connection's task ends on its closed stream
            await asyncio.wait(self._serving, timeout=CLOSE_SECONDS)
        if self.path is not None:
            with contextlib.suppress(OSError):  # only our own socket, not a successor's
                if os.stat(self.path).st_ino == self._inode:
                    self.path.unlink()
            self.path = None

    # ------------------------------------------------------------ listening
    def call_event(self, call: Call, event: ev.CallEvent) -> None:
        self.broadcast(event.to_json())

    def missed(self, shown: str) -> None:
        self.broadcast(ev.missed_json(shown))

    def broadcast(self, data: dict[str, Any]) -> None:
        """One line to every client; a client too far behind is dropped."""
        if not self._clients:
            return
        line = ev.json_line(data)
        for client in list(self._clients):
            if not client.put(line):
                self._clients.discard(client)

    def hello(self) -> dict[str, Any]:
        """The first line a client reads: who this is and its calls."""
        calls = [
            {
                "call_id": call.call_id,
                "peer": call.peer,
                "peer_name": call.peer_name,
                "stage": call.stage,
                "direction": call.direction,
                "room": call.is_room,
                "muted": call.muted,
            }
            for call in self._live()
        ]
        return {
            "kind": "control",
            "pid": os.getpid(),
            "face": self.face,
            "account": getattr(self.phone.client, "name", None) or "",
            "calls": calls,
        }

    def _live(self) -> list[Call]:
        return sorted((c for c in self.phone.live if c.ended is None), key=lambda c: c.started)

    def target(self) -> Call:
        """The call a command applies to: the connected one (the newest if
        several), else the newest in progress."""
        live = self._live()
        if not live:
            raise CommandError("no call in progress")
        connected = [c for c in live if c.stage == "connected"]
        return (connected or live)[-1]

    # ------------------------------------------------------------ one client
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)
        uid = _peer_uid(writer.get_extra_info("socket"))
        if uid is not None and uid != os.getuid():  # the mode bits should make this moot
            writer.transport.abort()
            return
        client = _Client(writer)
        if len(self._clients) >= MAX_CLIENTS:
            refused = CommandError(f"too many control clients (at most {MAX_CLIENTS})")
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(ev.json_line(refused.to_json()).encode())
                await writer.drain()
            writer.close()
            return
        client.put(ev.json_line(self.hello()))
        self._clients.add(client)
        client.task = asyncio.get_running_loop().create_task(client.pump())
        try:
            await self._read(reader, client)
        finally:
            self._clients.discard(client)
            if client.put_end():  # what it was owed is written, then it is closed
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await client.task
            writer.close()

    async def _read(self, reader: asyncio.StreamReader, client: _Client) -> None:
        while not client.dropped:
            try:
                line = await reader.readline()
            except ValueError:  # longer than the limit: say so, then hang up on it
                too_long = CommandError(f"command line too long (at most {MAX_LINE_BYTES} bytes)")
                client.put(ev.json_line(too_long.to_json()))
                return
            except (ConnectionError, OSError):
                return
            if not line:
                return
            if not line.strip():
                continue
            client.put(ev.json_line(await self._run(line)))

    async def _run(self, line: bytes) -> dict[str, Any]:
        try:
            command = parse_command(line)
            await run_command(self.target(), command)
        except CommandError as exc:
            return exc.to_json()
        return {"kind": "ok", "cmd": _command_name(command)}


def _command_name(command: Any) -> str:
    return type(command).__name__.lower()
