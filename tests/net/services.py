"""The public side of :mod:`tests.net.internet`: a real coturn and ``hello-tui serve``.

coturn runs with ``use-auth-secret`` and the server with the same secret
(``--turn-secret-file``), as docs/server.md deploys them: TURN over UDP and
TCP on 3478, and over TLS on 443 with a self-signed certificate made for the
run. Clients are ``hello-tui`` subprocesses inside a home (:meth:`Home.cmd`),
each home with its own profile directories (accounts, config).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.certs import self_signed
from tests.net.internet import PUBLIC_IP, Internet

SERVER_PORT = 8080
TURN_PORT = 3478
TURNS_PORT = 443
TURN_URLS = (
    f"turn:{PUBLIC_IP}:{TURN_PORT}?transport=udp",
    f"turn:{PUBLIC_IP}:{TURN_PORT}?transport=tcp",
    f"turns:{PUBLIC_IP}:{TURNS_PORT}?transport=tcp",
)


# HELLO_TUI_* variables a home's CLI still gets from the caller's environment.
PASSED_THROUGH = ("HELLO_TUI_OPUS_FEC",)


class ServiceUnavailable(RuntimeError):
    """coturn is not installed."""


@dataclass
class Public:
    net: Internet
    url: str  # the rendezvous server, as the homes dial it
    turn_log: Path
    ca: Path  # the TURN server's self-signed certificate (homes trust it)

    def home(self, i: int, root: Path) -> Home:
        return Home(self.net, f"h{i}", root / f"home{i}", self.url, self.ca)


@dataclass
class Home:
    """One home's ``hello-tui`` (its own XDG profile), run inside its namespace."""

    net: Internet
    where: str
    root: Path
    server: str
    ca: Path | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "HELLO_TUI_"))}
        for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"),
                         ("XDG_STATE_HOME", "state"), ("XDG_CACHE_HOME", "cache")):  # fmt: skip
            (self.root / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.root / sub)
        if self.ca is not None:  # turns: verifies coturn's certificate against this
            env["SSL_CERT_FILE"] = str(self.ca)
        for var in PASSED_THROUGH:  # benchmark A/B switches reach the homes' CLIs
            if var in os.environ:
                env[var] = os.environ[var]
        return env

    def config(self, text: str) -> None:
        """Write this home's ``config.toml``."""
        path = self.root / "config" / "hello-tui" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def cmd(self, *args: str) -> list[str]:
        return [*self.net.exec_prefix(self.where), sys.executable, "-m", "hello_tui", *args]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.cmd(*args), capture_output=True, text=True, env=self.env(),
                              timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(self.cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, env=self.env())  # fmt: skip


def _wait_tcp(net: Internet, port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    probe = f"import socket; socket.create_connection(('{PUBLIC_IP}', {port}), timeout=0.5)"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early ({proc.returncode})")
        ok = subprocess.run([*net.exec_prefix("pub"), sys.executable, "-c", probe],
                            capture_output=True, check=False)  # fmt: skip
        if ok.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {PUBLIC_IP}:{port} in time")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def public_services(
    net: Internet, tmp: Path, *, turn_urls: Sequence[str] = TURN_URLS, extra: Sequence[str] = ()
) -> Iterator[Public]:
    """coturn and the rendezvous server in the public namespace, for the block.
    ``extra``: more ``hello-tui serve`` flags."""
    exe = shutil.which("turnserver")
    if exe is None:
        raise ServiceUnavailable("coturn is not installed (Debian coturn; dev.sh TEST_PKGS)")
    tmp.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(16)
    secret_file = tmp / "turn-secret"
    secret_file.write_text(secret + "\n")
    secret_file.chmod(0o600)
    cert, key = self_signed(tmp, PUBLIC_IP, stem="turn")
    turn_log = tmp / "turn.log"
    started: list[subprocess.Popen[bytes]] = []
    try:
        with turn_log.open("wb") as log:
            started.append(subprocess.Popen(
                [*net.exec_prefix("pub"), exe, "-n", f"--listening-ip={PUBLIC_IP}",
                 f"--relay-ip={PUBLIC_IP}", f"--listening-port={TURN_PORT}",
                 f"--tls-listening-port={TURNS_PORT}", f"--cert={cert}", f"--pkey={key}",
                 "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=hello.test",
                 "--no-dtls", "--no-cli", "--no-multicast-peers", "--fingerprint",
                 # as docs/server.md advises: never relay into private networks
                 "--denied-peer-ip=10.0.0.0-10.255.255.255",
                 f"--pidfile={tmp / 'turn.pid'}", "--log-file=stdout", "--simple-log"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            ))  # fmt: skip
        server = subprocess.Popen(
            [*net.exec_prefix("pub"), sys.executable, "-m", "hello_tui", "serve",
             "--host", PUBLIC_IP, "--port", str(SERVER_PORT), "--ephemeral", "--no-echo",
             *(a for url in turn_urls for a in ("--turn-url", url)),
             "--turn-secret-file", str(secret_file), *extra],
            stdout=subprocess.DEVNULL, stderr=(tmp / "server.log").open("wb"),
            stdin=subprocess.DEVNULL, env={**os.environ, "XDG_DATA_HOME": str(tmp / "srv")},
        )  # fmt: skip
        started.append(server)
        _wait_tcp(net, TURN_PORT, started[0], "coturn")
        _wait_tcp(net, SERVER_PORT, server, "hello-tui serve")
        yield Public(net, f"http://{PUBLIC_IP}:{SERVER_PORT}", turn_log, cert)
    finally:
        for proc in reversed(started):
            _stop(proc)
