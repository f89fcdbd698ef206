"""``python -m hello_tui.echo``, the echo peer's own process: how it ends."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat


def _key_line() -> bytes:
    raw = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return base64.b64encode(raw) + b"\n"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_a_peer_that_cannot_start_exits_1_with_its_pipe_still_open() -> None:
    """The server's pipe stays open while the peer gives up (no server at the URL):
    one warning line, status 1, no fatal error at shutdown. (The pipe used to be
    watched by a thread blocked in sys.stdin's buffer; a full test run caught one
    echo process that aborted at exit, "could not acquire lock ... at interpreter
    shutdown": the pipe's EOF woke that thread while the interpreter finalized, and
    it died holding the buffer's lock. The loop now reads the raw fd.)"""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hello_tui.echo", f"http://127.0.0.1:{_closed_port()}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONFAULTHANDLER": ""},
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(_key_line())
    proc.stdin.flush()
    try:
        rc = proc.wait(timeout=60)  # the pipe is not closed before it exits
        err = proc.stderr.read().decode(errors="replace")
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 1, err
    assert "could not start" in err
    assert "Fatal Python error" not in err


def test_ctrl_c_on_serve_ends_it_and_its_echo_process_without_a_traceback(
    tmp_path: Path,
) -> None:
    """Ctrl-C in a terminal signals the whole foreground process group: the echo
    child too. It used to die of KeyboardInterrupt (a traceback over the server's
    terminal); it now leaves ending to the server, which closes its pipe."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "hello_tui.cli.main", "serve", "--port", "0", "--ephemeral"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group, as a shell's foreground job
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert proc.stderr is not None
    lines: list[str] = []
    try:
        for raw in proc.stderr:  # the echo peer signs in: it is up and waiting
            lines.append(raw.decode(errors="replace"))
            if "logged in" in lines[-1]:
                break
        else:
            raise AssertionError("serve ended early:\n" + "".join(lines))
        os.killpg(proc.pid, signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out = "".join(lines) + rest.decode(errors="replace")
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
    assert "Fatal Python error" not in out, out
    assert proc.returncode == 0, out
