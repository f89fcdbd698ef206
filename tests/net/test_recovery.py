"""Calls that recover, or end in words, on the namespace Internet (docs/calls.md).

alice (home 1) calls bob (home 2) through the real coturn; mid-call, home 1's
router drops traffic: for good (all UDP: the relayed media path is gone, the
signaling over TCP is not), or for 3 s (everything). Both sides are CLI
subprocesses; what they say is their JSON events and exit codes.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.net.conftest import World
from tests.net.internet import Internet

T = 60.0
OUTAGE = 3.0  # seconds: the "3 s total outage"


@contextmanager
def outage(net: Internet, home: int) -> Iterator[None]:
    """Home ``home``'s router forwards nothing, in either direction, for the block."""
    net.nft(
        f"r{home}",
        "table inet outage {\n"
        " chain through { type filter hook forward priority filter; counter drop\n }\n"
        "}\n",
    )
    try:
        yield
    finally:
        net.sh(f"r{home}", "nft", "delete", "table", "inet", "outage")


def _until(proc: subprocess.Popen[str], kind: str) -> dict[str, Any]:
    assert proc.stdout is not None
    while line := proc.stdout.readline():
        event = json.loads(line)
        if event["kind"] == kind:
            return dict(event)
    raise AssertionError(f"no {kind} event; stderr: {proc.communicate(timeout=T)[1]}")


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _start(world: World, tmp: Path, *alice_args: str) -> tuple[Any, Any]:
    bob = world.bob.spawn(
        "answer", "--auto", "--once", "--server", world.public.url, "--audio-in", "sine:880",
        "--audio-out", f"file:{tmp / 'bob.wav'}", "--json",
    )  # fmt: skip
    assert _until(bob, "listening")["name"] == "bob"
    alice = world.alice.spawn(
        "call", "bob", "--server", world.public.url, "--audio-in", "sine:440",
        "--audio-out", f"file:{tmp / 'alice.wav'}", "--json", *alice_args,
    )  # fmt: skip
    _until(alice, "media-flowing")
    _until(bob, "media-flowing")
    return alice, bob


def _finish(*procs: Any) -> list[tuple[int, list[dict[str, Any]], str]]:
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=T)
        done.append((proc.returncode, _events(out), err))
    return done


def _kill(*procs: Any) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_path_gone_for_good_ends_the_call_in_words_within_seconds(
    world: World, tmp_path: Path
) -> None:
    alice, bob = _start(world, tmp_path)
    try:
        world.net.block_udp(1)  # the relayed media path is gone; the server is not
        blocked_at = time.time()
        results = _finish(alice, bob)
    finally:
        _kill(alice, bob)
        world.net.unblock(1)
    for (code, events, err), name in zip(results, ("alice", "bob"), strict=True):
        ended = next(e for e in events if e["kind"] == "ended")
        after = ended["t"] - blocked_at
        print(f"{name}: ended {after:.1f} s after the block: {ended['message']}")
        assert code == 6, err  # media failure
        assert (ended["reason"], ended["stage"]) == ("media-fail", "connected"), ended
        other = "bob" if name == "alice" else "alice"
        assert ended["message"] == f"lost the connection to {other} (network)"
        # aiortc alone would say nothing for ~30 s (consent freshness): well before.
        assert after < 20, f"{name} ended {after:.1f} s after the path went"
    alice_kinds = [e["kind"] for e in results[0][1]]
    assert "reconnecting" in alice_kinds, alice_kinds  # said before giving up


def test_a_three_second_outage_the_call_resumes_by_itself(world: World, tmp_path: Path) -> None:
    alice, bob = _start(world, tmp_path, "--duration", "10")
    try:
        with outage(world.net, 1):
            time.sleep(OUTAGE)  # the outage itself (the scenario, not a synchronisation)
        back_at = time.time()
        results = _finish(alice, bob)
    finally:
        _kill(alice, bob)
    for (code, events, err), name in zip(results, ("alice", "bob"), strict=True):
        kinds = [e["kind"] for e in events]
        assert code == 0, err
        ended = next(e for e in events if e["kind"] == "ended")
        assert (ended["reason"], ended["stage"]) == ("hangup", "connected"), ended
        assert "reconnecting" in kinds, kinds
        resumed = next(e for e in events if e["kind"] == "media-resumed")
        print(f"{name}: audio back {resumed['t'] - back_at:.2f} s after the path returned "
              f"(nothing heard for {resumed['gap_s']} s)")  # fmt: skip
        assert resumed["t"] - back_at < 6.0  # the bar is 3 s: generous under load
