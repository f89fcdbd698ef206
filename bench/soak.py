#!/usr/bin/env python3
"""Soak: back-to-back scripted calls through a real ``hello-tui serve``.

Everything is a real subprocess over loopback: ``hello-tui serve --port 0``,
one long-running ``hello-tui answer --auto`` (bob: ``sine:660`` in,
``null:`` out) and, per call, ``hello-tui call bob`` (alice: ``sine:440``
in, ``null:`` out, ``--duration``). After each call the server's process
tree and the answerer are read from /proc: resident memory (VmRSS) and open
file descriptors. Per call: the caller's setup time (dial → first remote
audio, its ``stats`` line) and how each side saw the end. The only explained
end is the scripted one: the caller hangs up after ``--duration`` (caller:
reason ``hangup``, exit 0, media flowed; answerer: an ``ended`` line with
reason ``hangup``). Anything else is an unexplained end, listed in full.

Then, optionally, one long call (``--long SECONDS``) sampled every 10 s.

    .venv/bin/python bench/soak.py [--calls 100] [--duration 2] [--long 300]

``tests/call/test_soak.py`` runs the same code with 10 short calls.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import hello_cmd, isolated_env, stop_all, tree


def rss_mib(pid: int) -> float:
    """Resident memory now (VmRSS) in MiB; 0 for a process that is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@dataclass
class Sample:
    server_rss: float
    server_fds: int
    answer_rss: float
    answer_fds: int


def sample(server: int, answer: int) -> Sample:
    pids = tree(server)
    return Sample(
        sum(rss_mib(p) for p in pids),
        sum(fd_count(p) for p in pids),
        rss_mib(answer),
        fd_count(answer),
    )


@dataclass
class Soak:
    baseline: Sample | None = None
    samples: list[Sample] = field(default_factory=list)  # after each call
    setup_ms: list[float] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    long_samples: list[tuple[float, Sample]] = field(default_factory=list)


def _lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


def _reader(stream: Any, into: queue.Queue[dict[str, Any]]) -> None:
    for line in stream:
        for item in _lines(line):
            into.put(item)


def _answer_end(events: queue.Queue[dict[str, Any]], timeout: float) -> dict[str, Any] | None:
    """The answerer's next ``ended`` line (its other lines are skipped)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            item = events.get(timeout=left)
        except queue.Empty:
            return None
        if item.get("kind") == "ended":
            return item
    return None


def one_call(url: str, env: dict[str, str], duration: float) -> tuple[dict[str, Any], str]:
    """One scripted call; returns the caller's last (stats) line and a problem ('' if none)."""
    try:
        done = subprocess.run(
            hello_cmd("call", "bob", "--server", url, "--audio-in", "sine:440",
                      "--audio-out", "null:", "--duration", str(duration), "--json"),
            capture_output=True, text=True, env=env, timeout=duration + 60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {}, "caller: did not end within duration + 60 s"
    lines = _lines(done.stdout)
    kinds = [x.get("kind") for x in lines]
    stats = lines[-1] if lines and lines[-1].get("kind") == "stats" else {}
    err = done.stderr.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or stats.get("reason") != "hangup":
        return stats, (
            f"caller: exit {done.returncode}, reason {stats.get('reason')!r}, "
            f"events {kinds}, stderr {err[0]!r}"
        )
    if "media-flowing" not in kinds:
        return stats, f"caller: hung up without media, events {kinds}"
    return stats, ""


def soak(calls: int, duration: float, tmp: Path, long_call: float = 0.0,
         progress: bool = False) -> Soak:  # fmt: skip
    result = Soak()
    server = subprocess.Popen(
        hello_cmd("serve", "--port", "0", "--data-dir", str(tmp / "srv")),
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=isolated_env(tmp / "s"),
    )  # fmt: skip
    procs: list[subprocess.Popen[str]] = [server]
    try:
        assert server.stdout is not None
        url = server.stdout.readline().rsplit(" ", 1)[1].strip()
        env_a, env_b = isolated_env(tmp / "a"), isolated_env(tmp / "b")
        for name, env in (("bob", env_b), ("alice", env_a)):
            subprocess.run(hello_cmd("account", "register", name, "--server", url), env=env,
                           check=True, capture_output=True, timeout=60)  # fmt: skip
        answer = subprocess.Popen(
            hello_cmd("answer", "--auto", "--server", url, "--audio-in", "sine:660",
                      "--audio-out", "null:", "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env_b,
        )  # fmt: skip
        procs.append(answer)
        assert answer.stdout is not None
        first = json.loads(answer.stdout.readline())
        assert first["kind"] == "listening", first
        events: queue.Queue[dict[str, Any]] = queue.Queue()
        threading.Thread(target=_reader, args=(answer.stdout, events), daemon=True).start()
        result.baseline = sample(server.pid, answer.pid)
        plan = [duration] * calls + ([long_call] if long_call > 0 else [])
        for i, seconds in enumerate(plan):
            sampler = None
            if seconds == long_call and i == calls:
                sampler = _LongSampler(server.pid, answer.pid, result.long_samples)
            stats, problem = one_call(url, env_a, seconds)
            if sampler is not None:
                sampler.stop()
            ended = _answer_end(events, 30)
            if ended is None:
                problem = problem or "answerer: no 'ended' line within 30 s"
            elif ended.get("reason") != "hangup":
                problem = problem or f"answerer: ended {ended.get('reason')!r}"
            if problem:
                result.unexplained.append(f"call {i + 1}: {problem}")
                if progress:
                    print(f"  unexplained: {result.unexplained[-1]}", flush=True)
            if stats.get("setup_ms") is not None and i < calls:
                result.setup_ms.append(float(stats["setup_ms"]))
            if answer.poll() is not None:
                result.unexplained.append(f"call {i + 1}: the answerer exited")
                break
            if i < calls:
                result.samples.append(sample(server.pid, answer.pid))
            if progress and (i + 1) % 10 == 0:
                s = sample(server.pid, answer.pid)
                recent = result.setup_ms[-10:]
                setup = statistics.median(recent) if recent else float("nan")
                print(f"  {i + 1:4} calls  server {s.server_rss:6.1f} MiB {s.server_fds:4} fds"
                      f"  answerer {s.answer_rss:6.1f} MiB {s.answer_fds:4} fds"
                      f"  setup median (last 10) {setup:5.0f} ms"
                      f"  unexplained {len(result.unexplained)}", flush=True)  # fmt: skip
        return result
    finally:
        stop_all(reversed(procs))


class _LongSampler:
    """Samples every 10 s while the long call runs."""

    def __init__(self, server: int, answer: int, into: list[tuple[float, Sample]]) -> None:
        self._done = threading.Event()
        t0 = time.monotonic()

        def run() -> None:
            while not self._done.wait(10):
                into.append((time.monotonic() - t0, sample(server, answer)))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def _quartiles(values: list[float]) -> str:
    if len(values) < 4:
        return " ".join(f"{v:.0f}" for v in values)
    q = statistics.quantiles(values, n=4)
    return f"median {q[1]:.0f} (p25 {q[0]:.0f}, p75 {q[2]:.0f}), max {max(values):.0f}"


def report(result: Soak) -> None:
    base = result.baseline
    assert base is not None
    n = len(result.setup_ms)
    print(f"calls with a setup time: {n}; unexplained ends: {len(result.unexplained)}")
    for line in result.unexplained:
        print(f"  {line}")
    if n:
        tenth = max(1, n // 10)
        first, last = result.setup_ms[:tenth], result.setup_ms[-tenth:]
        print(f"setup ms: {_quartiles(result.setup_ms)}; first {tenth} median "
              f"{statistics.median(first):.0f}, last {tenth} median "
              f"{statistics.median(last):.0f}")  # fmt: skip
    if result.samples:
        end = result.samples[-1]
        peak = max(s.answer_rss for s in result.samples)
        print(f"server   RSS {base.server_rss:6.1f} → {end.server_rss:6.1f} MiB, "
              f"fds {base.server_fds} → {end.server_fds}")  # fmt: skip
        print(f"answerer RSS {base.answer_rss:6.1f} → {end.answer_rss:6.1f} MiB "
              f"(peak {peak:.1f}), fds {base.answer_fds} → {end.answer_fds}")  # fmt: skip
        if len(result.samples) >= 20:
            tenth = len(result.samples) // 10
            a = statistics.median(s.answer_rss for s in result.samples[tenth : 2 * tenth])
            b = statistics.median(s.answer_rss for s in result.samples[-tenth:])
            print(f"answerer RSS median, second tenth of calls {a:.1f} MiB, last tenth {b:.1f}")
    if result.long_samples:
        _first_t, first = result.long_samples[0]
        last_t, last = result.long_samples[-1]
        print(f"long call: {len(result.long_samples)} samples over {last_t:.0f} s; "
              f"answerer RSS {first.answer_rss:.1f} → {last.answer_rss:.1f} MiB, "
              f"fds {first.answer_fds} → {last.answer_fds}; server RSS "
              f"{first.server_rss:.1f} → {last.server_rss:.1f} MiB")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--duration", type=float, default=2.0, help="seconds of media per call")
    ap.add_argument("--long", type=float, default=0.0, metavar="SECONDS",
                    help="then one call this long (0: none)")  # fmt: skip
    args = ap.parse_args()
    # Stopped early (kill PID): still stop the server and the answerer it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        result = soak(args.calls, args.duration, Path(tmp), args.long, progress=True)
    report(result)
    print(f"wall {time.monotonic() - t0:.0f} s")
    return 1 if result.unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
