#!/usr/bin/env python3
"""Call setup through TURN between two NATed homes vs direct on the same links.

The namespace Internet of ``tests/net/`` (root needed): two homes, each a
``hello-tui`` CLI subprocess (``call`` / ``answer --auto``), a real coturn and
``hello-tui serve`` on the public side. ``setup_ms`` is the caller's dial →
first remote audio frame (its ``stats`` line). Three profiles, each on its
own freshly built namespaces:

- ``direct``: no NAT, the public side routes both home subnets (host pair);
- ``turn-udp``: both homes behind NATs: media via coturn over UDP;
- ``udp-blocked``: the caller's home drops all UDP: coturn over TCP;
- ``tls-443``: the caller's home lets out only TCP to 443 (and the
  rendezvous server's port): coturn over TLS on 443.

Bars (docs/benchmarks.md): turn-udp ≤ 300 ms, udp-blocked ≤ 1 s (medians).

    .venv/bin/python bench/turn_setup.py [--calls 5] [--profiles tls-443 …]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.net.internet import internet, unavailable
from tests.net.services import SERVER_PORT, TURNS_PORT, public_services

BARS = {"turn-udp": 300.0, "udp-blocked": 1000.0, "tls-443": 1000.0}
PROFILES = ("direct", "turn-udp", "udp-blocked", "tls-443")


def _calls(profile: str, calls: int, tmp: Path) -> list[tuple[float, str]]:
    results = []
    with internet(nat=profile != "direct") as net, public_services(net, tmp / "pub") as pub:
        alice, bob = pub.home(1, tmp), pub.home(2, tmp)
        for home, name in ((alice, "alice"), (bob, "bob")):
            done = home.run("account", "register", name, "--server", pub.url)
            assert done.returncode == 0, done.stderr
        if profile == "udp-blocked":
            net.block_udp(1)
        if profile == "tls-443":
            net.block_udp(1, tcp_only_to=(TURNS_PORT, SERVER_PORT))
        for _ in range(calls):
            answer = bob.spawn("answer", "--auto", "--once", "--server", pub.url, "--audio-in",
                               "sine:880", "--audio-out", "null:", "--json")  # fmt: skip
            assert answer.stdout is not None
            answer.stdout.readline()  # listening
            call = alice.run("call", "bob", "--server", pub.url, "--audio-in", "sine:440",
                             "--audio-out", "null:", "--duration", "1", "--json")  # fmt: skip
            answer.communicate(timeout=60)
            lines = [json.loads(x) for x in call.stdout.splitlines() if x.startswith("{")]
            stats = lines[-1]
            end = next((x for x in lines if x["kind"] == "ended"), {})
            path = (end.get("quality") or {}).get("candidate_type") or "?"
            if stats.get("setup_ms") is not None:
                results.append((float(stats["setup_ms"]), path))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--profiles", nargs="+", choices=PROFILES, default=PROFILES)
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    ok = True
    with tempfile.TemporaryDirectory(prefix="turn-bench-") as tmp:
        for profile in args.profiles:
            got = _calls(profile, args.calls, Path(tmp) / profile)
            times = sorted(t for t, _ in got)
            paths = sorted({p for _, p in got})
            if not times:
                print(f"{profile:12} no call set up")
                ok = False
                continue
            median = statistics.median(times)
            bar = BARS.get(profile)
            verdict = "" if bar is None else ("  PASS" if median <= bar else "  FAIL")
            ok &= bar is None or median <= bar
            print(f"{profile:12} median {median:6.0f} ms  min {times[0]:5.0f}  max {times[-1]:5.0f}"
                  f"  n={len(times)}  path={','.join(paths)}{verdict}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
