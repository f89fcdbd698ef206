"""The signaling client (websockets) and the telemetry POST (asyncio streams)
over TLS to the real server's wss: the user's CA settings (``SSL_CERT_FILE``)
are what makes a self-signed server trusted, and without them each fails in
one line, never connecting in the clear."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hello_tui.signaling.client import ServerUnreachable, SignalingClient
from hello_tui.telemetry.sender import post_status
from tests.certs import tls_server as serving_tls


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """(https URL, the certificate that signs it) of a server on an ephemeral port."""
    async with serving_tls(tmp_path) as served:
        yield served


async def test_wss_is_trusted_through_the_users_ca_file(
    tls_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_server
    client = SignalingClient(reconnect=None)
    with pytest.raises(ServerUnreachable) as untrusted:
        await client.connect(url)
    assert str(untrusted.value).endswith(": TLS certificate not trusted")
    with pytest.raises(ssl.SSLCertVerificationError):
        await post_status(url + "/telemetry", b"{}")

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # what a user with a private CA sets
    welcome = await client.connect(url)
    assert client.url == url.replace("https://", "wss://") + "/ws" and welcome.session
    await client.close()
    # Reached over TLS: the server answers the (empty, so refused) report itself.
    assert await post_status(url + "/telemetry", b"{}") == 400
