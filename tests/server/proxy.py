"""A real HAProxy in front of ``hello-tui serve`` instances, running
deploy/haproxy.cfg itself: WebSocket balancing (leastconn), X-Forwarded-For,
health checks on ``/__heartbeat__``, TLS terminated at the proxy with a
certificate made here. The proxy connects to the instances from ``SOURCE``
(another loopback address), the one address the instances trust, so a test
can also reach an instance directly from 127.0.0.1 as an untrusted peer would."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.certs import self_signed

SOURCE = "127.0.0.2"  # the proxy's address as the instances see it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proxy_pem(tmp: Path) -> tuple[Path, Path]:
    """(HAProxy's PEM: certificate then key, the certificate alone for clients)."""
    cert, key = self_signed(tmp, stem="proxy-cert")
    bundle = tmp / "proxy.pem"
    bundle.write_bytes(cert.read_bytes() + key.read_bytes())
    bundle.chmod(0o600)
    return bundle, cert


DEPLOYED = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"


def config(port: int, tls_port: int, bundle: Path, backends: list[str], maxconn: int = 4000) -> str:
    """deploy/haproxy.cfg with loopback addresses, this certificate, these
    servers, fewer connections (the fd limit here), faster checks, no logging
    and no redirect to https (tests use both ports). Every rewrite must match:
    the file the operators get is the file the tests run."""
    servers = "".join(f"    server i{n} {urlsplit(url).netloc}\n" for n, url in enumerate(backends))
    rewrites = [
        (r"(?m)^\s*log .*\n", ""),
        (r"(?m)^\s*maxconn \d+", f"    maxconn {maxconn}"),
        (r"(?m)^\s*bind :80\n", f"    bind 127.0.0.1:{port}\n"),
        (r"(?m)^\s*bind :443 ssl crt \S+", f"    bind 127.0.0.1:{tls_port} ssl crt {bundle}"),
        (r"(?m)^\s*http-request redirect scheme https.*\n", ""),
        (r"(?m)^\s*source \S+", f"    source {SOURCE}"),
        (r"inter 1s fall 2 rise 2", "inter 300ms fall 2 rise 1"),
        (r"(?m)(^\s*server .*\n)+", servers),
    ]
    text = DEPLOYED.read_text()
    for pattern, replacement in rewrites:
        text, count = re.subn(pattern, replacement.replace("\\", "\\\\"), text)
        assert count, f"deploy/haproxy.cfg no longer has {pattern!r}"
    return text


@dataclass
class Proxy:
    url: str  # http://127.0.0.1:PORT
    tls_url: str  # https://127.0.0.1:PORT
    cert: Path  # what a client trusts for tls_url
    pid: int = 0  # the HAProxy process (benches read its CPU time)


@contextlib.asynccontextmanager
async def haproxy(
    tmp: Path, backends: list[str], port: int, tls_port: int, maxconn: int = 4000, name: str = ""
) -> AsyncIterator[Proxy]:
    """Run HAProxy in the foreground over ``backends`` until the block ends.
    Several, each with its own ``name``, may share the ports: each binds with
    SO_REUSEPORT and the kernel spreads new connections over them."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        raise RuntimeError("haproxy is not installed (./dev.sh test installs it)")
    bundle, cert = proxy_pem(tmp)
    cfg = tmp / f"haproxy{name}.cfg"
    cfg.write_text(config(port, tls_port, bundle, backends, maxconn))
    log = tmp / f"haproxy{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            binary, "-db", "-f", str(cfg), stdout=out, stderr=out
        )
    try:
        await _until_listening(port, proc, log)
        yield Proxy(f"http://127.0.0.1:{port}", f"https://127.0.0.1:{tls_port}", cert, proc.pid)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _until_listening(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(200):
        if proc.returncode is not None:
            raise RuntimeError(f"haproxy exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"haproxy did not listen: {log.read_text()[-2000:]}")
