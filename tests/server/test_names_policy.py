"""The server's name policy (issue 10, item 2): hostile names refused ``bad-name``,
look-alikes of taken or reserved names refused ``name-taken``, never a crash."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from hello_tui.server.app import create_app
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store import MemoryStore
from hello_tui.signaling import protocol as p
from hello_tui.signaling.names import MAX_NAME_BYTES, valid_name
from tests.server.conftest import FAST, Client, Running


async def _register(client: Client, name: str) -> p.Message:
    ref = client.next_ref()
    await client.send(p.Register(name=name, public_key=client.public_key, ref=ref))
    reply = await client.recv()
    assert reply.ref == ref
    return reply


@pytest.mark.parametrize(
    "name",
    ["Mum\nYour Bank", "\x1b[2Jmum", "\u202emum", "m\u200bum", " mum", "m  um", "\u3164", "x" * 81],
)
async def test_hostile_names_are_refused(srv: Running, name: str) -> None:
    client = await srv.client()
    reply = await _register(client, name)
    assert isinstance(reply, p.Error) and reply.code == "bad-name"
    assert "\n" not in reply.message
    await client.send(p.Login(name=name, ref=99))  # nobody signs in under one either
    await client.error("bad-name", ref=99)


@pytest.mark.parametrize(
    "look_alike",
    [
        "MUM@example.org",
        "mum@\u0435xample.org",  # Cyrillic е
        "\u041cUM@example.org",  # Cyrillic М
        "rnum@example.org",
        "mum@examp1e.org",
        "ｍｕｍ@example.org",  # fullwidth
    ],
)
async def test_look_alikes_of_a_taken_name_are_taken(srv: Running, look_alike: str) -> None:
    await srv.client("mum@example.org")
    mallory = await srv.client()
    reply = await _register(mallory, look_alike)
    assert isinstance(reply, p.Error) and reply.code == "name-taken"
    assert "too close" in reply.message


@pytest.mark.parametrize("look_alike", ["ECHO", "\u0435cho", "ech\u043e", "\u0435\u0441h\u043e"])
async def test_the_echo_name_is_protected_from_look_alikes(srv: Running, look_alike: str) -> None:
    mallory = await srv.client()
    reply = await _register(mallory, look_alike)
    assert isinstance(reply, p.Error) and reply.code == "name-taken"


async def test_callees_see_the_normalised_name(srv: Running) -> None:
    bob = await srv.client("bob")
    alice = await srv.client()
    await alice.account("Ａlice")  # fullwidth: shown as NFKC "Alice"
    await alice.send(p.Call(to="BOB", offer="v=0\r\n", ref=5))
    await alice.expect(p.CallCreated)
    incoming = await bob.expect(p.Incoming)
    assert incoming.caller == "Alice"


hostile = st.one_of(
    st.text(min_size=1, max_size=80),
    st.text(st.sampled_from("mum@example.org\x1b\n\u202e\u200b\u0435\u041c[]/ "), min_size=1),
).filter(lambda name: len(name.encode("utf-8", "surrogatepass")) <= MAX_NAME_BYTES)


async def _register_all(names: list[str]) -> None:
    """One server, one connection per account made: every name gets an answer."""
    server = TestServer(create_app(ServerSettings(**FAST), MemoryStore()), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:

            async def connect() -> Client:
                client = Client(await http.ws_connect(str(server.make_url("/ws"))))
                await client.hello()
                return client

            client = await connect()
            for name in names:
                reply = await _register(client, name)
                if isinstance(reply, p.Ok):
                    assert valid_name(name)
                    await client.close()
                    client = await connect()  # a new device for the next name
                else:
                    assert isinstance(reply, p.Error)
                    assert reply.code in ("bad-name", "name-taken")
                    assert (reply.code == "bad-name") == (not valid_name(name))
            await client.send(p.RoomList(ref=7))  # the session still answers
            await client.expect(p.Rooms, ref=7)
            await client.close()
    finally:
        await server.close()


@settings(max_examples=60, deadline=None)
@given(names=st.lists(hostile, min_size=1, max_size=8))
def test_fuzz_register_refuses_or_normalises(names: list[str]) -> None:
    asyncio.run(_register_all(names))
