"""ICE checks paced at 5 ms (``aiortc_adapter.pace_checks``): four per aioice tick.

The tick runs on a real ``Connection`` of a real peer connection; the start of
each check is recorded instead of sent, the way aioice 0.13 starts one: the
pair gets its task and stays Waiting (or Frozen) until the task runs.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aioice import Candidate
from aioice.ice import CandidatePair, Connection
from aiortc import RTCPeerConnection

from hello_tui.media import aiortc_adapter as ad

State = CandidatePair.State


def _pair(name: int, state: State) -> SimpleNamespace:
    return SimpleNamespace(state=state, name=name, task=None)


def _recording(started: list[int]) -> Any:
    def start(pair: SimpleNamespace) -> None:  # aioice 0.13: a task, the state unchanged
        if pair.task is None:
            pair.task = object()
            started.append(pair.name)

    return start


async def test_each_tick_starts_four_checks_in_aioices_order() -> None:
    pc = ad.pace_checks(RTCPeerConnection())
    transceiver = pc.addTransceiver("audio")
    connection = transceiver.receiver.transport.transport._connection
    assert "_check_periodic" in vars(connection)  # shadowed on this instance only
    pairs = [_pair(i, State.FROZEN) for i in range(6)]
    pairs[2].state = State.WAITING  # aioice starts a waiting pair before frozen ones
    started: list[int] = []
    connection._check_list = pairs
    connection.check_start_task = _recording(started)
    assert connection._check_periodic() is True
    assert started == [2, 0, 1, 3]  # one tick: four checks, aioice's choice each time
    assert connection._check_periodic() is True
    assert started == [2, 0, 1, 3, 4, 5]  # the rest; remote candidates may still come
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
    waits for the result now, not after one more 20 ms sleep, on both sides, even
    though the pair is still Waiting (its task has not run yet)."""
    pc = ad.pace_checks(RTCPeerConnection())
    connection = pc.addTransceiver("audio").receiver.transport.transport._connection
    pairs = [_pair(0, State.WAITING)]  # one host pair: loopback
    started: list[int] = []
    connection._check_list = pairs
    connection.check_start_task = _recording(started)
    connection._remote_candidates_end = True  # a full SDP: no trickle
    assert connection._check_periodic() is False
    assert started == [0]  # started all the same
    connection._check_list = []
    await pc.close()


async def test_aioice_starts_a_check_as_a_task_the_pair_still_waiting() -> None:
    """What the tick relies on, on aioice's own code: ``check_start_task`` gives the
    pair its task and leaves its state; the check itself runs later. If an aioice
    upgrade changes that, this fails (and the tick's notion of "started" needs a look)."""
    connection = Connection(ice_controlling=True)
    connection.remote_username, connection.remote_password = "u" * 4, "p" * 22

    def candidate(port: int) -> Candidate:
        return Candidate(
            foundation=str(port), component=1, transport="udp", priority=1,
            host="127.0.0.1", port=port, type="host",
        )  # fmt: skip

    async def request(*args: Any, **kwargs: Any) -> Any:
        await asyncio.Event().wait()  # never answered: only the start is looked at

    protocol = SimpleNamespace(local_candidate=candidate(1), request=request)
    pair = CandidatePair(protocol, candidate(9))
    connection.check_state(pair, State.WAITING)
    connection.check_start_task(pair)
    assert pair.task is not None and pair.state == State.WAITING
    await asyncio.sleep(0)
    assert pair.state == State.IN_PROGRESS
    pair.task.cancel()


async def test_a_loopback_call_checks_without_a_pacing_sleep() -> None:
    """Two real peer connections over loopback (one host pair each way): on both
    sides the first tick starts the only check and tells ``connect()`` to wait for
    the result, so no 20 ms sleep sits between the check's answer and DTLS."""
    offerer, answerer = ad.pace_checks(RTCPeerConnection()), ad.pace_checks(RTCPeerConnection())
    ticks: dict[str, list[bool]] = {"offerer": [], "answerer": []}

    def count(name: str, pc: RTCPeerConnection) -> None:
        connection = pc.getTransceivers()[0].receiver.transport.transport._connection
        tick = connection._check_periodic

        def counted() -> bool:
            more = bool(tick())
            ticks[name].append(more)
            return more

        connection._check_periodic = counted

    offerer.addTransceiver("audio")
    count("offerer", offerer)
    await offerer.setLocalDescription(await offerer.createOffer())
    await answerer.setRemoteDescription(offerer.localDescription)
    count("answerer", answerer)
    await answerer.setLocalDescription(await answerer.createAnswer())
    await offerer.setRemoteDescription(answerer.localDescription)
    try:
        async with asyncio.timeout(20):
            while not (offerer.connectionState == answerer.connectionState == "connected"):
                await asyncio.sleep(0.01)
    finally:
        await offerer.close()
        await answerer.close()
    assert ticks == {"offerer": [False], "answerer": [False]}
