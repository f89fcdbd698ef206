#!/usr/bin/env python3
"""Echo cancellation on real calls: ERLE, double talk, CPU of the processing stage.

Bars (docs/benchmarks.md): ERLE ≥ 25 dB after 2 s of convergence (median of
5 calls); double talk: near-end speech sent keeps an envelope correlation
≥ 0.9 with the clean near-end signal; the stage alone ≤ 2.5 % of a core.

The room of ``tests/call/test_echo_cancellation.py``: a private PulseAudio
daemon, Bob's speaker sink ``b_spk`` leaking into his microphone sink
``b_mic`` (``tests/acoustic.py``: PulseAudio's loopback, 50 ms, -6 dB; with
``--reverb`` through a small room's reverberation too: swh-plugins' gverb),
both seen by PortAudio as sound cards. Alice (the far end) sends espeak-ng
speech from a file and records what Bob sends; Bob talks through
``device:b_mic`` / ``device:b_spk``. The embedded server on 127.0.0.1, real
aiortc, Opus.

- **ERLE**: Bob silent, so what Alice receives is echo. One call with all
  processing off gives the echo's power (as sent, through Opus), then
  ``--calls`` calls with echo cancellation (+ noise suppression and the
  high-pass filter; the gain control off, since it would scale the residual)
  give the residual's; both from 2.5 s after media starts to the end of the
  far-end speech.
- **double talk**: the same, and Bob speaks (a second espeak-ng voice played
  into ``b_mic`` with ``paplay``) 3 s into the call, over Alice. The 10 ms
  RMS envelope of what Alice receives is aligned to the clean sentence's (best
  lag of the cross-correlation) and their Pearson correlation reported: median
  of ``--calls`` calls with processing on, one call off (the reference).
- **echo delay** (each call with echo cancellation): what the canceller is
  given, 10 ms (near, far) pairs, recorded through ``CaptureProcessor.tap``;
  per 2 s window with far-end speech the lag of the cross-correlation's peak
  (the echo delay the canceller has to find) and the peak's normalized height
  (near 1: one steady delay; near 0: the delay jumps within the window).
  Printed with the pairing lag from the devices' clocks and its realignments.
- **CPU**: ``CaptureProcessor`` alone on 20 s of a synthetic echo scene
  (the same room, convolved in numpy), thread CPU time per second of audio.

    .venv/bin/python bench/aec.py [--calls 5] [--skip-calls] [--reverb] [--tune]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hello_tui.call import events as ev
from hello_tui.call.engine import CallOptions, Phone
from hello_tui.media import aec3_tuned, audio_processing, devices
from hello_tui.media.audio_processing import BLOCK, OFF, CaptureProcessor, ProcessingConfig
from hello_tui.media.sources import FileSource
from hello_tui.session.embedded import LOOPBACK, embedded_server
from hello_tui.signaling.client import SignalingClient
from hello_tui.signaling.identity import generate_key
from tests.acoustic import (
    AcousticPath,
    echo_delays,
    echo_impulse,
    envelope,
    power_db,
    read_mono,
    resample,
    speech,
)
from tests.pulse import PulseDaemon

RATE = 48_000
MIC, SPEAKER = "b_mic", "b_spk"
FAR_TEXT = (
    "Hello Bob, this is Alice calling from the other side of town. The weather has been "
    "lovely today and I walked along the river for an hour before lunch. "
    "Can you hear me clearly, or is there an echo on the line?"
)
NEAR_TEXT = "Yes, I can hear you very well. There is no echo at all, the line is perfect."
CONVERGE_S = 2.5
NEAR_AT_S = 3.0
MEASURED = ProcessingConfig(aec=True, noise_suppression=True, auto_gain=False)

_names = iter(range(1_000_000))


async def _phone(url: str, name: str) -> tuple[Phone, str]:
    name = f"{name}{next(_names)}"
    client = SignalingClient(reconnect=None)
    await client.connect(url)
    key = generate_key()
    await client.register(name, key)
    await client.login(name, key)
    phone = Phone(client, CallOptions(host_addresses=LOOPBACK))
    phone.start()
    return phone, name


Phones = tuple[Phone, Phone, str]  # Alice, Bob, Bob's account name


REVERB = False  # --reverb: the room with a reverberant tail


async def call(phones: Phones, daemon: PulseDaemon, far: Path, heard: Path,
               processing: ProcessingConfig, near: Path | None = None) -> np.ndarray:  # fmt: skip
    """One call; returns what Bob sent (Alice's recording)."""
    alice, bob, bob_name = phones
    talker = None
    room = AcousticPath(daemon.env, SPEAKER, MIC, delay_ms=50, gain_db=-6, reverb=REVERB)
    try:
        c = alice.dial(bob_name, audio_in=f"file:{far}", audio_out=f"file:{heard}")
        incoming = await bob.next_incoming(10)
        await incoming.accept(
            replace(incoming.options, audio_in=f"device:{MIC}", audio_out=f"device:{SPEAKER}",
                    audio_processing=processing)
        )  # fmt: skip
        await c.wait_for(ev.MediaFlowing, 30)
        pairs: list[tuple[np.ndarray, np.ndarray]] = []
        captured = incoming.source.source if incoming.source is not None else None
        if getattr(captured, "processor", None) is not None:
            captured.processor.tap = lambda n, f: pairs.append((n.copy(), f.copy()))  # type: ignore[union-attr]
        if near is not None:
            await asyncio.sleep(NEAR_AT_S)  # the script: Bob answers over Alice
            talker = subprocess.Popen(["paplay", "-d", MIC, str(near)],
                                      env={**os.environ, **daemon.env})  # fmt: skip
        assert c.source is not None and isinstance(c.source.source, FileSource)
        await asyncio.wait_for(c.source.source.ended.wait(), 60)
        processor = getattr(captured, "processor", None)
        if processor is not None:
            processor.tap = None
            st = processor.stats()
            print(
                f"    pairing lag {st.pairing_ms:.1f} ms, {st.realignments} realignments, "
                f"{st.gaps_filled} underruns filled ({st.gaps_trimmed} trimmed), "
                f"far frames {st.far_frames}, near "
                f"{st.frames}, missing {st.far_missing}, "
                f"waited {getattr(processor, 'far_waits', '-')}"
            )
            if pairs:
                print(f"    echo delay per 2 s window, ms (peak): {echo_delays(pairs)}")
        await c.hangup()
        await incoming.wait_ended(10)
    finally:
        if talker is not None:
            talker.wait(30)
        room.stop()
    from tests.call.conftest import read_wav

    return read_wav(heard)


def envelope_correlation(clean: np.ndarray, received: np.ndarray) -> float:
    """Pearson correlation of 10 ms RMS envelopes at the best lag."""
    a, b = envelope(clean), envelope(received)
    a0, b0 = a - a.mean(), b - b.mean()
    xc = np.correlate(b0, a0, mode="valid") if len(b0) >= len(a0) else np.zeros(1)
    lag = int(np.argmax(xc))
    seg = b[lag : lag + len(a)]
    return float(np.corrcoef(a, seg)[0, 1])


SWEEP = {
    "AEC+NS1": MEASURED,
    "AEC+NS0": replace(MEASURED, ns_level=0),
    "AEC": replace(MEASURED, noise_suppression=False),
    "AEC+NS1+AGC": ProcessingConfig(),  # the default: AGC's gain capped at 12 dB
    "AEC+NS1+AGC50": ProcessingConfig(agc_max_gain_db=50.0),  # the binding's own cap
    "AEC+NS0+AGC": ProcessingConfig(ns_level=0),
    # Speaker underruns re-pair the reference instead of filling their silence into it
    # (the behaviour before session 5): audio_processing.MAX_GAP = 0 for these calls.
    "AEC+NS1 no-fill": MEASURED,
    # AEC3 with the binding's default config (no shim), against MEASURED's tuned one.
    "AEC+NS1 untuned": replace(MEASURED, tuned_aec=False),
    "AEC untuned": replace(MEASURED, noise_suppression=False, tuned_aec=False),
    # The shipped tuning without its normal-state masks (aec3_tuned.TUNING is swapped).
    "AEC+NS1 nearend-only": MEASURED,
    # The shipped masks with AEC3's own filter length (13 blocks).
    "AEC+NS1 masks-only": MEASURED,
    # Only the nearend state's masks (AEC3's filter length and normal-state masks).
    "AEC+NS1 nearend-masks": MEASURED,
}
SHIPPED_TUNING = dict(aec3_tuned.TUNING)
NEAREND_ONLY = {k: v for k, v in SHIPPED_TUNING.items() if "normal_tuning" not in k}
MASKS_ONLY = {k: v for k, v in SHIPPED_TUNING.items() if not k.startswith("filter.")}
NEAREND_MASKS = {k: v for k, v in SHIPPED_TUNING.items() if "nearend_tuning" in k}


def gap_fill(label: str) -> None:
    audio_processing.MAX_GAP = 0 if label.endswith("no-fill") else RATE // 2
    variants = {"nearend-only": NEAREND_ONLY, "masks-only": MASKS_ONLY,
                "nearend-masks": NEAREND_MASKS}  # fmt: skip
    aec3_tuned.TUNING = variants.get(label.rpartition(" ")[2], SHIPPED_TUNING)


async def sweep(phones: Phones, daemon: PulseDaemon, work: Path, far: Path, near: Path,
                rounds: int, only: list[str]) -> None:  # fmt: skip
    """Double talk and ERLE per setting, settings alternated call by call so the
    machine's load is shared; medians over ``rounds``."""
    settings = {k: v for k, v in SWEEP.items() if not only or k in only}
    clean = resample(*read_mono(near)).astype(np.int16)
    off = await call(phones, daemon, far, work / "off.wav", OFF)
    dts: dict[str, list[float]] = {k: [] for k in settings}
    erles: dict[str, list[float]] = {k: [] for k in settings}
    for i in range(rounds):
        for label, config in settings.items():
            gap_fill(label)
            got = await call(phones, daemon, far, work / "dt.wav", config, near)
            dts[label].append(envelope_correlation(clean, got))
            on = await call(phones, daemon, far, work / "on.wav", config)
            start, end = int(CONVERGE_S * RATE), min(len(off), len(on)) - RATE // 2
            erles[label].append(power_db(off[start:end]) - power_db(on[start:end]))
            print(f"  round {i + 1} {label}: double talk {dts[label][-1]:.3f}, "
                  f"ERLE {erles[label][-1]:.1f} dB, load {os.getloadavg()[0]:.1f}",
                  flush=True)  # fmt: skip
    print("| setting | double talk, median (calls) | ERLE dB, median (calls) |")
    for label in settings:
        d, e = dts[label], erles[label]
        print(f"| {label} | {statistics.median(d):.3f} ({', '.join(f'{x:.3f}' for x in d)}) | "
              f"{statistics.median(e):.1f} ({', '.join(f'{x:.1f}' for x in e)}) |")  # fmt: skip


def reverb_impulse(delay_ms: float = 50.0, seed: int = 7) -> np.ndarray:
    """A harder numpy room than ``echo_impulse``: the direct path at -6.7 dB, then
    400 ms of reverberation 6 dB under it in all, decaying 3 dB per 50 ms: with
    AEC3's defaults ERLE after 2.5 s is ~25 dB, as in the gverb room (``--reverb``)."""
    rng = np.random.default_rng(seed)
    delay, length = int(delay_ms * RATE / 1000), int(0.4 * RATE)
    ir = np.zeros(delay + length)
    direct = 10 ** (-6.7 / 20)
    ir[delay] = direct
    tail = rng.standard_normal(length - 1) * 10 ** (-3 / 20 * np.arange(1, length) / (0.05 * RATE))
    ir[delay + 1 :] = tail * direct * 10 ** (-6 / 20) / np.sqrt(np.sum(tail**2))
    return ir


def fft_convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``np.convolve(x, h)[: len(x)]``, fast for long ``h``."""
    k = 1 << (len(x) + len(h) - 2).bit_length()
    return np.fft.irfft(np.fft.rfft(x, k) * np.fft.rfft(h, k), k)[: len(x)]


def synthetic_double_talk(
    config: ProcessingConfig | None, impulse: np.ndarray | None = None
) -> tuple[float, float]:
    """Double talk and ERLE of ``config`` on the numpy room (no PulseAudio, no
    load): far speech, its echo (``impulse``, default ``echo_impulse()``), Bob's
    sentence from 3 s."""
    with tempfile.TemporaryDirectory() as tmp:
        far, rate = read_mono(speech(Path(tmp) / "far.wav", FAR_TEXT))
        near, nrate = read_mono(speech(Path(tmp) / "near.wav", NEAR_TEXT, voice="en-gb", pitch=80))
    far = resample(far, rate)
    far = far * (0.5 * 32767 / np.max(np.abs(far)))
    clean = resample(near, nrate)
    clean = clean * (0.5 * 32767 / np.max(np.abs(clean)))
    echo = fft_convolve(far, echo_impulse() if impulse is None else impulse)
    at = int(NEAR_AT_S * RATE)
    talk = echo.copy()
    talk[at : at + len(clean)] += clean[: len(talk) - at]
    results = []
    for mic in (talk, echo):
        mic16 = np.clip(mic, -32768, 32767).astype(np.int16)
        if config is None:
            out = mic16
        else:
            proc = CaptureProcessor(config, echo_cancellation=config.aec)
            far16 = far.astype(np.int16)
            blocks = []
            for i in range(0, len(mic16) - 960 + 1, 960):
                proc.feed_far(far16[i : i + 960])
                blocks.append(proc.process(mic16[i : i + 960]))
            out = np.concatenate(blocks)
        results.append(out)
    start = int(CONVERGE_S * RATE)
    erle = power_db(echo[start : len(results[1])]) - power_db(results[1][start:])
    return envelope_correlation(clean.astype(np.int16), results[0]), erle


def tune_table() -> int:
    """``--tune``: AEC3 with the binding's default config against the shipped tuning
    (``media/aec3_tuned.py``), AEC alone and AEC + NS 1, on the numpy rooms with the
    echo 10-200 ms late (deterministic: no devices, no load)."""
    try:
        aec3_tuned.load_shim()
    except aec3_tuned.ShimUnavailable as exc:
        print(f"the AEC3 shim is unavailable: {exc}")
        return 1
    rooms = {f"{kind} {d} ms": fn(d) for d in (10, 50, 100, 200)
             for kind, fn in (("synthetic", lambda d: echo_impulse(delay_ms=d)),
                              ("reverberant", reverb_impulse))}  # fmt: skip
    print("| setting | " + " | ".join(rooms) + " |")
    print("|---" * (len(rooms) + 1) + "|")
    for label, config in (("AEC, default", SWEEP["AEC untuned"]),
                          ("AEC, tuned", replace(SWEEP["AEC untuned"], tuned_aec=True)),
                          ("AEC + NS 1, default", SWEEP["AEC+NS1 untuned"]),
                          ("AEC + NS 1, tuned", MEASURED)):  # fmt: skip
        cells = []
        for ir in rooms.values():
            r, erle = synthetic_double_talk(config, ir)
            cells.append(f"{r:.3f} / {erle:.1f} dB")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    jumps_table()
    return 0


def jumps_table() -> None:
    """ERLE per window when the echo path moves under the canceller (what a pairing
    move does in a loaded call): 60 ms, then 90 ms from 4 s, then 45 ms from 7 s."""
    with tempfile.TemporaryDirectory() as tmp:
        samples, rate = read_mono(speech(Path(tmp) / "far.wav", FAR_TEXT))
    far = resample(samples, rate)
    far = far * (0.5 * 32767 / np.max(np.abs(far)))
    n = len(far) // 960 * 960
    windows = ((2.5, 4), (4, 5), (5, 7), (7, 8), (8, n / RATE))
    print("\nERLE per window, echo path 60 → 90 ms at 4 s → 45 ms at 7 s (AEC + NS 1):")
    print("| setting | room | " + " | ".join(f"{a:g}–{b:.0f} s" for a, b in windows) + " |")
    print("|---|---" + "|---" * len(windows) + "|")
    for room, make in (("synthetic", lambda d: echo_impulse(delay_ms=d)),
                       ("reverberant", reverb_impulse)):  # fmt: skip
        echo = np.zeros(len(far))
        for a, b, d in ((0, 4, 60), (4, 7, 90), (7, 99, 45)):
            echo[a * RATE : b * RATE] = fft_convolve(far, make(d))[a * RATE : b * RATE]
        mic = np.clip(echo, -32768, 32767).astype(np.int16)[:n]
        for label in ("AEC+NS1 untuned", "AEC+NS1", "AEC+NS1 nearend-only", "AEC+NS1 masks-only"):
            gap_fill(label)
            proc = CaptureProcessor(SWEEP[label], echo_cancellation=True)
            out = []
            for i in range(0, n, 960):
                proc.feed_far(far[i : i + 960].astype(np.int16))
                out.append(proc.process(mic[i : i + 960]))
            sent = np.concatenate(out)
            spans = [slice(int(a * RATE), int(b * RATE)) for a, b in windows]
            cells = [power_db(echo[w]) - power_db(sent[w]) for w in spans]
            print(f"| {label} | {room} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    gap_fill("")


def cpu_alone(config: ProcessingConfig, seconds: float = 20.0) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        samples, rate = read_mono(speech(Path(tmp) / "far.wav", FAR_TEXT))
    far = np.tile(resample(samples, rate), 4)[: int(seconds * RATE)]
    far = far * (0.5 * 32767 / np.max(np.abs(far)))
    mic = np.clip(np.convolve(far, echo_impulse())[: len(far)], -32768, 32767).astype(np.int16)
    far16 = far.astype(np.int16)
    proc = CaptureProcessor(config, echo_cancellation=config.aec)
    t0 = time.thread_time()
    for i in range(0, len(mic) - 960 + 1, 960):
        proc.feed_far(far16[i : i + BLOCK])
        proc.feed_far(far16[i + BLOCK : i + 960])
        proc.process(mic[i : i + 960])
    return 100 * (time.thread_time() - t0) / seconds


async def run(args: argparse.Namespace) -> int:
    global REVERB
    REVERB = args.reverb
    logging.getLogger("aiortc").setLevel(logging.ERROR)
    if args.verbose:  # why the pairing moved, each time
        logging.basicConfig(format="      %(message)s")
        logging.getLogger("hello_tui.media.audio_processing").setLevel(logging.DEBUG)
    ok = True
    cpu_configs = (("AEC+NS+AGC+HPF (the default)", ProcessingConfig()),
                   ("AEC+NS+AGC+HPF, untuned AEC3 (no shim)", ProcessingConfig(tuned_aec=False)),
                   ("AEC+HPF", ProcessingConfig(noise_suppression=False, auto_gain=False)),
                   ("NS+AGC+HPF (no speaker)", ProcessingConfig(aec=False)))  # fmt: skip
    if args.tune:
        return tune_table()
    for label, config in () if args.sweep else cpu_configs:
        pct = cpu_alone(config)
        good = pct <= 2.5
        ok &= good or "default" not in label
        print(f"CPU of the stage alone, {label}: {pct:.2f} % of a core  "
              f"{'PASS' if good else 'FAIL'}")  # fmt: skip
    if args.skip_calls:
        return 0 if ok else 1
    work = Path(tempfile.mkdtemp(prefix="aec-bench-"))
    daemon = PulseDaemon(work / "pulse")
    daemon.start()
    for name in (MIC, SPEAKER):
        daemon.add_null_sink(name)
    print(f"room: loopback 50 ms, -6 dB{', reverberant tail' if REVERB else ''}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    conf = daemon.alsa_devices({MIC: f"{MIC}.monitor", SPEAKER: SPEAKER})
    os.environ.update({**daemon.env, "ALSA_CONFIG_PATH": str(conf)})
    devices.refresh()
    far = speech(work / "far.wav", FAR_TEXT)
    near = speech(work / "near.wav", NEAR_TEXT, voice="en-gb", pitch=80)
    try:
        async with embedded_server(echo=False) as server:
            alice, _ = await _phone(server.url, "alice")
            bob, bob_name = await _phone(server.url, "bob")
            url = (alice, bob, bob_name)
            if args.sweep:
                synthetic: dict[str, ProcessingConfig | None] = {"none": None, **SWEEP}
                for label, setting in synthetic.items():
                    if args.only and label not in args.only:
                        continue
                    gap_fill(label)
                    r, erle = synthetic_double_talk(setting)
                    print(f"synthetic room, {label}: double talk {r:.3f}, ERLE {erle:.1f} dB")
                await sweep(url, daemon, work, far, near, args.sweep, args.only)
                return 0
            off = await call(url, daemon, far, work / "off.wav", OFF)
            erles = []
            for i in range(args.calls):
                on = await call(url, daemon, far, work / f"on{i}.wav", MEASURED)
                start, end = int(CONVERGE_S * RATE), min(len(off), len(on)) - RATE // 2
                erle = power_db(off[start:end]) - power_db(on[start:end])
                erles.append(erle)
                print(f"  call {i + 1}: echo {power_db(off[start:end]):.1f} dB, residual "
                      f"{power_db(on[start:end]):.1f} dB, ERLE {erle:.1f} dB")  # fmt: skip
            median = statistics.median(erles)
            good = median >= 25
            ok &= good
            print(f"ERLE after {CONVERGE_S} s, median of {args.calls} calls: {median:.1f} dB "
                  f"({min(erles):.1f}–{max(erles):.1f})  {'PASS' if good else 'FAIL'}")  # fmt: skip
            clean = resample(*read_mono(near)).astype(np.int16)
            got = await call(url, daemon, far, work / "dt-off.wav", OFF, near)
            print(f"double talk, processing off (the reference): near-end envelope "
                  f"correlation {envelope_correlation(clean, got):.3f}")  # fmt: skip
            dts = []
            for i in range(args.calls):
                got = await call(url, daemon, far, work / f"dt-on{i}.wav", MEASURED, near)
                dts.append(envelope_correlation(clean, got))
                print(f"  call {i + 1}: double talk {dts[-1]:.3f}", flush=True)
            median = statistics.median(dts)
            good = median >= 0.9
            ok &= good
            print(f"double talk, processing on, median of {args.calls} calls: near-end envelope "
                  f"correlation {median:.3f} ({min(dts):.3f}-{max(dts):.3f})  "
                  f"{'PASS' if good else 'FAIL'}")  # fmt: skip
            print(f"load average: {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")
    finally:
        daemon.stop()
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5)
    ap.add_argument("--skip-calls", action="store_true", help="only the CPU figures")
    ap.add_argument("-v", "--verbose", action="store_true", help="why the pairing moved")
    ap.add_argument("--reverb", action="store_true",
                    help="the room with a reverberant tail (swh-plugins' gverb)")  # fmt: skip
    ap.add_argument("--sweep", type=int, default=0, metavar="ROUNDS",
                    help="double talk and ERLE per processing setting, alternated")  # fmt: skip
    ap.add_argument("--tune", action="store_true",
                    help="double talk / ERLE, AEC3 default vs tuned, numpy rooms only")  # fmt: skip
    ap.add_argument("--only", type=lambda v: v.split(","), default=[],
                    help="with --sweep: these settings only (comma-separated labels)")  # fmt: skip
    return asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
