#!/usr/bin/env python3
"""Mouth-to-ear latency of a call, by cross-correlating chirps; also under 5 % loss.

Bars (docs/benchmarks.md): device→device median ≤ 100 ms; at 5 % loss no gap
> 100 ms and latency after 60 s within 40 ms of the start.

One process: the embedded server on 127.0.0.1 (echo off), a caller and an
auto-answering callee (real SignalingClients, real aiortc, DTLS-SRTP, Opus).
The caller sends a 440 Hz tone with a 10 ms chirp (1–4 kHz) every 500 ms.

- **file→file**: the caller's source is generated in-process and paced like
  ``sine:``/``file:`` (absolute 20 ms deadlines); each frame's release time is
  logged as the *mouth* time of its last sample (as if a microphone had just
  finished capturing it). The callee's sink logs each decoded frame's arrival
  (*ear* = arrival + position in the frame; no playout buffer). Latency =
  ear − mouth of each chirp found by cross-correlation.
- **device→device** (``--device``): a private PulseAudio daemon
  (``tests/pulse.py``) with two extra 48 kHz null sinks at 20 ms latency,
  ``mouth`` and ``ear``. The bench plays the signal into ``mouth`` with a
  PortAudio stream; the caller's ``device:`` source captures
  ``mouth.monitor``; the callee's ``device:`` sink plays into ``ear``; the
  bench records ``ear.monitor``. Mouth/ear times are PortAudio's DAC/ADC
  timestamps of the two bench streams (one clock). Includes both sound-card
  paths and the callee's playout buffer (40 ms target).
- **loss** (``--loss 0.05``): the call goes through ``tests/services/lossy_relay.py``
  (5 % of all packets dropped both ways, seeded) for ``--seconds`` (60;
  ``--quick``: 15). Reported: the longest near-silent run in the received
  tone (placed on the RTP timeline), the longest interval between decoded
  frames, and latency over the first 5 s vs the last 5 s.

    .venv/bin/python bench/mouth_to_ear.py [--calls 5] [--device] [--loss 0.05 [--quick]]
        [--no-adapter | --both]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from hello_tui.call import events as ev
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.media import aiortc_adapter
from hello_tui.media.audio_format import FRAME_SAMPLES, Conformer, make_frame
from hello_tui.media.sinks import AudioSink
from hello_tui.media.tracks import GatedTrack
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key

RATE = 48_000
PERIOD = RATE // 2  # a chirp every 500 ms
CHIRP_N = RATE // 100  # 10 ms


def chirp() -> np.ndarray:
    t = np.arange(CHIRP_N) / RATE
    f0, f1 = 1000.0, 4000.0
    phase = 2 * np.pi * (f0 * t + (f1 - f0) / (2 * t[-1]) * t**2)
    return np.sin(phase) * np.hanning(CHIRP_N)


CHIRP = chirp()


def signal(n: int, offset: int = 0) -> np.ndarray:
    """Samples ``offset .. offset+n`` of the test signal (tone + periodic chirps), int16."""
    idx = np.arange(offset, offset + n)
    out = np.sin(2 * np.pi * 440 * idx / RATE) * 0.1
    pos = idx % PERIOD
    mask = pos < CHIRP_N
    out[mask] += CHIRP[pos[mask]] * 0.6
    return (out * 32767).astype(np.int16)


def find_chirps(x: np.ndarray) -> list[int]:
    """Sample indices where a chirp starts (correlation peaks, ≥ 250 ms apart)."""
    if len(x) < CHIRP_N:
        return []
    corr = np.abs(np.correlate(x.astype(np.float64), CHIRP, mode="valid"))
    threshold = 0.3 * np.percentile(corr, 99.9)
    peaks = []
    i = 0
    while i < len(corr):
        if corr[i] >= threshold:
            j = i + int(np.argmax(corr[i : i + RATE // 8]))
            peaks.append(j)
            i = j + RATE // 4
        else:
            i += 1
    return peaks


class ChirpSource(MediaStreamTrack):
    """Paced like the project's generated sources; logs (pts, release time)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.t0: float | None = None
        self.n = 0
        self.released: list[tuple[int, float]] = []

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        due = self.t0 + self.n * 0.02
        if due > now:
            await asyncio.sleep(due - now)
        pts = self.n * FRAME_SAMPLES
        frame = make_frame(signal(FRAME_SAMPLES, pts), pts)
        self.released.append((pts, time.monotonic()))
        self.n += 1
        return frame


class TimedSink(AudioSink):
    """Logs each decoded frame's arrival time and keeps it by arrival and by pts."""

    def __init__(self) -> None:
        super().__init__("null:")
        self.chunks: list[tuple[float, np.ndarray]] = []
        self.timeline = np.zeros(0, dtype=np.int16)
        self._origin: int | None = None
        self._conform = Conformer()
        self.end = 0

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                samples = self._conform.convert(frame)
                self.chunks.append((now, samples))
                if self._origin is None:
                    self._origin = frame.pts
                pos = int(frame.pts - self._origin)
                if 0 <= pos < 600 * RATE:
                    end = pos + len(samples)
                    if end > len(self.timeline):
                        grow = np.zeros(max(end - len(self.timeline), RATE), np.int16)
                        self.timeline = np.concatenate([self.timeline, grow])
                    self.timeline[pos:end] = samples
                    self.end = max(self.end, end)
                self.frames += 1
                self.samples += len(samples)
        except MediaStreamError:
            pass
        finally:
            self.done.set()


@dataclass
class Result:
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (t, latency ms)
    max_gap_ms: float = 0.0
    max_stall_ms: float = 0.0
    playout: str = ""  # device calls: the callee's playout buffer at hangup


def longest_quiet_ms(x: np.ndarray, window_ms: int = 5) -> float:
    n = RATE * window_ms // 1000
    usable = len(x) // n * n
    if usable == 0:
        return 0.0
    blocks = x[:usable].astype(np.float64).reshape(-1, n)
    level = np.sqrt((blocks**2).mean(axis=1))
    quiet = level < 0.1 * np.median(level)
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return float(longest * window_ms)


def file_latencies(source: ChirpSource, sink: TimedSink) -> Result:
    res = Result()
    # mouth time of each source sample p: its frame's release time − (960 − offset)/RATE
    rel = dict(source.released)
    received = np.concatenate([c for _, c in sink.chunks]) if sink.chunks else np.zeros(0)
    starts = np.cumsum([0] + [len(c) for _, c in sink.chunks])
    arrivals = [t for t, _ in sink.chunks]
    mouths = []
    for pts, t in source.released:
        if pts % PERIOD < FRAME_SAMPLES:  # the frame holding a chirp start
            p = pts - pts % PERIOD + (0 if pts % PERIOD == 0 else PERIOD)
            if pts <= p < pts + FRAME_SAMPLES:
                mouths.append(t - (FRAME_SAMPLES - (p - pts)) / RATE)
    del rel
    t_start = source.t0 or 0.0
    for q in find_chirps(received):
        m = int(np.searchsorted(starts, q, side="right") - 1)
        ear = arrivals[m] + (q - starts[m]) / RATE
        earlier = [x for x in mouths if x <= ear]
        if earlier:
            res.latencies.append((ear - t_start, (ear - earlier[-1]) * 1000))
    body = sink.timeline[RATE // 4 : max(sink.end - RATE // 4, RATE // 4)]
    res.max_gap_ms = longest_quiet_ms(body)
    gaps = np.diff(arrivals[10:]) if len(arrivals) > 11 else np.zeros(1)
    res.max_stall_ms = float(gaps.max() * 1000)
    return res


_names = iter(range(1_000_000))


async def _phone(url: str, name: str, **opts: Any) -> Phone:
    name = f"{name}x{next(_names)}"
    client = SignalingClient(reconnect=None)
    await client.connect(url)
    key = generate_key()
    await client.register(name, key)
    await client.login(name, key)
    phone = Phone(client, CallOptions(host_addresses=LOOPBACK, **opts))
    phone.start()
    phone.name = name  # type: ignore[attr-defined]
    return phone


async def file_call(url: str, seconds: float, loss: float, seed: int) -> Result:
    caller = await _phone(url, f"a{seed}")
    callee = await _phone(url, f"b{seed}")
    relay = None
    try:
        if loss > 0:
            from tests.services.lossy_relay import LossyRelay, relay_phones

            relay = await LossyRelay.start(loss, seed=seed)
            relay_phones(relay, caller.client, callee.client)
        source = ChirpSource()
        sink = TimedSink()
        call = caller.dial(callee.name)  # type: ignore[attr-defined]
        call.media.source = GatedTrack(source)
        incoming = await callee.next_incoming(10)
        incoming.media.sink = sink
        await incoming.accept()
        await incoming.wait_for(ev.MediaFlowing, 30)
        await asyncio.sleep(seconds)
        await call.hangup()
        await incoming.wait_ended(10)
        return file_latencies(source, sink)
    finally:
        if relay is not None:
            relay.close()
        for phone in (caller, callee):
            await phone.close()
            await phone.client.close()


# ------------------------------------------------------------------ device → device


class DeviceRig:
    """PulseAudio with null sinks ``mouth`` and ``ear``; a player and a recorder."""

    def __init__(self, workdir: Path) -> None:
        from tests.pulse import PulseDaemon

        self.daemon = PulseDaemon(workdir)
        self.keepalives: list[Any] = []

    def start(self) -> None:
        import subprocess

        self.daemon.start()
        os.environ.update(self.daemon.env)
        for name in ("mouth", "ear"):
            r = self.daemon.pactl(
                "load-module", "module-null-sink", f"sink_name={name}", "rate=48000",
                "channels=1", f"sink_properties=device.description={name}",
            )  # fmt: skip
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            self.keepalives.append(
                subprocess.Popen(
                    ["parec", "--latency-msec=10", "-d", f"{name}.monitor", "--raw"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(0.2)
        for name in ("mouth", "ear"):
            self.daemon.pactl("suspend-sink", name, "1")
            self.daemon.pactl("suspend-sink", name, "0")

    def stop(self) -> None:
        for p in self.keepalives:
            p.terminate()
            p.wait()
        self.daemon.stop()


def _with_env(**kv: str) -> Any:
    for k, v in kv.items():
        os.environ[k] = v


async def device_call(url: str, seconds: float, seed: int) -> Result:
    import sounddevice as sd

    from hello_tui.media import devices

    devices.refresh()
    caller = await _phone(url, f"a{seed}", audio_out="null:")
    callee = await _phone(url, f"b{seed}", audio_in="null:")
    played: list[tuple[float, int]] = []  # (dac time, first sample index)
    playout_note = ""
    recorded: list[tuple[float, np.ndarray]] = []  # (adc time, samples)
    pos = 0

    def out_cb(outdata: Any, frames: int, t: Any, status: Any) -> None:
        nonlocal pos
        played.append((t.outputBufferDacTime, pos))
        outdata[:, 0] = signal(frames, pos)
        pos += frames

    def in_cb(indata: Any, frames: int, t: Any, status: Any) -> None:
        recorded.append((t.inputBufferAdcTime, indata[:, 0].copy()))

    try:
        _with_env(PULSE_SOURCE="mouth.monitor")
        call = caller.dial(callee.name, audio_in="device:")  # type: ignore[attr-defined]
        incoming = await callee.next_incoming(10)
        _with_env(PULSE_SINK="ear")
        await incoming.accept(replace(incoming.options, audio_out="device:"))
        await incoming.wait_for(ev.MediaFlowing, 30)
        _with_env(PULSE_SINK="mouth", PULSE_SOURCE="ear.monitor")
        player = sd.OutputStream(samplerate=RATE, channels=1, dtype="int16", blocksize=480,
                                 latency="low", callback=out_cb)  # fmt: skip
        recorder = sd.InputStream(samplerate=RATE, channels=1, dtype="int16", blocksize=480,
                                  latency="low", callback=in_cb)  # fmt: skip
        recorder.start()
        player.start()
        await asyncio.sleep(seconds)
        player.stop()
        recorder.stop()
        player.close()
        recorder.close()
        sink = getattr(incoming, "sink", None)
        if sink is not None:  # the callee's playout: where its adaptive target ended
            st = sink.stats()
            target = getattr(st, "target_ms", 0.0)
            playout_note = (
                f"playout: depth {st.buffer_ms:.0f} ms, target {target:.0f} ms, underruns "
                f"{st.underruns}, card {st.latency_ms:.0f} ms, card underruns {st.card_underruns}"
            )
        await call.hangup()
        await incoming.wait_ended(10)
    finally:
        for k in ("PULSE_SINK", "PULSE_SOURCE"):
            os.environ.pop(k, None)
        for phone in (caller, callee):
            await phone.close()
            await phone.client.close()
    res = Result(playout=playout_note)
    mouths = []
    for dac, p0 in played:
        k = -(-p0 // PERIOD) * PERIOD  # next chirp start at or after p0
        if p0 <= k < p0 + 480:
            mouths.append(dac + (k - p0) / RATE)
    rec = np.concatenate([c for _, c in recorded])
    starts = np.cumsum([0] + [len(c) for _, c in recorded])
    t_start = recorded[0][0]
    for q in find_chirps(rec):
        m = int(np.searchsorted(starts, q, side="right") - 1)
        ear = recorded[m][0] + (q - starts[m]) / RATE
        earlier = [x for x in mouths if x <= ear]
        if earlier and ear - earlier[-1] < 0.45:
            res.latencies.append((ear - t_start, (ear - earlier[-1]) * 1000))
    return res


# ------------------------------------------------------------------ main


def summary(res: Result) -> tuple[float, float, float]:
    lat = [x for _, x in res.latencies]
    return (
        statistics.median(lat) if lat else float("nan"),
        min(lat, default=0),
        max(lat, default=0),
    )


async def run(args: argparse.Namespace) -> int:
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    configs = [True, False] if args.both else [not args.no_adapter]
    rig = None
    if args.device:
        rig = DeviceRig(Path(tempfile.mkdtemp(prefix="m2e-pulse-")))
        rig.start()
    ok = True
    try:
        async with embedded_server(echo=False) as server:
            for on in configs:
                aiortc_adapter.ENABLED = on
                label = "with adapter" if on else "aiortc as is"
                if args.loss > 0:
                    secs = 15.0 if args.quick else args.seconds
                    res = await file_call(server.url, secs, args.loss, seed=1)
                    first = [x for t, x in res.latencies if t < 5]
                    last = [x for t, x in res.latencies if t > secs - 5]
                    start = statistics.median(first) if first else float("nan")
                    end = statistics.median(last) if last else float("nan")
                    drift = end - start
                    good = res.max_gap_ms <= 100 and abs(drift) <= 40
                    ok &= good or not on
                    print(
                        f"{label}: {args.loss:.0%} loss, {secs:.0f} s file→file: latency start "
                        f"{start:.1f} ms, end {end:.1f} ms (drift {drift:+.1f}), longest gap "
                        f"{res.max_gap_ms:.0f} ms, longest stall between frames "
                        f"{res.max_stall_ms:.0f} ms  {'PASS' if good else 'FAIL'}"
                    )
                    continue
                meds = []
                for i in range(args.calls):
                    if args.device:
                        res = await device_call(server.url, args.call_seconds, seed=i + 10 * on)
                    else:
                        res = await file_call(server.url, args.call_seconds, 0.0, seed=i + 10 * on)
                    med, lo, hi = summary(res)
                    meds.append(med)
                    print(f"  {label} call {i + 1}: median {med:.1f} ms ({lo:.1f}–{hi:.1f}, "
                          f"{len(res.latencies)} chirps) {res.playout}")  # fmt: skip
                what = "device→device" if args.device else "file→file"
                median = statistics.median(meds)
                verdict = ""
                if args.device:
                    verdict = "PASS" if median <= 100 else "FAIL"
                    ok &= verdict == "PASS" or not on
                spread = f"calls {min(meds):.1f}–{max(meds):.1f}"
                print(f"{label}: {what} mouth-to-ear median of {args.calls} calls "
                      f"{median:.1f} ms ({spread})  {verdict}")  # fmt: skip
    finally:
        aiortc_adapter.ENABLED = None
        if rig is not None:
            rig.stop()
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--call-seconds", type=float, default=6.0)
    ap.add_argument("--device", action="store_true", help="device→device on PulseAudio null sinks")
    ap.add_argument("--loss", type=float, default=0.0, help="random loss both ways (file→file)")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the loss run")
    ap.add_argument("--quick", action="store_true", help="15 s loss run")
    ap.add_argument("--no-adapter", action="store_true")
    ap.add_argument("--both", action="store_true", help="with and without the adapter")
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
