#!/usr/bin/env python3
"""Call setup: dial → first remote audio frame played, with and without the aiortc adapter.

Bar: median ≤ 100 ms over 20 calls (docs/benchmarks.md).

One process: the embedded server (``hello_tui.session.embedded.embedded_server``,
the real aiohttp app on 127.0.0.1, echo peer off), a caller and an
auto-answering callee (each its own logged-in ``SignalingClient`` + ``Phone``;
the callee accepts the moment the call rings). ICE host candidates on
127.0.0.1, DTLS-SRTP, Opus, ``sine:440`` both ways, ``null:`` sinks. The
caller's ``media-flowing`` event (its sink took the first decoded remote
frame) gives dial → first frame; ``connected`` gives dial → DTLS up. Calls
alternate between the two configurations so machine noise hits both alike.

    .venv/bin/python bench/call_setup.py [--calls 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hello_tui.call import events as ev
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.media import aiortc_adapter
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key

BAR_MS = 100.0


async def _phone(url: str, name: str) -> Phone:
    client = SignalingClient(reconnect=None)
    await client.connect(url)
    key = generate_key()
    await client.register(name, key)
    await client.login(name, key)
    opts = CallOptions(audio_in="sine:440", audio_out="null:", host_addresses=LOOPBACK)
    phone = Phone(client, opts)
    phone.start()
    return phone


async def _auto_answer(phone: Phone) -> None:
    while True:
        call = await phone.next_incoming()
        await call.accept()


async def _one_call(caller: Phone, callee: Phone) -> tuple[float, float]:
    call = caller.dial("bob")
    connected = await call.wait_for(ev.Connected, 10)
    flowing = await call.wait_for(ev.MediaFlowing, 10)
    await asyncio.sleep(0.2)
    await call.hangup()
    for c in list(callee.live):
        with contextlib.suppress(Exception):
            await c.wait_ended(5)
    return connected.setup_ms, flowing.setup_ms


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


async def run(calls: int) -> dict[str, dict[str, list[float]]]:
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    results: dict[str, dict[str, list[float]]] = {
        "aiortc as is": {"connected": [], "first frame": []},
        "with adapter": {"connected": [], "first frame": []},
    }
    async with embedded_server(echo=False) as server:
        caller = await _phone(server.url, "alice")
        callee = await _phone(server.url, "bob")
        answerer = asyncio.create_task(_auto_answer(callee))
        try:
            for on in (True, False):  # warm-up, one of each
                aiortc_adapter.ENABLED = on
                await _one_call(caller, callee)
            for i in range(2 * calls):
                on = i % 2 == 0
                aiortc_adapter.ENABLED = on
                conn, first = await _one_call(caller, callee)
                row = results["with adapter" if on else "aiortc as is"]
                row["connected"].append(conn)
                row["first frame"].append(first)
        finally:
            aiortc_adapter.ENABLED = None
            answerer.cancel()
            for phone in (caller, callee):
                await phone.close()
                await phone.client.close()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20, help="calls per configuration")
    args = ap.parse_args()
    results = asyncio.run(run(args.calls))
    print(f"{args.calls} calls per configuration, loopback, embedded server, in-process peers")
    print(f"{'configuration':<14} {'dial→':<12} {'median ms':>10} {'p95 ms':>8} {'min':>7} "
          f"{'max':>7}  bar")  # fmt: skip
    ok = True
    for name, rows in results.items():
        for what, values in rows.items():
            med = statistics.median(values)
            verdict = ""
            if what == "first frame":
                verdict = "PASS" if med <= BAR_MS else "FAIL"
                if name == "with adapter":
                    ok = verdict == "PASS"
                verdict = f"≤ {BAR_MS:.0f} {verdict}"
            print(
                f"{name:<14} {what:<12} {med:>10.1f} {pct(values, 0.95):>8.1f} "
                f"{min(values):>7.1f} {max(values):>7.1f}  {verdict}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
