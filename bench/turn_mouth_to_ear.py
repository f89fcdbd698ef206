#!/usr/bin/env python3
"""Mouth-to-ear and setup via TURN (UDP) between two NATed homes vs direct, same links.

The namespace Internet of ``tests/net/`` (root needed): ``hello-tui serve`` and
a real coturn on the public side, each home a ``hello-tui`` CLI subprocess
(``call`` in home 1, ``answer --auto --once`` in home 2). One Internet for the
whole run; the two arms alternate call by call, in ABBA order (relay first
in even rounds, direct first in odd ones):

- ``relay``: both homes behind their NATs and ``[ice] transport_policy =
  "relay"`` in both homes' config: media through coturn over UDP;
- ``direct``: the same veths, routers and coturn, but the NATs off and the
  public side routing both home subnets (:meth:`Internet.set_nat`), policy
  ``all``: a host pair, home to home.

Mouth-to-ear is measured as the peers harness (/work/shared/peers) measures
it: one private PulseAudio with stereo null sinks ``L1``/``L2``; ``a_mic`` =
left of ``L1``'s monitor, ``b_spk`` = right of ``L1`` (and ``b_mic``/``a_spk``
on ``L2``). A stimulus (hiss with a 40 ms 0.5–4 kHz chirp every second) is
played into the left of both; each CLI's ``device:pulse`` source and sink are
steered with ``PULSE_SOURCE``/``PULSE_SINK`` (a Unix socket reaches the daemon
from inside a namespace). ``parec`` records each sink's monitor in stereo, and
a matched filter finds each chirp on the left (sent) and on the right (played
by the far end): the delay is that of the whole chain, capture device →
Opus → network → jitter buffer → playback device, on one clock. Setup: the
caller's ``stats`` line (dial → first remote audio frame).

Also reported per arm: RTCP round trip (what the path itself costs) and the
each side's playout target + card buffer at hangup (what the adaptive
buffers added); and the median of the round-by-round relay − direct
differences, which share the machine's noise.

Bar (docs/benchmarks.md): relay median within 10 ms of direct.

    .venv/bin/python bench/turn_mouth_to_ear.py [--calls 5] [--call-seconds 10]  # as root
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.net.internet import Internet, NetError, internet, unavailable
from tests.net.services import Home, ServiceUnavailable, public_services
from tests.pulse import PulseDaemon

RATE = 48_000
BAR_MS = 10.0
RELAY_CONFIG = '[ice]\ntransport_policy = "relay"\n'
# a_mic/b_spk on L1 (A→B), b_mic/a_spk on L2 (B→A): the peers harness's topology.
REMAPS = (
    ("remap-source", "a_mic", "L1.monitor", "front-left"),
    ("remap-sink", "b_spk", "L1", "front-right"),
    ("remap-source", "b_mic", "L2.monitor", "front-left"),
    ("remap-sink", "a_spk", "L2", "front-right"),
)


# ------------------------------------------------------------------ stimulus and analysis


def chirp() -> np.ndarray:
    n = int(0.040 * RATE)
    t = np.arange(n) / RATE
    f0, f1 = 500.0, 4000.0
    out: np.ndarray = np.sin(2 * np.pi * (f0 * t + 0.5 * (f1 - f0) / t[-1] * t * t))
    return out * np.hanning(n)


def write_stimulus(path: Path, seconds: float) -> int:
    """Stereo WAV: left = hiss (~−36 dBFS) + a chirp every second from 0.5 s, right silent."""
    rng = np.random.default_rng(1234)
    n = int(seconds * RATE)
    noise = np.convolve(rng.standard_normal(n), np.ones(4) / 4, mode="same")
    sig = noise / np.sqrt(np.mean(noise**2)) * 0.0158
    tpl, count = chirp(), 0
    for start in range(RATE // 2, n - RATE // 10 - len(tpl), RATE):
        sig[start : start + len(tpl)] += 0.5 * tpl
        count += 1
    stereo = np.zeros((n, 2), dtype="<i2")
    stereo[:, 0] = np.clip(sig * 32767, -32768, 32767)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(stereo.tobytes())
    return count


def _xcorr(x: np.ndarray, tpl: np.ndarray) -> np.ndarray:
    n = len(x) + len(tpl) - 1
    nfft = 1 << (n - 1).bit_length()
    c = np.fft.irfft(np.fft.rfft(x, nfft) * np.fft.rfft(tpl[::-1], nfft), nfft)[:n]
    return np.abs(c[len(tpl) - 1 :])


def chirp_delays(raw: Path, max_lag_s: float = 0.9) -> list[float]:
    """Per-chirp delay (ms) from the left channel (sent) to the right (played by the far end)."""
    data = np.fromfile(raw, dtype="<i2")
    if data.size < 2 * RATE:
        return []
    data = data[: data.size // 2 * 2].reshape(-1, 2).astype(np.float64) / 32768
    tpl = chirp()
    left, right = _xcorr(data[:, 0], tpl), _xcorr(data[:, 1], tpl)
    if left.max() <= 0:
        return []
    refs, i, threshold = [], 0, 0.5 * left.max()
    while i < len(left):  # sent chirps: maxima over half the loudest, ≥ 0.5 s apart
        if left[i] >= threshold:
            k = i + int(np.argmax(left[i : i + RATE // 10]))
            refs.append(k)
            i = k + RATE // 2
        else:
            i += 1
    lag = int(max_lag_s * RATE)
    delays = []
    for r in refs:
        seg = right[r : r + lag]
        if len(seg) < lag:
            continue
        q = int(np.argmax(seg))
        if seg[q] >= 0.25 * left[r] and seg[q] >= 4 * np.median(seg):  # well above the floor
            delays.append(q * 1000.0 / RATE)
    return delays


# ------------------------------------------------------------------ audio rig


class Rig:
    """A private PulseAudio with the L1/L2 topology; recorders and the stimulus player."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.daemon = PulseDaemon(work / "pulse")
        self.helpers: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ}

    def start(self) -> None:
        self.daemon.start()
        self.env.update(self.daemon.env)
        for sink in ("L1", "L2"):
            self.daemon.add_null_sink(sink, channels=2)
        for module, name, master, channel in REMAPS:
            kind = "source" if module == "remap-source" else "sink"
            done = self.daemon.pactl(
                "load-module",
                f"module-{module}",
                f"{kind}_name={name}",
                f"master={master}",
                "channels=1",
                f"master_channel_map={channel}",
                "channel_map=mono",
                "remix=no",
            )
            if done.returncode != 0:
                raise RuntimeError(f"pactl load-module {module} {name}: {done.stderr.strip()}")
        for sink in ("a_spk", "b_spk"):  # rendering in small steps, like a card
            self.helpers.append(
                self._spawn(
                    ["parec", "--latency-msec=10", "-d", f"{sink}.monitor", "--raw"],
                    subprocess.DEVNULL,
                )
            )
        time.sleep(0.2)
        silence = self.work / "silence.wav"  # a fresh daemon's first stream is slow: warm up
        with wave.open(str(silence), "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(b"\0" * (RATE // 20) * 4)
        for sink in ("L1", "L2", "a_spk", "b_spk"):
            subprocess.run(
                ["paplay", "-d", sink, "--latency-msec=20", str(silence)],
                env=self.env,
                timeout=10,
                check=False,
            )

    def _spawn(self, cmd: list[str], out: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            cmd, env=self.env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.DEVNULL
        )

    def record(self, where: Path) -> list[tuple[subprocess.Popen[bytes], Any]]:
        out = []
        for sink in ("L1", "L2"):
            f = (where / f"rec_{sink}.raw").open("wb")
            out.append(
                (
                    self._spawn(
                        [
                            "parec",
                            "-d",
                            f"{sink}.monitor",
                            "--raw",
                            "--format=s16le",
                            "--rate=48000",
                            "--channels=2",
                            "--latency-msec=20",
                        ],
                        f,
                    ),
                    f,
                )
            )
        return out

    def play(self, stimulus: Path) -> list[subprocess.Popen[bytes]]:
        return [
            self._spawn(
                ["paplay", "-d", sink, "--latency-msec=20", str(stimulus)], subprocess.DEVNULL
            )
            for sink in ("L1", "L2")
        ]

    def stop(self) -> None:
        for proc in self.helpers:
            _end(proc)
        self.daemon.stop()


def _end(proc: subprocess.Popen[Any], grace: float = 3.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


# ------------------------------------------------------------------ one call


@dataclass
class CallResult:
    arm: str
    setup_ms: float | None = None
    path: str = "?"
    a_to_b: list[float] = field(default_factory=list)
    b_to_a: list[float] = field(default_factory=list)
    playout: str = ""
    rtt: list[float] = field(default_factory=list)  # RTCP round trip, each side's median
    targets: list[float] = field(default_factory=list)  # playout target + card buffer, per side
    error: str = ""
    timing: str = ""  # where the wall time of the call went

    def median(self) -> float | None:
        if self.error:
            return None
        both = self.a_to_b + self.b_to_a
        return statistics.median(both) if both else None


class Lines:
    """A CLI's ``--json`` lines, read on a thread so the caller can wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.cond = proc, threading.Condition()
        self.events: list[dict[str, Any]] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                with self.cond:
                    self.events.append(json.loads(line))
                    self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait(self, kind: str, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                hit = next((e for e in self.events if e.get("kind") == kind), None)
                left = deadline - time.monotonic()
                if (
                    hit
                    or left <= 0
                    or (self.proc.poll() is not None and not self.thread.is_alive())
                ):
                    return hit
                self.cond.wait(min(left, 0.5))


def _config(home: Home) -> str:
    """What ``account register`` wrote to the home's config (kept under the policy)."""
    path = home.root / "config" / "hello-tui" / "config.toml"
    text = path.read_text() if path.exists() else ""
    return text if not text or text.endswith("\n") else text + "\n"


def _spawn(home: Home, env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[str]:
    with log.open("wb") as err:  # a file, not a pipe nobody reads: it can never fill up
        return subprocess.Popen(
            home.cmd(*args),
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**home.env(), **env},
        )


def one_call(
    arm: str,
    net: Internet,
    url: str,
    homes: tuple[Home, Home],
    bases: tuple[str, str],
    rig: Rig,
    seconds: float,
    stimulus: Path,
    where: Path,
) -> CallResult:
    alice, bob = homes
    res = CallResult(arm)
    t0 = time.monotonic()
    net.set_nat(arm == "relay")
    for home, base in zip(homes, bases, strict=True):  # the account's config, + the policy
        home.config(base + (RELAY_CONFIG if arm == "relay" else ""))
    where.mkdir(parents=True)
    pulse = {"PULSE_SERVER": rig.daemon.env["PULSE_SERVER"]}
    dev = ("--audio-in", "device:pulse", "--audio-out", "device:pulse", "--json")
    answer = _spawn(
        bob,
        {**pulse, "PULSE_SOURCE": "b_mic", "PULSE_SINK": "b_spk"},
        where / "answer.err",
        "answer",
        "--auto",
        "--once",
        "--server",
        url,
        *dev,
    )
    procs: list[subprocess.Popen[Any]] = [answer]
    recorders: list[tuple[subprocess.Popen[bytes], Any]] = []
    try:
        b_lines = Lines(answer)
        if b_lines.wait("listening", 60) is None:
            res.error = "callee never listened: " + (where / "answer.err").read_text()[-300:]
            return res
        recorders = rig.record(where)
        time.sleep(0.5)
        call = _spawn(
            alice,
            {**pulse, "PULSE_SOURCE": "a_mic", "PULSE_SINK": "a_spk"},
            where / "call.err",
            "call",
            "bob",
            "--server",
            url,
            "--duration",
            f"{seconds + 1.5:g}",
            *dev,
        )
        procs.append(call)
        a_lines = Lines(call)
        if a_lines.wait("media-flowing", 60) is None:
            res.error = "no media: " + " ".join(e["kind"] for e in a_lines.events)
            return res
        procs += rig.play(stimulus)
        t_media = time.monotonic()
        call.wait(seconds + 60)
        t_hung = time.monotonic()
        answer.wait(30)
        res.timing = (
            f"to media {t_media - t0:.1f} s, caller out {t_hung - t_media:.1f} s, "
            f"callee out {time.monotonic() - t_hung:.1f} s"
        )
        a_lines.thread.join(5)
        b_lines.thread.join(5)
        stats = [e for e in a_lines.events if e["kind"] == "stats"]
        if stats and stats[-1].get("setup_ms") is not None:
            res.setup_ms = float(stats[-1]["setup_ms"])
        paths, playout = [], []
        for lines, name in ((a_lines, "A"), (b_lines, "B")):
            end: dict[str, Any] = next((e for e in lines.events if e["kind"] == "ended"), {})
            quality = end.get("quality") or {}
            paths.append(f"{name}:{quality.get('candidate_type') or '?'}")
            last = next((e for e in reversed(lines.events) if e["kind"] == "stats"), {})
            play = last.get("playout") or {}
            rtt, target = quality.get("rtt_ms_p50"), play.get("target_ms")
            if rtt is not None:
                res.rtt.append(float(rtt))
            if target is not None:
                res.targets.append(float(target) + float(play.get("card_ms", 0)))
            playout.append(
                f"{name} rtt {rtt or 0:.1f} ms, jitter {quality.get('jitter_ms_p50') or 0:.0f} ms,"
                f" playout target {target or 0:.0f} depth {play.get('buffer_ms', 0):.0f} card "
                f"{play.get('card_ms', 0):.0f} ms"
            )
        res.path, res.playout = " ".join(paths), "; ".join(playout)
        want = "relay" if arm == "relay" else "host"
        if any(not p.endswith(f":{want}") for p in paths):  # the arm did not take its path
            res.error = f"not {want} on both sides: left out"
    finally:
        for proc in reversed(procs):
            _end(proc)
        for proc, f in recorders:
            _end(proc)
            f.close()
    res.a_to_b = chirp_delays(where / "rec_L1.raw")
    res.b_to_a = chirp_delays(where / "rec_L2.raw")
    return res


# ------------------------------------------------------------------ main


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5, help="calls per arm (alternated)")
    ap.add_argument("--call-seconds", type=float, default=10.0)
    ap.add_argument("--arms", nargs="+", choices=("relay", "direct"), default=("relay", "direct"))
    ap.add_argument("--keep", action="store_true", help="keep the recordings (path printed)")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up namespaces and daemons
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    work = Path(tempfile.mkdtemp(prefix="turn-m2e-"))
    stimulus = work / "stimulus.wav"
    chirps = write_stimulus(stimulus, max(2.0, args.call_seconds - 1.0))
    print(f"load average at start: {_load()}; {chirps} chirps per direction per call")
    results: list[CallResult] = []
    rig = Rig(work)
    try:
        rig.start()
        with internet() as net, public_services(net, work / "pub") as pub:
            homes = (pub.home(1, work), pub.home(2, work))
            for home, name in zip(homes, ("alice", "bob"), strict=True):
                done = home.run("account", "register", name, "--server", pub.url)
                if done.returncode != 0:
                    raise RuntimeError(done.stderr.strip())
            bases = (_config(homes[0]), _config(homes[1]))
            for i in range(args.calls):
                # ABBA: each arm goes first in every other round (no order bias)
                for arm in args.arms if i % 2 == 0 else args.arms[::-1]:
                    r = one_call(
                        arm,
                        net,
                        pub.url,
                        homes,
                        bases,
                        rig,
                        args.call_seconds,
                        stimulus,
                        work / f"{arm}{i}",
                    )
                    results.append(r)
                    med = r.median()
                    print(
                        f"  {arm:6} call {i + 1}: setup {r.setup_ms or float('nan'):4.0f} ms  "
                        f"m2e A→B {_med(r.a_to_b):5.1f} B→A {_med(r.b_to_a):5.1f} "
                        f"(n={len(r.a_to_b)}+{len(r.b_to_a)})  median "
                        f"{med if med is not None else float('nan'):5.1f}  path {r.path}"
                        f"  {r.error}\n      {r.playout}\n      {r.timing}",
                        flush=True,
                    )
    except (RuntimeError, ServiceUnavailable, NetError) as exc:  # no pulseaudio, coturn, …
        print(f"turn_mouth_to_ear: {exc}", file=sys.stderr)
        return 2
    finally:
        rig.stop()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)
        else:
            print(f"recordings kept in {work}")
    print(f"load average at end: {_load()}")
    medians: dict[str, float] = {}
    for arm in args.arms:
        mine = [r for r in results if r.arm == arm]
        calls = [m for r in mine if (m := r.median()) is not None]
        setups = sorted(r.setup_ms for r in mine if r.setup_ms is not None)
        if not calls:
            print(f"{arm:6}: no call measured")
            continue
        medians[arm] = statistics.median(calls)
        ab = _med([_med(r.a_to_b) for r in mine if r.a_to_b])
        ba = _med([_med(r.b_to_a) for r in mine if r.b_to_a])
        print(
            f"{arm:6}: mouth-to-ear median of {len(calls)} calls {medians[arm]:.1f} ms "
            f"(calls {min(calls):.1f}–{max(calls):.1f}; A→B {ab:.1f}, B→A {ba:.1f}); "
            f"setup median {_med(setups):.0f} ms ({setups[0] if setups else 0:.0f}–"
            f"{setups[-1] if setups else 0:.0f})  paths {sorted({r.path for r in mine})}"
        )
        rtt = _med([x for r in mine for x in r.rtt])
        held = _med([x for r in mine for x in r.targets])
        print(
            f"        RTCP round trip median {rtt:.1f} ms; playout target + card buffer at "
            f"hangup, median {held:.0f} ms"
        )
    if "relay" in medians and "direct" in medians:
        diff = medians["relay"] - medians["direct"]
        relay = [r.median() for r in results if r.arm == "relay"]
        direct = [r.median() for r in results if r.arm == "direct"]
        pairs = [
            a - b for a, b in zip(relay, direct, strict=False) if a is not None and b is not None
        ]
        if pairs:  # each relay call against the direct call of its round: shared noise
            each = ", ".join(f"{x:+.0f}" for x in pairs)
            print(f"paired, round by round: median {statistics.median(pairs):+.1f} ms ({each})")
        verdict = "PASS" if diff <= BAR_MS else "FAIL"
        print(f"relay − direct: {diff:+.1f} ms (bar ≤ {BAR_MS:.0f} ms)  {verdict}")
        return 0 if verdict == "PASS" else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
