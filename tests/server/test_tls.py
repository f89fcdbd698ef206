"""``serve --tls-cert/--tls-key``: the server speaks wss:// with the given
certificate, and a plain ws:// client cannot talk to it."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest

from hello_tui.signaling import protocol as p
from tests.certs import tls_server


async def test_wss_with_the_given_certificate(tmp_path: Path) -> None:
    async with tls_server(tmp_path) as (url, cert):
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
