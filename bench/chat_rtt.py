#!/usr/bin/env python3
"""Chat over the data channel: latency, a burst of 1,000, a flood, and the audio meanwhile.

Bars (docs/benchmarks.md, issue 15): chat send → the other side's event,
loopback via the server, median ≤ 50 ms; 1,000 messages in a burst delivered
in order with no audio gap > 100 ms during it.

One process: the embedded server (the real aiohttp app on 127.0.0.1, echo
off), three logged-in phones (real ``SignalingClient`` + ``Phone``), real
aiortc calls (ICE on 127.0.0.1, DTLS-SRTP, Opus ``sine:440`` both ways).
Times are taken by a ``CallListener`` (called synchronously as each event is
emitted). Audio: each side's sink notes when each decoded frame arrives; the
longest interval between two frames during the burst is the audio gap (20 ms
when nothing stalls).

1. **Latency**: alice ↔ bob, ``--rounds`` round trips paced at 4 a second
   (inside the default 5/s limit): one way (send → bob's ``chat`` event) and
   round trip (→ bob's reply at alice).
2. **Burst**: 1,000 messages sent at once on the same call. The rate bound
   (5/s, bursts of 20, per direction) guards against a flood from the
   network; a script that means to send 1,000 lifts it on both ends
   (``CallOptions(chat_limits=ChatLimits.unlimited())``, as here). Delivery
   in order is checked message by message.
3. **Flood**: alice (unlimited) floods carol (default limits) with 1,000:
   what carol keeps, drops, and tells (notices), and her audio meanwhile.

    .venv/bin/python bench/chat_rtt.py [--rounds 40] [--burst 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hello_tui.call import events as ev
from hello_tui.call.chat import ChatLimits
from hello_tui.call.engine import Call, CallListener, CallOptions, Phone
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key
from tests.arrivals import ArrivalSink

RTT_BAR_MS = 50.0
GAP_BAR_MS = 100.0
T = 30.0


@dataclass
class Chats(CallListener):
    """Every chat event of a phone's calls, with the instant it was emitted."""

    got: list[tuple[float, ev.ChatMessage]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def call_event(self, call: Call, event: ev.CallEvent) -> None:
        if isinstance(event, ev.ChatMessage) and event.sender == "remote":
            self.got.append((time.perf_counter(), event))
            self.wake.set()
        elif isinstance(event, ev.Notice) and event.source == "chat":
            self.notices.append(event.text)

    async def until(self, n: int, timeout: float = T) -> None:
        async with asyncio.timeout(timeout):
            while len(self.got) < n:
                self.wake.clear()
                await self.wake.wait()


async def _phone(url: str, name: str, limits: ChatLimits) -> tuple[Phone, Chats]:
    client = SignalingClient(reconnect=None)
    await client.connect(url)
    key = generate_key()
    await client.register(name, key)
    await client.login(name, key)
    opts = CallOptions(audio_in="sine:440", audio_out="null:", host_addresses=LOOPBACK,
                       chat_limits=limits, quality_interval=None)  # fmt: skip
    phone = Phone(client, opts)
    chats = Chats()
    phone.listeners.append(chats)
    phone.start()
    return phone, chats


async def _connect(caller: Phone, callee: Phone, name: str) -> tuple[Call, Call]:
    call = caller.dial(name)
    call.media.sink = ArrivalSink()  # before the call task opens its media
    incoming = await callee.next_incoming(T)
    incoming.media.sink = ArrivalSink()
    await incoming.accept()
    for c in (call, incoming):
        await c.wait_for(ev.MediaFlowing, T)
    call.send_chat("warm-up")  # the channel is open once this arrives
    await asyncio.sleep(0.5)  # let both audio paths settle before measuring
    return call, incoming


def _sinks(*calls: Call) -> list[ArrivalSink]:
    return [c.sink for c in calls if isinstance(c.sink, ArrivalSink)]


async def run(rounds: int, burst: int) -> dict[str, Any]:
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    out: dict[str, Any] = {}
    async with embedded_server(echo=False) as server:
        unlimited = ChatLimits.unlimited()
        alice, a_chats = await _phone(server.url, "alice", unlimited)
        bob, b_chats = await _phone(server.url, "bob", unlimited)
        carol, c_chats = await _phone(server.url, "carol", ChatLimits())
        try:
            call, incoming = await _connect(alice, bob, "bob")
            await b_chats.until(1)
            # 1. latency, paced inside the default limit
            one_way: list[float] = []
            round_trip: list[float] = []
            for i in range(rounds):
                a0, b0 = len(a_chats.got), len(b_chats.got)
                sent = time.perf_counter()
                call.send_chat(f"ping {i}")
                await b_chats.until(b0 + 1)
                one_way.append((b_chats.got[b0][0] - sent) * 1000)
                incoming.send_chat(f"pong {i}")
                await a_chats.until(a0 + 1)
                round_trip.append((a_chats.got[a0][0] - sent) * 1000)
                await asyncio.sleep(0.25)
            out["one_way_ms"], out["round_trip_ms"] = one_way, round_trip
            # The control: the longest gap in a quiet stretch of this call (no chat),
            # what the loaded machine does to audio with no help from chat.
            quiet = time.perf_counter()
            await asyncio.sleep(1.5)
            out["quiet_gap_ms"] = [
                s.longest_gap_ms(quiet, time.perf_counter()) for s in _sinks(call, incoming)
            ]
            # 2. the burst
            b0 = len(b_chats.got)
            start = time.perf_counter()
            for i in range(burst):  # as fast as the loop allows: one message a turn
                call.send_chat(f"burst {i:04d}")
                await asyncio.sleep(0)  # both peers share this loop: as one --json line each
            sent_ms = (time.perf_counter() - start) * 1000
            await b_chats.until(b0 + burst, 120)
            end = b_chats.got[-1][0]
            texts = [e.text for _, e in b_chats.got[b0:]]
            out["burst_in_order"] = texts == [f"burst {i:04d}" for i in range(burst)]
            out["burst_send_ms"] = sent_ms
            out["burst_delivered_ms"] = (end - start) * 1000
            out["burst_gap_ms"] = [
                s.longest_gap_ms(start, end + 0.2) for s in _sinks(call, incoming)
            ]
            await call.hangup()
            await incoming.wait_ended(T)
            # 3. a flood against the default limits
            call, incoming = await _connect(alice, carol, "carol")
            await c_chats.until(1)
            c0 = len(c_chats.got)
            start = time.perf_counter()
            for i in range(burst):
                call.send_chat(f"flood {i:04d}")
                await asyncio.sleep(0)
            call.send_chat("last")
            async with asyncio.timeout(120):  # every frame is accounted for at carol
                while incoming.chat.received + incoming.chat.dropped < 1 + burst + 1:
                    await asyncio.sleep(0.05)
            end = time.perf_counter()
            out["flood_kept"] = len(c_chats.got) - c0
            out["flood_dropped"] = incoming.chat.dropped
            out["flood_notices"] = list(c_chats.notices)
            out["flood_ms"] = (end - start) * 1000
            out["flood_gap_ms"] = [
                s.longest_gap_ms(start, end + 0.2) for s in _sinks(call, incoming)
            ]
            await call.hangup()
            await incoming.wait_ended(T)
        finally:
            for phone in (alice, bob, carol):
                await phone.close()
                await phone.client.close()
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=40, help="paced round trips")
    ap.add_argument("--burst", type=int, default=1000, help="messages in the burst and the flood")
    args = ap.parse_args()
    r = asyncio.run(run(args.rounds, args.burst))
    ok = True
    print("chat over the data channel, loopback, embedded server, in-process peers")
    for name in ("one_way_ms", "round_trip_ms"):
        v = r[name]
        med = statistics.median(v)
        verdict = ""
        if name == "one_way_ms":
            good = med <= RTT_BAR_MS
            ok &= good
            verdict = f"  bar ≤ {RTT_BAR_MS:.0f}: {'PASS' if good else 'FAIL'}"
        print(f"{name:<14} n={len(v)} median {med:.1f} p95 {pct(v, 0.95):.1f} "
              f"min {min(v):.1f} max {max(v):.1f}{verdict}")  # fmt: skip
    gap = max(r["burst_gap_ms"])
    good = r["burst_in_order"] and gap <= GAP_BAR_MS
    ok &= good
    print(f"burst {args.burst}: in order {r['burst_in_order']}, "
          f"sent in {r['burst_send_ms']:.0f} ms, all delivered "
          f"{r['burst_delivered_ms']:.0f} ms after the first send, longest audio "
          f"gap {gap:.0f} ms (alice, bob: {', '.join(f'{g:.0f}' for g in r['burst_gap_ms'])})"
          f"  bar ≤ {GAP_BAR_MS:.0f}: {'PASS' if good else 'FAIL'}")  # fmt: skip
    print(f"control: longest audio gap in 1.5 s without chat "
          f"{max(r['quiet_gap_ms']):.0f} ms (alice, bob: "
          f"{', '.join(f'{g:.0f}' for g in r['quiet_gap_ms'])})")  # fmt: skip
    print(f"flood {args.burst} + 1 against the default limits: kept {r['flood_kept']}, dropped "
          f"{r['flood_dropped']}, {len(r['flood_notices'])} notice(s) {r['flood_notices']}, "
          f"over {r['flood_ms']:.0f} ms; longest audio gap "
          f"{max(r['flood_gap_ms']):.0f} ms (alice, carol: "
          f"{', '.join(f'{g:.0f}' for g in r['flood_gap_ms'])})")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
