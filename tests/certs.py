"""One self-signed certificate maker for the tests that need TLS: the server's
own wss, HAProxy terminating TLS, coturn's TURN over TLS on 443."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(directory: Path, ip: str = "127.0.0.1", stem: str = "cert") -> tuple[Path, Path]:
    """(certificate, key) PEM files for ``ip`` (in the subject alternative name),
    valid for an hour; the key file is 0600."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ip)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@contextlib.asynccontextmanager
async def tls_server(directory: Path) -> AsyncIterator[tuple[str, Path]]:
    """(https URL, the certificate that signs it) of a real server on an ephemeral
    port, speaking wss with a fresh self-signed certificate; stopped on the way out."""
    from hello_tui.server.app import serve
    from hello_tui.server.settings import ServerSettings

    cert, key = self_signed(directory)
    settings = ServerSettings(port=0, tls_cert=cert, tls_key=key, rate=0.0)
    urls: asyncio.Queue[str] = asyncio.Queue()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=urls.put_nowait, stop=stop))
    try:
        yield await asyncio.wait_for(urls.get(), 10), cert
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
