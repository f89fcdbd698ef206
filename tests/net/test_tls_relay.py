"""Only TCP to port 443 gets out of the caller's home: the call must relay over
TURN/TLS (``turns:`` on 443), the last resort of a locked-down network.

aioice 0.13 speaks TLS to the TURN server itself (``create_turn_endpoint(ssl=...)``,
asyncio's default context: the home trusts the run's self-signed certificate
through ``SSL_CERT_FILE``, issued for the public IP). The only TURN URL this
home can reach is ``turns:…:443``, so a relayed call here went over TLS."""

from __future__ import annotations

from pathlib import Path

from tests.net.conftest import World
from tests.net.services import SERVER_PORT, TURNS_PORT
from tests.net.test_relay_calls import relay_call


def test_only_tls_on_443_the_call_relays_over_turns(world: World, tmp_path: Path) -> None:
    # The rendezvous server stays reachable: here it listens on its own port of the
    # public address (deployed, it is wss on 443 of its own host).
    world.net.block_udp(1, tcp_only_to=(TURNS_PORT, SERVER_PORT))
    try:
        alice_end, bob_end = relay_call(world, tmp_path)
        assert world.net.dropped(1) > 0  # UDP and TCP 3478 were tried, and dropped
    finally:
        world.net.unblock(1)
    assert alice_end["quality"]["candidate_type"] == "relay"
    assert bob_end["quality"]["candidate_type"] == "relay"
