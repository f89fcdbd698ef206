"""A lossy UDP relay on 127.0.0.1 between two WebRTC peers (tests and benchmarks).

The peers reach each other only through it: their SDP is rewritten on the
way (:meth:`LossyRelay.rewrite_offer` / :meth:`rewrite_answer`) so that each
one's host candidate names a relay port instead of the real one. The relay
has one socket per side:

    A ──▶ side_a (A's view of B) ──drop/delay──▶ from side_b to B
    B ──▶ side_b (B's view of A) ──drop/delay──▶ from side_a to A

Everything is relayed (STUN checks, DTLS, SRTP, SRTCP) and everything is
subject to loss, as with ``tc netem``. Drops are drawn from a seeded
``random.Random`` per direction; ``delay`` and ``jitter`` (seconds, uniform
0..jitter on top) are added per packet, so jitter can reorder.

    relay = await LossyRelay.start(loss=0.05, seed=1)
    offer = relay.rewrite_offer(offer_sdp)     # A's SDP, as B will see it
    answer = relay.rewrite_answer(answer_sdp)  # B's SDP, as A will see it
    ...
    relay.stats  # per direction: forwarded, dropped
    relay.set(loss=0.05, delay=0.1)            # conditions change at runtime, mid-call
    relay.close()

Changes apply to every packet received from then on (one already waiting
for its delay keeps the delay it was given), both directions alike.

:func:`relay_phones` hooks a relay into two :class:`~hello_tui.signaling.client.SignalingClient`
objects (the caller's ``call`` and the callee's ``answer``).
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"
_CANDIDATE = re.compile(r"^(a=candidate:\S+ \d+ udp \d+ )(\S+) (\d+)( typ host.*)$", re.I | re.M)
_MLINE = re.compile(r"^(m=audio |m=video |m=application )(\d+)", re.M)


@dataclass
class DirectionStats:
    forwarded: int = 0
    dropped: int = 0

    @property
    def loss(self) -> float:
        total = self.forwarded + self.dropped
        return self.dropped / total if total else 0.0


@dataclass
class _Side(asyncio.DatagramProtocol):
    relay: LossyRelay
    name: str  # "a" or "b": the peer that sends to this socket
    transport: asyncio.DatagramTransport | None = None
    rng: random.Random = field(default_factory=random.Random)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.relay._forward(self, data)


class LossyRelay:
    def __init__(self, loss: float, delay: float, jitter: float, seed: int) -> None:
        self.loss = loss
        self.delay = delay
        self.jitter = jitter
        self.seed = seed
        self.a: _Side = _Side(self, "a", rng=random.Random(seed * 2 + 1))
        self.b: _Side = _Side(self, "b", rng=random.Random(seed * 2 + 2))
        self.peer_a: tuple[str, int] | None = None  # A's real address (from its SDP)
        self.peer_b: tuple[str, int] | None = None
        self.stats = {"a->b": DirectionStats(), "b->a": DirectionStats()}
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def start(
        cls, loss: float = 0.0, *, delay: float = 0.0, jitter: float = 0.0, seed: int = 0
    ) -> LossyRelay:
        relay = cls(loss, delay, jitter, seed)
        loop = relay._loop
        await loop.create_datagram_endpoint(lambda: relay.a, local_addr=(HOST, 0))
        await loop.create_datagram_endpoint(lambda: relay.b, local_addr=(HOST, 0))
        return relay

    def set(
        self,
        *,
        loss: float | None = None,
        delay: float | None = None,
        jitter: float | None = None,
    ) -> None:
        """Change the conditions now (``None`` keeps a value): loss 0..1, delay and
        jitter in seconds."""
        if loss is not None:
            if not 0.0 <= loss <= 1.0:
                raise ValueError(f"loss must be within 0..1, not {loss}")
            self.loss = loss
        if delay is not None:
            self.delay = max(0.0, delay)
        if jitter is not None:
            self.jitter = max(0.0, jitter)

    def port(self, side: _Side) -> int:
        assert side.transport is not None
        return int(side.transport.get_extra_info("sockname")[1])

    # ------------------------------------------------------------------ SDP
    def _rewrite(self, sdp: str, port: int) -> tuple[str, tuple[str, int]]:
        found = _CANDIDATE.search(sdp)
        if found is None:
            raise ValueError("no UDP host candidate in the SDP")
        real = (found.group(2), int(found.group(3)))
        sdp = _CANDIDATE.sub(lambda m: f"{m.group(1)}{HOST} {port}{m.group(4)}", sdp)
        sdp = _MLINE.sub(lambda m: f"{m.group(1)}{port}", sdp)
        return sdp, real

    def rewrite_offer(self, sdp: str) -> str:
        """A's SDP as B must see it: A's candidate becomes side_b's port."""
        sdp, self.peer_a = self._rewrite(sdp, self.port(self.b))
        return sdp

    def rewrite_answer(self, sdp: str) -> str:
        """B's SDP as A must see it: B's candidate becomes side_a's port."""
        sdp, self.peer_b = self._rewrite(sdp, self.port(self.a))
        return sdp

    # ------------------------------------------------------------------ relay
    def _forward(self, side: _Side, data: bytes) -> None:
        if side is self.a:
            out, dest, stats = self.b, self.peer_b, self.stats["a->b"]
        else:
            out, dest, stats = self.a, self.peer_a, self.stats["b->a"]
        if dest is None or out.transport is None:
            return
        if side.rng.random() < self.loss:
            stats.dropped += 1
            return
        stats.forwarded += 1
        wait = self.delay + (side.rng.uniform(0, self.jitter) if self.jitter else 0.0)
        if wait <= 0:
            out.transport.sendto(data, dest)
        else:
            self._loop.call_later(wait, self._send_later, out, data, dest)

    @staticmethod
    def _send_later(out: _Side, data: bytes, dest: tuple[str, int]) -> None:
        if out.transport is not None and not out.transport.is_closing():
            out.transport.sendto(data, dest)

    def close(self) -> None:
        for side in (self.a, self.b):
            if side.transport is not None:
                side.transport.close()


def relay_phones(relay: LossyRelay, caller_client: Any, callee_client: Any) -> None:
    """Route a call placed by ``caller_client`` to ``callee_client`` through ``relay``:
    their outgoing SDP (``call`` offer, ``answer``) is rewritten on these two objects."""
    original_call = caller_client.call
    original_answer = callee_client.answer

    async def call(to: str, sdp: str, *args: Any, **kwargs: Any) -> Any:
        return await original_call(to, relay.rewrite_offer(sdp), *args, **kwargs)

    async def answer(call_id: str, sdp: str, *args: Any, **kwargs: Any) -> Any:
        return await original_answer(call_id, relay.rewrite_answer(sdp), *args, **kwargs)

    caller_client.call = call
    callee_client.answer = answer
