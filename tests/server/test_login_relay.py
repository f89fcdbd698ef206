"""A link cannot take over an account: logins are bound to the server dialled.

The audit's attack (issue 10, item 1): a room link names a hostile server; the
client signs in there; the hostile server relays the real server's challenge
and the user's proof and is then signed in as the user on the real server.
Here the hostile server is a real WebSocket relay on another loopback port,
forwarding every frame both ways to the real server, with whatever ``Host``
header it likes. The proof it relays names *its* origin, so the real server
refuses it and the relay's upstream connection stays anonymous.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from hello_tui.signaling import protocol as p
from hello_tui.signaling.client import SignalingClient, SignalingError
from hello_tui.signaling.identity import generate_key
from tests.server.conftest import Running, StartServer, b64
from tests.services.ws_relay import relay_to


async def register(srv: Running, name: str) -> object:
    key = generate_key()
    async with SignalingClient(reconnect=None) as client:
        await client.connect(srv.url("/"))
        await client.register(name, key)
        await client.login(name, key)  # dialled directly: accepted (the test can fail)
    return key


@pytest.mark.parametrize("host_header", [None, "evil.example", "RELAY"])
async def test_a_relayed_login_is_refused(
    start_server: StartServer, host_header: str | None
) -> None:
    srv = await start_server()
    key = await register(srv, "alice@example.org")
    async with relay_to(srv.url("/ws"), host_header) as relay:
        if host_header == "RELAY":  # claim to be the relay itself
            assert relay.server is not None
            relay.host_header = f"127.0.0.1:{relay.server.port}"
        async with SignalingClient(reconnect=None) as victim:
            await victim.connect(relay.url)
            with pytest.raises(SignalingError) as refused:
                await victim.login("alice@example.org", key)  # type: ignore[arg-type]
            assert refused.value.code == "wrong-server"
        # The proof did pass through the relay: the server saw it and said no.
        assert relay.sent("login-proof")
        # The relay's own connection is still anonymous: it cannot delete the account.
        await asyncio.wait_for(relay.finished.wait(), 10)
        assert relay.upstream is not None
        await relay.upstream.send_str(p.encode(p.AccountDelete(ref=99)).decode())
        while True:
            reply = p.decode_server((await relay.upstream.receive(timeout=5)).data)
            if reply.ref == 99:
                break
        assert isinstance(reply, p.Error) and reply.code == "auth-required"
    # The account is untouched: its owner still signs in directly.
    async with SignalingClient(reconnect=None) as client:
        await client.connect(srv.url("/"))
        assert (await client.login("alice@example.org", key)).name == "alice@example.org"  # type: ignore[arg-type]


async def test_public_url_and_aliases_are_accepted_other_origins_are_not(
    start_server: StartServer,
) -> None:
    srv = await start_server(
        public_url="https://hello.example.org", aliases=("http://hello.lan:8080",)
    )
    alice = await srv.client()
    await alice.register("alice")
    for origin, accepted in [
        ("https://hello.example.org", True),  # behind a proxy: the operator's name
        ("http://hello.lan:8080", True),
        ("https://hello.example.org:8443", False),
        ("http://evil.example", False),
        ("http://127.0.0.1:1", False),  # this host, another port (another server)
    ]:
        await alice.send(p.Login(name="alice", ref=alice.next_ref()))
        challenge = await alice.expect(p.Challenge)
        signature = alice.key.sign(p.login_payload(challenge.nonce, alice.session, origin))
        await alice.send(p.LoginProof(signature=b64(signature), origin=origin))
        reply = await alice.recv()
        if accepted:
            assert isinstance(reply, p.LoggedIn), (origin, reply)
        else:
            assert isinstance(reply, p.Error) and reply.code == "wrong-server", (origin, reply)


async def test_a_proof_naming_the_right_origin_with_the_wrong_payload_fails(
    srv: Running,
) -> None:
    """The origin field cannot be swapped after signing: the signature covers it."""
    alice = await srv.client()
    await alice.register("alice")
    await alice.send(p.Login(name="alice", ref=1))
    challenge = await alice.expect(p.Challenge)
    signed_for = "http://evil.example"
    signature = alice.key.sign(p.login_payload(challenge.nonce, alice.session, signed_for))
    await alice.send(p.LoginProof(signature=b64(signature), origin=alice.origin, ref=2))
    await alice.error("bad-signature", ref=2)


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1"])
async def test_browser_origin_is_not_taken_from_the_host_header(srv: Running, host: str) -> None:
    """DNS rebinding: a page at evil.example whose name now points here sends
    ``Origin`` and ``Host`` of evil.example; the server's own name is not that."""
    port = srv.server.port
    headers = {"Origin": f"http://{host}:{port}", "Host": f"{host}:{port}"}
    if host == "evil.example":
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await srv.raw(headers=headers)
        assert info.value.status == 403
    else:
        client = await srv.raw(headers=headers)
        await client.hello()
