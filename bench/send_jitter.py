#!/usr/bin/env python3
"""How late each packet of a ``device:`` microphone arrives, relative to its RTP time,
with the send path in Python or in C (``HELLO_TUI_NATIVE_SEND``), under a loop load.

Two adapted peers in this process on loopback; the caller sends a pulse microphone
(the read callback in C: ``HELLO_TUI_NATIVE_CAPTURE=1``) that records a tone played
into the same throwaway PulseAudio's null sink; the far end notes when each RTP
packet reaches its datagram callback. The loop is kept busy in Python for
``--loop-load`` of every 20 ms and, every ``--stall-every`` seconds, for
``--stall-ms`` at once (a TUI redraw, a burst of RTCP): what delays a frame on its
way from the capture thread to ``sendto`` when the loop sends it.

Printed: per packet, its lateness (arrival - RTP time, minus the least of the last
128: what the speech jitter buffer's target is the 95th percentile of), as p50 /
p95 / p99, and RFC 3550's interarrival jitter. Both arms at once, one process each
(``bench/send_jitter.sh``-style): run it twice with the knob set differently.

    HELLO_TUI_NATIVE_CAPTURE=1 HELLO_TUI_NATIVE_SEND=1 PYTHONPATH=. .venv/bin/python \\
        bench/send_jitter.py --seconds 20 --loop-load 0.08 --stall-ms 8 --stall-every 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent


async def spin(share: float, stall_ms: float, stall_every: float) -> None:
    next_stall = time.monotonic() + stall_every
    while True:
        busy = 0.020 * share
        if stall_ms and time.monotonic() >= next_stall:
            busy += stall_ms / 1000
            next_stall += stall_every
        end = time.thread_time() + busy
        while time.thread_time() < end:
            sum(range(200))
        await asyncio.sleep(max(0.0, 0.020 - busy))


async def run(
    seconds: float, share: float, stall_ms: float, stall_every: float, ssrc_file: str | None
) -> None:
    import aioice.ice

    from hello_tui.call.peer import new_peer_connection
    from hello_tui.media import aiortc_adapter as ad
    from hello_tui.media.sinks import open_audio_sink
    from hello_tui.media.sources import DeviceSource, SineSource
    from hello_tui.media.tracks import GatedTrack, MeteredTrack

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    speaker = open_audio_sink("device:")
    await speaker.start(SineSource("sine:440", 440.0))
    mic = DeviceSource("device:", "")
    a, b = new_peer_connection([]), new_peer_connection([])
    a.addTrack(MeteredTrack(GatedTrack(mic)))
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    if ssrc_file:
        Path(ssrc_file).write_text(f"{a.getSenders()[0]._ssrc}\n")
    receiver = b.getReceivers()[0]
    arrivals: list[tuple[float, int]] = []
    async with asyncio.timeout(20):
        while ad.fast_path(receiver.transport) is None:
            await asyncio.sleep(0.05)
    path = ad.fast_path(receiver.transport)
    assert path is not None
    own = path._rtp

    def rtp(data: bytes) -> None:
        arrivals.append((time.monotonic(), int.from_bytes(data[4:8], "big")))
        own(data)

    path._rtp = rtp  # type: ignore[method-assign]
    busy = asyncio.create_task(spin(share, stall_ms, stall_every))
    await asyncio.sleep(2.0)  # (C takes over after 25 frames)
    start = len(arrivals)
    await asyncio.sleep(seconds)
    got = arrivals[start:]
    busy.cancel()
    native = ad.native_sender(a.getSenders()[0])
    await a.close()
    await b.close()
    mic.stop()
    await speaker.stop()

    load = Path("/proc/loadavg").read_text().split()[0]
    c_frames = native.frames_in_c() if native is not None else 0
    print(f"send {'C' if c_frames else 'Python'} ({c_frames} frames in C), load {load}")
    print(f"  arrival at the far end's loop: {lateness(got)}")


def lateness(got: list[tuple[float, int]]) -> str:
    """Each packet's lateness (transit minus the least of the last 128, as the speech
    jitter buffer reads it) as percentiles, and RFC 3550's jitter."""
    t0, ts0 = got[0]
    transit = [(t - t0) - ((ts - ts0) & 0xFFFF_FFFF) / 48_000 for t, ts in got]
    window: deque[float] = deque(maxlen=128)
    late = []
    for d in transit:
        window.append(d)
        late.append((d - min(window)) * 1000)
    jitter = 0.0
    for x, y in itertools.pairwise(transit):
        jitter += (abs(y - x) - jitter) / 16
    late.sort()
    q = statistics.quantiles(late, n=100)
    return (f"{len(got)} packets, lateness p50 {q[49]:.2f} p95 {q[94]:.2f} p99 {q[98]:.2f} "
            f"max {late[-1]:.2f} ms, RFC 3550 jitter {jitter * 1000:.2f} ms")  # fmt: skip


def analyze(sniffed: str, ssrc_file: str, skip_s: float) -> None:
    """The sender's departures as bench/rtp_sniff.py saw them on loopback."""
    ssrc = int(Path(ssrc_file).read_text().split()[0])
    rows = [line.split() for line in Path(sniffed).read_text().splitlines()]
    got = [(float(w), int(ts)) for s, ts, w in rows if int(s) == ssrc]
    got = [g for g in got if g[0] >= got[0][0] + skip_s]
    print(f"  departure on loopback (kernel time): {lateness(got)}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--loop-load", type=float, default=0.08)
    ap.add_argument("--stall-ms", type=float, default=0.0)
    ap.add_argument("--stall-every", type=float, default=0.1)
    ap.add_argument("--ssrc-file", help="write the sender's SSRC here (bench/rtp_sniff.py)")
    ap.add_argument("--analyze", nargs=2, metavar=("SNIFFED", "SSRC_FILE"),
                    help="only read bench/rtp_sniff.py's output for that sender")  # fmt: skip
    args = ap.parse_args()
    if args.analyze:
        analyze(*args.analyze, skip_s=2.0)
        return 0
    os.environ.setdefault("HELLO_TUI_AUDIO_BACKEND", "pulse")
    sys.path.append(str(SRC))
    from tests.pulse import PulseDaemon

    daemon = PulseDaemon(Path(tempfile.mkdtemp(prefix="hello-jitter-pulse-")))
    daemon.start()
    os.environ.update(daemon.env)
    try:
        asyncio.run(
            run(args.seconds, args.loop_load, args.stall_ms, args.stall_every, args.ssrc_file)
        )
    finally:
        daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
