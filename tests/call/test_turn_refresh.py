"""A direct call holding TURN credentials near their end asks the server for fresh
ones first (``call-turn``), on both sides, and keeps its own non-expiring entries."""

from __future__ import annotations

import time

from aiortc import RTCIceServer

from hello_tui.call import events as ev
from tests.call.conftest import StartEnv, T

# Nothing listens on port 1: relay gathering fails at once (refused), host pairs connect.
DEAD_TURN = "turn:127.0.0.1:1?transport=tcp"


async def test_stale_login_credentials_are_refreshed_per_call(start_env: StartEnv) -> None:
    env = await start_env(turn_secret=b"s3cret", turn_urls=(DEAD_TURN,), turn_ttl=7200)
    stale = RTCIceServer(DEAD_TURN, f"{int(time.time()) + 120}:old", "x")  # 2 min left
    # From the config, kept as it is: a TURN entry with a plain (non-expiring)
    # username; over TCP to a dead port, so it fails at once (a STUN server that
    # never answers holds gathering for its whole retransmission timeout).
    own = RTCIceServer(DEAD_TURN, "me", "pw")
    alice = await env.phone("alice", ice_servers=[own, stale])
    bob = await env.phone("bob", ice_servers=[own, stale])
    call = alice.dial("bob", audio_in="sine:440", audio_out="null:")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Connected, T)
    await incoming.wait_for(ev.Connected, T)
    for side in (call, incoming):
        servers = side.options.ice_servers
        assert servers[0] is own and stale not in servers, servers
        [fresh] = servers[1:]
        expiry = int(str(fresh.username).split(":", 1)[0])
        assert expiry - time.time() > 7000  # a whole lifetime from this call
    await call.hangup()
    await incoming.wait_ended(T)
