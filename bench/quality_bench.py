#!/usr/bin/env python3
"""The quality pipeline's bars: its CPU cost, and how fast injected conditions show.

Bars (issue: quality, telemetry, feedback; results in docs/benchmarks.md):

- **cost**: sampling and reporting cost < 1 % of one core during a call.
  A/B: the same call with the collector at 1 Hz (``CallOptions.quality_interval=1``)
  and off (``None``), each side in its own process (this script, ``worker`` mode;
  the server runs in the parent). Each side measures its own CPU
  (``resource.getrusage``: all threads) from 0.5 s after ``media-flowing`` for
  ``--seconds`` (60; ``--quick``: 20); with the collector on, it also *reports*:
  every ``Quality`` event is serialised to a JSON line on stdout, as
  ``hello-tui call --json`` does. Runs alternate on/off; reported: each side's
  median CPU on and off and the median of the per-run differences. Also a
  direct measure: the CPU time of one ``QualityCollector.sample()`` on a live
  call (500 back to back), i.e. its cost at 1 Hz.
- **reaction**: one call through ``tests/services/lossy_relay.py`` (both
  peers in this process). Per trial: clean for 3 s, then +100 ms one-way
  delay both ways → seconds until each side's ``Quality`` samples show
  ``rtt_ms`` ≥ clean + 150 ms (bar ≤ 3 s); back to clean; then 5 % loss both
  ways → seconds until each side's samples show ``packets_lost_interval`` > 0
  (bar ≤ 5 s). A trial's time is the slower side's. For comparison, the
  time until aiortc's own smoothed ``remote-inbound-rtp.roundTripTime``
  (polled every 100 ms) shows the same rise (given up after 20 s). Medians
  over ``--runs`` trials (5; ``--quick``: 3).

    .venv/bin/python bench/quality_bench.py [--quick] [--runs N] [--seconds S]
        [--only cost|reaction]

Loopback only. Exit status 0 when every bar passes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hello_tui.call import events as ev
from hello_tui.call.engine import Call, CallOptions, Phone
from hello_tui.quality.collector import QualityCollector
from hello_tui.quality.sample import QualitySample
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key

COST_BAR = 1.0  # % of one core
RTT_BAR = 3.0  # s
LOSS_BAR = 5.0  # s
DELAY = 0.100  # s one way
LOSS = 0.05
RTT_RISE_MS = 150.0
GIVE_UP = 20.0  # s


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def new_phone(url: str, name: str, **options: Any) -> Phone:
    client = SignalingClient(reconnect=None)
    await client.connect(url)
    key = generate_key()
    await client.register(name, key)
    await client.login(name, key)
    phone = Phone(client, CallOptions(host_addresses=LOOPBACK, audio_out="null:", **options))
    phone.start()
    return phone


async def close_phone(phone: Phone) -> None:
    await phone.close()
    await phone.client.close()


# ------------------------------------------------------------------ cost: one side


async def worker(args: argparse.Namespace) -> int:
    """One side of the cost call, in its own process; prints JSON lines."""
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    interval = 1.0 if args.quality else None
    hz = "660" if args.role == "callee" else "440"
    phone = await new_phone(args.url, args.name, audio_in=f"sine:{hz}", quality_interval=interval)

    def say(**kv: Any) -> None:
        print(json.dumps(kv), flush=True)

    try:
        say(kind="ready")
        if args.role == "callee":
            call = await phone.next_incoming(60)
            await call.accept()
        else:
            call = phone.dial(args.peer)
        await call.wait_for(ev.MediaFlowing, 30)

        async def report() -> None:  # the reporting half: every sample as a JSON line
            async for event in call.events():
                if isinstance(event, ev.Quality):
                    print(json.dumps(event.to_json()), flush=True)

        reporter = asyncio.get_running_loop().create_task(report())
        await asyncio.sleep(0.5)
        c0, t0 = cpu_seconds(), time.monotonic()
        await asyncio.sleep(args.seconds)
        c1, t1 = cpu_seconds(), time.monotonic()
        say(kind="result", cpu_pct=100 * (c1 - c0) / (t1 - t0), samples=len(call.quality_samples))
        if args.role == "caller":
            await call.hangup()
        else:
            await call.wait_ended(30)
        reporter.cancel()
    finally:
        await close_phone(phone)
    return 0


async def _read_result(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    assert proc.stdout is not None
    result: dict[str, Any] = {}
    async for raw in proc.stdout:
        line = json.loads(raw)
        if line.get("kind") == "result":
            result = line
    await proc.wait()
    return result


async def cost_call(url: str, seconds: float, quality: bool, n: int) -> dict[str, float]:
    """One A/B leg: both sides' CPU % of one core."""
    script = str(Path(__file__).resolve())
    common = ["worker", "--url", url, "--seconds", str(seconds), "--quality", str(int(quality))]
    callee = await asyncio.create_subprocess_exec(
        sys.executable, script, *common, "--role", "callee", "--name", f"bob{n}",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert callee.stdout is not None
    assert json.loads(await callee.stdout.readline())["kind"] == "ready"
    caller = await asyncio.create_subprocess_exec(
        sys.executable, script, *common, "--role", "caller", "--name", f"alice{n}",
        "--peer", f"bob{n}", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    a, b = await asyncio.gather(_read_result(caller), _read_result(callee))
    if not a or not b:
        raise RuntimeError("a worker ended without a result")
    return {"caller": a["cpu_pct"], "callee": b["cpu_pct"]}


async def sample_cost(url: str, count: int = 500) -> float:
    """CPU ms of one ``QualityCollector.sample()`` on a live call (median of 5 batches)."""
    caller = await new_phone(url, "cost-a", audio_in="sine:440", quality_interval=None)
    callee = await new_phone(url, "cost-b", audio_in="sine:660", quality_interval=None)
    try:
        call = caller.dial("cost-b")
        incoming = await callee.next_incoming(10)
        await incoming.accept()
        await call.wait_for(ev.MediaFlowing, 30)
        await asyncio.sleep(2.0)  # RTCP flowing
        assert call.pc is not None and call.sink is not None and call.metered is not None
        collector = QualityCollector(call.pc, call.sink.stats, call.metered.level)
        per: list[float] = []
        for _ in range(5):
            t0 = time.thread_time()  # the event loop's thread: other tasks' share is small
            for _ in range(count // 5):
                await collector.sample()
            per.append((time.thread_time() - t0) * 1000 / (count // 5))
        await call.hangup()
        await incoming.wait_ended(10)
        return statistics.median(per)
    finally:
        await close_phone(caller)
        await close_phone(callee)


async def bench_cost(args: argparse.Namespace) -> bool:
    seconds = 20.0 if args.quick else args.seconds
    runs = args.cost_runs or (2 if args.quick else 3)
    legs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    async with embedded_server(echo=False) as server:
        per_sample_ms = await sample_cost(server.url)
        n = 0
        for run in range(runs):
            for quality in (True, False) if run % 2 == 0 else (False, True):
                n += 1
                res = await cost_call(server.url, seconds, quality, n)
                legs[quality].append(res)
                print(f"  run {run + 1}, collector {'1 Hz' if quality else 'off '}: "
                      f"caller {res['caller']:.2f} %, callee {res['callee']:.2f} %")  # fmt: skip
    print(f"cost: {runs} runs of {seconds:.0f} s per configuration, % of one core")
    ok = True
    for side in ("caller", "callee"):
        on = [r[side] for r in legs[True]]
        off = [r[side] for r in legs[False]]
        diffs = [a - b for a, b in zip(on, off, strict=True)]
        med = statistics.median(diffs)
        good = med < COST_BAR
        ok &= good
        print(f"  {side}: on {statistics.median(on):.2f} %, off {statistics.median(off):.2f} %, "
              f"difference median {med:+.2f} (runs {', '.join(f'{d:+.2f}' for d in diffs)}) "
              f"< {COST_BAR:.0f}: {'PASS' if good else 'FAIL'}")  # fmt: skip
    direct = per_sample_ms / 10  # ms per second at 1 Hz → % of a core
    print(f"  one sample() = {per_sample_ms:.3f} ms CPU → {direct:.3f} % of a core at 1 Hz")
    return ok


# ------------------------------------------------------------------ reaction


@dataclass
class Watcher:
    """Every Quality sample of a call with the monotonic time it was emitted."""

    call: Call
    seen: list[tuple[float, QualitySample]] = field(default_factory=list)
    aiortc_rtt: list[tuple[float, float]] = field(default_factory=list)  # (time, ms)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks += [loop.create_task(self._samples()), loop.create_task(self._aiortc())]

    async def _samples(self) -> None:
        async for event in self.call.events():
            if isinstance(event, ev.Quality):
                self.seen.append((time.monotonic(), event.sample))

    async def _aiortc(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            pc = self.call.pc
            if pc is None:
                continue
            for stat in (await pc.getStats()).values():
                rtt = getattr(stat, "roundTripTime", None)
                if stat.type == "remote-inbound-rtp" and stat.kind == "audio" and rtt is not None:
                    self.aiortc_rtt.append((time.monotonic(), rtt * 1000))

    def stop(self) -> None:
        for task in self.tasks:
            task.cancel()

    def first(self, since: float, test: Any) -> float | None:
        return next((t - since for t, s in self.seen if t >= since and test(s)), None)

    def first_aiortc(self, since: float, level: float) -> float | None:
        return next((t - since for t, v in self.aiortc_rtt if t >= since and v >= level), None)

    def rtt_now(self, since: float) -> float | None:
        values = [s.rtt_ms for t, s in self.seen if t >= since and s.rtt_ms is not None]
        return statistics.median(values) if values else None


async def wait_for(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return False


def _slowest(times: list[float | None]) -> float:
    return max(x if x is not None else float("inf") for x in times)


def _fmt(times: list[float | None]) -> str:
    return ", ".join(f"{x:.2f}" if x is not None else f">{GIVE_UP:.0f}" for x in times)


@dataclass
class Trial:
    clean_ms: list[float]
    rtt: list[float | None]  # per side: s until rtt_ms rose
    aiortc: list[float | None]  # per side: s until aiortc's smoothed RTT rose
    loss: list[float | None]  # per side: s until loss showed


async def reaction_trial(relay: Any, watchers: list[Watcher]) -> Trial:
    """Clean 3 s → +100 ms one way (until both RTTs show it) → clean 3 s → 5 % loss."""
    relay.set(delay=0.0, loss=0.0)
    settle = time.monotonic()
    await asyncio.sleep(3.0)
    clean = [w.rtt_now(settle + 1.5) for w in watchers]
    if any(c is None for c in clean):
        raise RuntimeError("no RTT after 3 s of a clean call")
    levels = [c + RTT_RISE_MS for c in clean if c is not None]

    relay.set(delay=DELAY)
    t0 = time.monotonic()

    def rtt() -> list[float | None]:
        return [
            w.first(t0, lambda s, lv=lv: s.rtt_ms is not None and s.rtt_ms >= lv)
            for w, lv in zip(watchers, levels, strict=True)
        ]

    def aiortc() -> list[float | None]:
        return [w.first_aiortc(t0, lv) for w, lv in zip(watchers, levels, strict=True)]

    await wait_for(lambda: None not in rtt() + aiortc(), GIVE_UP)
    rtt_times, aiortc_times = rtt(), aiortc()

    relay.set(delay=0.0)
    await asyncio.sleep(3.0)
    relay.set(loss=LOSS)
    t1 = time.monotonic()

    def loss() -> list[float | None]:
        return [w.first(t1, lambda s: s.packets_lost_interval > 0) for w in watchers]

    await wait_for(lambda: None not in loss(), GIVE_UP)
    return Trial([c for c in clean if c is not None], rtt_times, aiortc_times, loss())


async def bench_reaction(args: argparse.Namespace) -> bool:
    from tests.services.lossy_relay import LossyRelay, relay_phones

    runs = args.runs or (3 if args.quick else 5)
    trials: list[Trial] = []
    async with embedded_server(echo=False) as server:
        relay = await LossyRelay.start(0.0, seed=5)
        alice = await new_phone(server.url, "r-alice", audio_in="sine:440")
        bob = await new_phone(server.url, "r-bob", audio_in="sine:660")
        try:
            relay_phones(relay, alice.client, bob.client)
            call = alice.dial("r-bob")
            incoming = await bob.next_incoming(10)
            await incoming.accept()
            await call.wait_for(ev.MediaFlowing, 30)
            watchers = [Watcher(call), Watcher(incoming)]
            for w in watchers:
                w.start()
            for i in range(runs):
                t = await reaction_trial(relay, watchers)
                trials.append(t)
                clean = ", ".join(f"{c:.1f}" for c in t.clean_ms)
                print(f"  trial {i + 1} (caller, callee): clean RTT {clean} ms; +100 ms shown "
                      f"after {_fmt(t.rtt)} s (aiortc's EWMA {_fmt(t.aiortc)} s); 5 % loss "
                      f"after {_fmt(t.loss)} s")  # fmt: skip
            await call.hangup()
            await incoming.wait_ended(10)
            for w in watchers:
                w.stop()
        finally:
            relay.close()
            await close_phone(alice)
            await close_phone(bob)
    rtt = [_slowest(t.rtt) for t in trials]
    ai = [_slowest(t.aiortc) for t in trials]
    loss = [_slowest(t.loss) for t in trials]
    rtt_ok, loss_ok = statistics.median(rtt) <= RTT_BAR, statistics.median(loss) <= LOSS_BAR
    print(f"reaction: {runs} trials, the slower side of each, seconds")
    print(f"  +100 ms one way → rtt_ms ≥ clean + {RTT_RISE_MS:.0f} ms: median "
          f"{statistics.median(rtt):.2f} s (max {max(rtt):.2f}) ≤ {RTT_BAR:.0f}: "
          f"{'PASS' if rtt_ok else 'FAIL'}")  # fmt: skip
    print(f"  (aiortc's smoothed roundTripTime, same rise: median {statistics.median(ai):.2f} s, "
          f"max {max(ai):.2f})")  # fmt: skip
    print(f"  5 % loss → packets_lost_interval > 0: median {statistics.median(loss):.2f} s "
          f"(max {max(loss):.2f}) ≤ {LOSS_BAR:.0f}: {'PASS' if loss_ok else 'FAIL'}")  # fmt: skip
    return rtt_ok and loss_ok


# ------------------------------------------------------------------ main


async def run(args: argparse.Namespace) -> int:
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    ok = True
    if args.only in (None, "reaction"):
        ok &= await bench_reaction(args)
    if args.only in (None, "cost"):
        ok &= await bench_cost(args)
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = ap.add_subparsers(dest="mode")
    w = sub.add_parser("worker", help="internal: one side of a cost call")
    w.add_argument("--url", required=True)
    w.add_argument("--role", choices=("caller", "callee"), required=True)
    w.add_argument("--name", required=True)
    w.add_argument("--peer", default="")
    w.add_argument("--seconds", type=float, required=True)
    w.add_argument("--quality", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="20 s cost calls, 3 reaction trials")
    ap.add_argument("--seconds", type=float, default=60.0, help="cost call length")
    ap.add_argument("--cost-runs", type=int, default=0, help="A/B runs (default 3; quick 2)")
    ap.add_argument("--runs", type=int, default=0, help="reaction trials (default 5; quick 3)")
    ap.add_argument("--only", choices=("cost", "reaction"))
    args = ap.parse_args()
    if args.mode == "worker":
        return asyncio.run(worker(args))
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
