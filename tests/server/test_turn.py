"""TURN REST credentials: only for logged-in sessions, only when configured,
verifiable by a TURN server holding the shared secret, never naming the user."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

from hello_tui.signaling import protocol as p
from tests.conftest import Result
from tests.server.conftest import StartServer


async def test_logged_in_session_gets_time_limited_credentials(
    start_server: StartServer,
) -> None:
    srv = await start_server(turn_secret=b"s3cret", turn_urls=("turn:127.0.0.1:3478",),
                             turn_ttl=600)  # fmt: skip
    client = await srv.client()
    assert client.session
    await client.register("alice@example.org")
    reply = await client.login("alice@example.org")
    assert isinstance(reply, p.LoggedIn)
    [ice] = reply.ice
    assert ice.urls == ["turn:127.0.0.1:3478"]
    expiry, user = ice.username.split(":", 1)
    # Names nobody: not the account, not the session, and new at every login.
    assert user != client.session and "alice" not in ice.username and len(user) >= 16
    assert 590 <= int(expiry) - srv.clock() <= 610
    expected = hmac.new(b"s3cret", ice.username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(ice.credential) == expected
    again = await client.login("alice@example.org")
    assert isinstance(again, p.LoggedIn) and again.ice[0].username.split(":", 1)[1] != user


async def test_credentials_are_short_lived_by_default(start_server: StartServer) -> None:
    srv = await start_server(turn_secret=b"s3cret", turn_urls=("turn:127.0.0.1:3478",))
    client = await srv.client()
    await client.register("carol@example.org")
    reply = await client.login("carol@example.org")
    assert isinstance(reply, p.LoggedIn)
    expiry = int(reply.ice[0].username.split(":", 1)[0])
    assert expiry - srv.clock() <= 2 * 3600 + 5  # was 24 h; not revocable, so short


async def test_no_turn_without_configuration_or_login(start_server: StartServer) -> None:
    srv = await start_server()
    client = await srv.client()
    await client.register("bob@example.org")
    reply = await client.login("bob@example.org")
    assert isinstance(reply, p.LoggedIn) and reply.ice == []
    configured = await start_server(turn_secret=b"x", turn_urls=("turn:127.0.0.1:3478",))
    anonymous = await configured.raw()
    welcome = await anonymous.hello()
    assert welcome.ice == []


def test_turn_flags(cli: Callable[..., Result], tmp_path: object) -> None:
    r = cli("serve", "--turn-url", "turn:127.0.0.1:3478")
    assert r.code == 1 and "--turn-secret-file" in r.err
    r = cli("serve", "--turn-url", "stun:127.0.0.1", "--turn-secret-file", "/nonexistent")
    assert r.code == 1 and "turn: or turns:" in r.err
    r = cli("serve", "--turn-url", "turn:127.0.0.1", "--turn-secret-file", "/nonexistent")
    assert r.code == 1 and "/nonexistent" in r.err
