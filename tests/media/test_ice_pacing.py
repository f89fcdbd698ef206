"""ICE checks paced at 5 ms (``aiortc_adapter.pace_checks``): four per aioice tick.

aioice's own ``_check_periodic`` runs, on a real ``Connection`` of a real
peer connection; only the start of each check is recorded instead of sent.
"""

from __future__ import annotations

from types import SimpleNamespace

from aioice.ice import CandidatePair
from aiortc import RTCPeerConnection

from hello_tui.media import aiortc_adapter as ad

State = CandidatePair.State


async def test_each_tick_starts_four_checks_in_aioices_order() -> None:
    pc = ad.pace_checks(RTCPeerConnection())
    transceiver = pc.addTransceiver("audio")
    connection = transceiver.receiver.transport.transport._connection
    assert "_check_periodic" in vars(connection)  # shadowed on this instance only
    pairs = [SimpleNamespace(state=State.FROZEN, name=i) for i in range(6)]
    pairs[2].state = State.WAITING  # aioice starts a waiting pair before frozen ones
    started: list[int] = []

    def start(pair: SimpleNamespace) -> None:
        pair.state = State.IN_PROGRESS
        started.append(pair.name)

    connection._check_list = pairs
    connection.check_start_task = start
    assert connection._check_periodic() is True
    assert started == [2, 0, 1, 3]  # one tick: four checks, aioice's choice each time
    assert connection._check_periodic() is True
    assert started == [2, 0, 1, 3, 4, 5]  # the rest; nothing left to start
    connection._check_list = []
    await pc.close()


async def test_a_plain_connection_keeps_aioices_pace() -> None:
    pc = RTCPeerConnection()
    connection = pc.addTransceiver("audio").receiver.transport.transport._connection
    assert "_check_periodic" not in vars(connection)
    await pc.close()


async def test_once_every_pair_started_the_tick_says_so_at_once() -> None:
    """No more remote candidates expected and every pair started: the tick that
    started the last one returns False (aioice's own answer), so ``connect()``
    waits for the result now, not after one more 20 ms sleep, on both sides."""
    pc = ad.pace_checks(RTCPeerConnection())
    connection = pc.addTransceiver("audio").receiver.transport.transport._connection
    pairs = [SimpleNamespace(state=State.WAITING, name=0)]  # one host pair: loopback

    def start(pair: SimpleNamespace) -> None:
        pair.state = State.IN_PROGRESS

    connection._check_list = pairs
    connection.check_start_task = start
    connection._remote_candidates_end = True  # a full SDP: no trickle
    assert connection._check_periodic() is False
    assert pairs[0].state == State.IN_PROGRESS  # started all the same
    connection._check_list = []
    await pc.close()
