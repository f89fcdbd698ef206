"""A new transport within a connected call: the call outlives its network path.

aiortc 1.16 has no ICE restart, so when the path is gone (no audio for
:data:`~hello_tui.call.media_watch.RENEW_AFTER` seconds, or our own network
changed) the call builds a **new peer connection** and negotiates it through
the server with ``renew-offer`` / ``renew-answer`` (v2), keeping everything
else: the call id, the source and the sink (re-attached), the chat and share
channels (re-created with the same negotiated ids), the quality samples, the
event stream. The old connection is dropped once the new one is negotiated.

Who renews: the side whose own network changed, at once (it knows first);
and the side that made the call's offer (the caller; in a room, the later
arrival) when the audio stops. Two rounds crossing: the call's offerer keeps
its own, the other side drops its own and answers. A side answers each round
it is sent, and answers a round again when it is sent again (an answer lost
while a side reconnected to the server). A round is sent again every
:data:`RESEND_AFTER` seconds until it is answered or the call ends (the media
watch's budget, inside 10 s). docs/calls.md, "A new
transport within the call", has the rest (the check code, the server side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from hello_tui.media import aiortc_adapter
from hello_tui.signaling import protocol as p
from hello_tui.signaling.errors import SignalingClientError, SignalingError

if TYPE_CHECKING:
    from hello_tui.call.call import Call

__all__ = ["ADDRESS_POLL", "RESEND_AFTER", "ROUND_STALE", "Renewal", "watch_addresses"]

log = logging.getLogger("hello_tui.call.engine")  # the name the log files have always shown

RESEND_AFTER = 2.0  # s: a renew-offer not answered by then is sent again (the same round)
ADDRESS_POLL = 0.5  # s between two looks at the interface addresses during a call
ROUND_STALE = 10.0  # s: a round still not connected by then (the old path came back) is over


class Renewal:
    """One call's transport renewals: our rounds, and the answers to the other side's."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.round = 0  # the last round started or answered (rounds only go up)
        self.active = False  # a round is under way: its connection has not connected yet
        self.started: float | None = None  # monotonic: when the round under way started
        self._mine: tuple[int, asyncio.Future[str]] | None = None  # our round, its answer
        self._answered: tuple[int, str] | None = None  # our last answer (round, sdp)
        self._lock = asyncio.Lock()

    def possible(self) -> bool:
        """The server can carry a renewal: the call is connected, known to it, v2."""
        call = self.call
        return (
            call.ended is None
            and call.stage == "connected"
            and bool(call.call_id)
            and not call.server_forgot
            and call.client.version >= 2
        )

    # ------------------------------------------------------------ offering
    async def offer(self, cause: str, *, again: bool = False, local: bool = False) -> None:
        """Renew the transport: the call's offerer when the audio stops, either side
        at once when its own network changed (``local``). One round at a time,
        unless ``again``: the network changed once more, so the round under way
        offered what is gone (its loop stops; the new round replaces its connection)."""
        call = self.call
        if not self.possible() or not (call.offerer or local):
            return
        stale = self.started is not None and time.monotonic() - self.started > ROUND_STALE
        if self.active and not again and not stale:
            return
        self.active, self.started = True, time.monotonic()
        self.round += 1
        round_ = self.round
        answered: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        mine = self._mine = (round_, answered)
        log.info("call %s: renewing the transport (round %d, %s)", call.call_id[:6], round_, cause)
        call._renewing(True)
        try:
            made = await call._renew_offer(round_)
        except Exception:  # no transport to offer: the media watch ends the call, in words
            log.warning("call %s: renewal failed", call.call_id[:6], exc_info=True)
            return
        if made is None:  # a newer round took over
            return
        pc, sdp = made
        while call.ended is None and not answered.done() and self._mine is mine:
            if call.server_forgot:  # no server to carry it: the media watch decides
                return
            if call.server_gone and call.is_room:  # sent once our seat is back (a direct
                await asyncio.sleep(0.25)  # call's party is taken back by the round itself)
                continue
            try:
                await call.client.request(
                    p.RenewOffer(call_id=call.call_id, round=round_, sdp=sdp),
                    timeout=RESEND_AFTER,
                )
            except SignalingError as exc:  # refused: too many, or the call is unknown
                log.info("call %s: renewal refused (%s)", call.call_id[:6], exc.code)
                return  # the media watch ends the call, in words
            except SignalingClientError:  # reconnecting, or no answer yet: send it again
                await asyncio.sleep(0.25)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(answered), RESEND_AFTER)
        if answered.done() and call.ended is None and self._mine is mine:
            await call._renew_answered(pc, answered.result())

    def take_answer(self, msg: p.RenewAnswer) -> None:
        mine = self._mine
        if mine is not None and mine[0] == msg.round and not mine[1].done():
            mine[1].set_result(msg.sdp)

    # ------------------------------------------------------------ answering
    async def answer(self, msg: p.RenewOffer) -> None:
        """Answer a round (again, if it is sent again); older rounds are ignored.
        Two rounds crossing: the call's offerer keeps its own and ignores the
        other's; the other side drops its own and answers."""
        call = self.call
        async with self._lock:
            if self._answered is not None and self._answered[0] == msg.round:
                sdp = self._answered[1]
            elif self._mine is not None and call.offerer:
                return  # ours wins: the other side answers it
            elif msg.round >= self.round and call.ended is None and call.stage == "connected":
                log.info("call %s: the other side renews the transport (round %d)",
                         call.call_id[:6], msg.round)  # fmt: skip
                started = time.monotonic()
                call._renewing(True)  # gathering may take seconds: hold the end off now
                try:
                    sdp = await call._renew_answer(msg.round, msg.sdp)
                except Exception as exc:  # unusable: the call goes on as it is
                    log.warning("call %s: cannot answer the renewal: %s", call.call_id[:6], exc)
                    call._renewing(self.active)
                    return
                self._mine = None  # a round of ours, crossing this one, is dropped
                self.round = msg.round
                self.active, self.started = True, started
                self._answered = (msg.round, sdp)
            else:
                return
        reply = p.RenewAnswer(call_id=call.call_id, round=msg.round, sdp=sdp)
        with contextlib.suppress(SignalingClientError):  # the offerer sends the round again
            await call.client.request(reply, timeout=RESEND_AFTER)  # (a refusal included)

    # ------------------------------------------------------------ both
    def connected(self) -> float | None:
        """The round's connection is up: seconds since the round started (None: no round)."""
        if not self.active:
            return None
        self.active = False
        self._mine = None
        return round(time.monotonic() - (self.started or time.monotonic()), 3)


async def watch_addresses(call: Call) -> None:
    """Look at the interface addresses while the call lasts: a change (an interface
    gone or new, an address moved) is a network change (``Call._network_changed``)."""
    before = aiortc_adapter.interface_addresses()
    while call.ended is None:
        await asyncio.sleep(ADDRESS_POLL)
        now = aiortc_adapter.interface_addresses()
        if now != before and now:  # none at all: mid-change, nothing to offer yet
            before = now
            call._network_changed()
