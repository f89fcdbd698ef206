"""``serve --tls-cert/--tls-key``: the server speaks wss:// with the given
certificate, and a plain ws:// client cannot talk to it."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hello_tui.server.app import serve
from hello_tui.server.settings import ServerSettings
from hello_tui.signaling import protocol as p


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
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
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_wss_with_the_given_certificate(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    settings = ServerSettings(port=0, tls_cert=cert, tls_key=key, rate=0.0)
    urls: asyncio.Queue[str] = asyncio.Queue()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, ready=urls.put_nowait, stop=stop))
    try:
        url = await asyncio.wait_for(urls.get(), 10)
        assert url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(url.replace("https", "wss") + "/ws", ssl=trust)
            await ws.send_str(p.encode(p.Hello(version=p.PROTOCOL_VERSION)).decode())
            assert isinstance(p.decode_server((await ws.receive(timeout=5)).data), p.Welcome)
            await ws.close()
            with pytest.raises(aiohttp.ClientError):
                await http.ws_connect(url.replace("https", "ws") + "/ws")
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await http.ws_connect(url.replace("https", "wss") + "/ws")  # untrusted
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
