#!/usr/bin/env python3
"""Terminal sharing: idle and htop bandwidth, keystroke → echo, a 10 MB flood and the audio.

Bars (docs/benchmarks.md, issue 19): an idle shared shell ≤ 1 kbit/s;
``htop`` at 80x24 ≤ 30 kbit/s; a granted viewer's keystroke → the echoed
character on the viewer's screen, loopback via the server, median ≤ 50 ms;
``cat`` of a 10 MB file in the shared terminal: no audio gap > 100 ms on
either side, and the viewer's final screen equals the sharer's.

One process: the embedded server (the real aiohttp app on 127.0.0.1), two
logged-in phones, a real aiortc call (ICE on 127.0.0.1, DTLS-SRTP, Opus
``sine:440`` both ways), real ptys. Audio: each side's sink notes when each
decoded frame arrives; the longest interval between two is the gap (20 ms
when nothing stalls). A control measures the same gap with nothing shared,
and a probe the event loop's longest stall.

1. **Idle**: ``sh`` shared for ``--idle`` seconds after its prompt: the share
   channel's bytes both ways (payload; SCTP/DTLS add their headers).
2. **htop**: ``htop`` (its default 1.5 s refresh) shared at 80x24 for
   ``--htop`` seconds after its first screen: the share channel's bytes both
   ways, on average and the busiest second (payload, as for idle).
3. **Keystrokes**: ``cat`` shared and granted; the viewer types one character
   at a time (paced at 4 a second); the time until it shows on the viewer's
   screen (the sharer's pty echoes it, the sharer's frame brings it back).
4. **Flood**: ``cat`` of a 10 MB text file (80-column lines) in the shared
   terminal, ``--rounds`` times: how long, the bytes sent, the longest audio
   gap of either side, and whether the viewer's final screen equals the
   sharer's; each flood is followed by a window as long with nothing shared
   (the control: what the machine alone does to the audio meanwhile). The
   gaps are given per side (``sharer``: the viewer's audio as the sharer
   hears it; ``viewer``: the other way) and as medians over the rounds.

A section whose count is 0 is skipped.

    .venv/bin/python bench/share.py [--idle 20] [--htop 20] [--keys 40] [--mb 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hello_tui.call import events as ev
from hello_tui.call.engine import Call, CallOptions, Phone
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key
from tests.arrivals import ArrivalSink

IDLE_BAR_KBPS = 1.0
HTOP_BAR_KBPS = 30.0
KEY_BAR_MS = 50.0
GAP_BAR_MS = 100.0
T = 30.0


class LoopProbe:
    """The event loop's stalls: a 5 ms sleep that wakes late by the stall."""

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            self.stalls.append((t, (time.perf_counter() - t - 0.005) * 1000))

    def longest_ms(self, start: float, end: float) -> float:
        return max((s for t, s in self.stalls if start <= t <= end), default=float("nan"))

    def stop(self) -> None:
        self._task.cancel()


async def _phone(url: str, name: str) -> Phone:
    client = SignalingClient(reconnect=None)
    await client.connect(url)
    key = generate_key()
    await client.register(name, key)
    await client.login(name, key)
    opts = CallOptions(audio_in="sine:440", audio_out="null:", host_addresses=LOOPBACK,
                       quality_interval=None)  # fmt: skip
    phone = Phone(client, opts)
    phone.start()
    return phone


async def _until(check: Any, timeout: float = T, every: float = 0.002) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(every)


_stops: dict[tuple[int, str], int] = {}  # ShareStopped events awaited so far, per call and side


async def _stopped(call: Call, side: str, timeout: float = T) -> None:
    """Until the call's next ShareStopped on ``side`` (its event log keeps the past ones)."""
    key = (id(call), side)
    _stops[key] = _stops.get(key, 0) + 1

    def count() -> int:
        return sum(isinstance(e, ev.ShareStopped) and e.side == side for e in call.event_log)

    # Every 50 ms, not 2: a flood's end needs no precision, and 500 wake-ups a
    # second of the shared loop (each scanning the event log) are load of our own.
    await _until(lambda: count() >= _stops[key], timeout, every=0.05)


def _share_bytes(*calls: Call) -> int:
    return sum(c.share.bytes_sent for c in calls)


async def run(idle: float, keys: int, mb: float, rounds: int, htop: float = 0.0) -> dict[str, Any]:
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    out: dict[str, Any] = {}
    async with embedded_server(echo=False) as server:
        alice, bob = await _phone(server.url, "alice"), await _phone(server.url, "bob")
        probe = LoopProbe()
        try:
            sharer = alice.dial("bob")
            sharer.media.sink = ArrivalSink()
            viewer = await bob.next_incoming(T)
            viewer.media.sink = ArrivalSink()
            await viewer.accept()
            for c in (sharer, viewer):
                await c.wait_for(ev.MediaFlowing, T)
            await asyncio.sleep(1.0)
            sinks = [c.sink for c in (sharer, viewer) if isinstance(c.sink, ArrivalSink)]
            # control: nothing shared
            quiet = time.perf_counter()
            await asyncio.sleep(3.0)
            now = time.perf_counter()
            out["quiet_gap_ms"] = [s.longest_gap_ms(quiet, now) for s in sinks]
            out["quiet_stall_ms"] = probe.longest_ms(quiet, now)

            # 1. idle shell
            if idle > 0:
                out["idle_kbps"] = await _idle(sharer, viewer, idle)
            # 2. htop
            if htop > 0:
                out["htop_kbps"], out["htop_peak_kbps"] = await _htop(sharer, viewer, htop)
            # 3. keystrokes
            if keys > 0:
                out["key_ms"] = await _keys(sharer, viewer, keys)
            # 4. the flood, `rounds` times, each followed by a quiet window as long
            out["floods"] = await _floods(sharer, viewer, sinks, probe, mb, rounds)
            await sharer.hangup()
            await viewer.wait_ended(T)
        finally:
            probe.stop()
            for phone in (alice, bob):
                await phone.close()
                await phone.client.close()
    return out


async def _idle(sharer: Call, viewer: Call, idle: float) -> float:
    await sharer.share.start(["sh"], cols=80, rows=24)
    await _until(lambda: viewer.share.remote is not None and viewer.share.remote.text().strip())
    await asyncio.sleep(1.0)
    b0, t0 = _share_bytes(sharer, viewer), time.perf_counter()
    await asyncio.sleep(idle)
    b1, t1 = _share_bytes(sharer, viewer), time.perf_counter()
    await sharer.share.stop()
    await _stopped(viewer, "remote")
    return (b1 - b0) * 8 / 1000 / (t1 - t0)


async def _htop(sharer: Call, viewer: Call, seconds: float) -> tuple[float, float]:
    """htop at 80x24 (its own HOME: no rc file written to ours): mean and peak kbit/s."""
    with tempfile.TemporaryDirectory() as home:
        argv = ["env", f"HOME={home}", "htop"]
        await sharer.share.start(argv, cols=80, rows=24, title="htop")
        await _until(lambda: "Load average" in _remote_text(viewer))
        await asyncio.sleep(2.0)  # past its first full screen
        marks = [(time.perf_counter(), _share_bytes(sharer, viewer))]
        end = marks[0][0] + seconds
        while marks[-1][0] < end:
            await asyncio.sleep(1.0)
            marks.append((time.perf_counter(), _share_bytes(sharer, viewer)))
        await sharer.share.stop()
        await _stopped(viewer, "remote")
    (t0, b0), (t1, b1) = marks[0], marks[-1]
    rates = [(b - a) * 8 / 1000 / (u - t) for (t, a), (u, b) in itertools.pairwise(marks)]
    return (b1 - b0) * 8 / 1000 / (t1 - t0), max(rates)


def _remote_text(call: Call) -> str:
    remote = call.share.remote
    return remote.text() if remote is not None else ""


async def _keys(sharer: Call, viewer: Call, keys: int) -> list[float]:
    await sharer.share.start(["cat"], cols=80, rows=24)
    await _until(lambda: viewer.share.remote is not None)
    sharer.share.grant()
    await _until(lambda: viewer.share.control)
    times: list[float] = []
    typed = ""
    for i in range(keys):
        char = "abcdefghijklmnopqrstuvwxyz"[i % 26]
        typed += char
        sent = time.perf_counter()
        viewer.share.send_input(char)
        remote = viewer.share.remote
        assert remote is not None
        want = typed[-40:]
        await _until(lambda r=remote, w=want: w in r.text().replace("\n", ""))
        times.append((time.perf_counter() - sent) * 1000)
        if len(typed) >= 60:
            viewer.share.send_input("\r")
            typed = ""
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.25)
    await sharer.share.stop()
    await _stopped(viewer, "remote")
    return times


async def _floods(
    sharer: Call, viewer: Call, sinks: list[ArrivalSink], probe: LoopProbe, mb: float, rounds: int
) -> list[dict[str, Any]]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        line = "".join(chr(33 + (i % 90)) for i in range(79)) + "\n"
        n = int(mb * 1_000_000 / len(line))
        for i in range(n):
            f.write(f"{i:09d} " + line[10:])
        f.write("END OF FILE\n")
    floods: list[dict[str, Any]] = []
    for _ in range(max(0, rounds)):
        sent0, frames0 = sharer.share.bytes_sent, sharer.share.frames_sent
        start, cpu0 = time.perf_counter(), time.process_time()
        await sharer.share.start(["cat", f.name], cols=80, rows=24)
        await _stopped(sharer, "local", 600)
        await _stopped(viewer, "remote")
        end, cpu1 = time.perf_counter(), time.process_time()
        local = sharer.share.snapshot("local")[1].text()
        remote_text = viewer.share.snapshot("remote")[1].text()
        await asyncio.sleep(end - start)  # the control: as long, nothing shared
        quiet_end, cpu2 = time.perf_counter(), time.process_time()
        floods.append({
            "s": end - start,
            "bytes": sharer.share.bytes_sent - sent0,
            "frames": sharer.share.frames_sent - frames0,
            "gap_ms": max(s.longest_gap_ms(start, end) for s in sinks),
            "gaps_ms": [s.longest_gap_ms(start, end) for s in sinks],
            "stall_ms": probe.longest_ms(start, end),
            "quiet_gap_ms": max(s.longest_gap_ms(end, quiet_end) for s in sinks),
            "quiet_stall_ms": probe.longest_ms(end, quiet_end),
            "equal": local == remote_text and "END OF FILE" in local,
            "cpu": (cpu1 - cpu0) / (end - start),  # this process's CPU share, all threads
            "quiet_cpu": (cpu2 - cpu1) / (quiet_end - end),
        })  # fmt: skip
    Path(f.name).unlink()
    return floods


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def _verdict(good: bool) -> str:
    return "PASS" if good else "FAIL"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--idle", type=float, default=20.0, help="seconds of an idle shared shell")
    ap.add_argument("--htop", type=float, default=20.0, help="seconds of a shared htop")
    ap.add_argument("--keys", type=int, default=40, help="keystrokes timed")
    ap.add_argument("--rounds", type=int, default=3, help="floods, each then a quiet control")
    ap.add_argument("--read-kb", type=int, help="override share.session.READ_PER_FRAME (KiB)")
    ap.add_argument("--mb", type=float, default=10.0, help="the flood's size in MB")
    args = ap.parse_args()
    if args.read_kb:
        from hello_tui.share import session

        session.READ_PER_FRAME = args.read_kb * 1024
    r = asyncio.run(run(args.idle, args.keys, args.mb, args.rounds, args.htop))
    ok = True
    print("terminal sharing over the data channel, loopback, embedded server, in-process peers")
    if "idle_kbps" in r:
        good = r["idle_kbps"] <= IDLE_BAR_KBPS
        ok &= good
        print(f"idle shell: {r['idle_kbps']:.3f} kbit/s over {args.idle:.0f} s"
              f"  bar ≤ {IDLE_BAR_KBPS:.0f}: {_verdict(good)}")  # fmt: skip
    if "htop_kbps" in r:
        good = r["htop_kbps"] <= HTOP_BAR_KBPS
        ok &= good
        print(f"htop 80x24: {r['htop_kbps']:.2f} kbit/s over {args.htop:.0f} s (busiest "
              f"second {r['htop_peak_kbps']:.2f})  bar ≤ {HTOP_BAR_KBPS:.0f}: "
              f"{_verdict(good)}")  # fmt: skip
    if "key_ms" in r:
        v = r["key_ms"]
        med = statistics.median(v)
        good = med <= KEY_BAR_MS
        ok &= good
        print(f"keystroke → echo on the viewer: n={len(v)} median {med:.1f} p95 "
              f"{pct(v, 0.95):.1f} min {min(v):.1f} max {max(v):.1f}  bar ≤ {KEY_BAR_MS:.0f}: "
              f"{_verdict(good)}")  # fmt: skip
    for i, fl in enumerate(r["floods"], 1):
        good = fl["gap_ms"] <= GAP_BAR_MS and fl["equal"]
        ok &= good
        sharer_gap, viewer_gap = fl["gaps_ms"]
        print(f"flood {i}: {args.mb:g} MB (cat) in {fl['s']:.1f} s, {fl['bytes']} bytes sent in "
              f"{fl['frames']} frames, screens equal {fl['equal']}, call process CPU "
              f"{fl['cpu']:.0%} (quiet {fl['quiet_cpu']:.0%}); longest audio gap "
              f"sharer {sharer_gap:.0f} ms, viewer {viewer_gap:.0f} ms, loop stall "
              f"{fl['stall_ms']:.0f} ms  bar ≤ {GAP_BAR_MS:.0f}: {_verdict(good)}; then as long "
              f"with nothing shared: gap {fl['quiet_gap_ms']:.0f} ms, "
              f"stall {fl['quiet_stall_ms']:.0f} ms")  # fmt: skip
    if r["floods"]:
        fls = r["floods"]
        med = {k: statistics.median(f["gaps_ms"][j] for f in fls) for j, k in enumerate("sv")}
        print(f"floods, medians over {len(fls)}: longest audio gap sharer {med['s']:.0f} ms, "
              f"viewer {med['v']:.0f} ms; loop stall "
              f"{statistics.median(f['stall_ms'] for f in fls):.0f} ms; the quiet controls: gap "
              f"{statistics.median(f['quiet_gap_ms'] for f in fls):.0f} ms")  # fmt: skip
    print(f"control before: 3 s with nothing shared: longest audio gap "
          f"{max(r['quiet_gap_ms']):.0f} ms, loop stall {r['quiet_stall_ms']:.0f} ms")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
