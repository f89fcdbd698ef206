#!/usr/bin/env python3
"""Calls over impaired links: the longest audio gap and the MOS reported.

The namespace Internet of ``tests/net/`` (root needed): alice (home 1) calls
bob (home 2) through coturn over UDP only (TURN/TCP would turn loss into
retransmission stalls), both the real CLI with a log of what they receive
(``tests/net/recorded_cli.py``). Home 1's router impairs both directions:

- ``clean``; ``loss-5`` / ``loss-20``: random loss (nftables ``numgen``);
- ``burst-5``: 5 % loss in bursts of 3 packets on average (Gilbert model);
- ``cap-64``: a 64 kbit/s cap on home 1's uplink (``tc tbf``).

Per profile, ``--calls`` calls of ``--seconds``; per side and call: ``lost``,
the longest run of audio lost in the network (concealed or skipped frames);
``stall``, the longest wait between two decoded frames beyond 20 ms; the
mean MOS of the call's quality summary (E-model from RTCP loss, jitter, RTT)
and the RTCP loss. Reported: the worst ``lost``/``stall`` and the median MOS
over all sides and calls.

Bars (issue 14): 20 % loss → no gap > 200 ms and MOS ≥ 3.0.

    .venv/bin/python bench/impaired_calls.py [--calls 3] [--seconds 10] [--only loss-20]

``HELLO_TUI_OPUS_FEC=0`` in the environment: the same without FEC decoding.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.net.impaired import Side, recorded_call
from tests.net.internet import Internet, internet, unavailable
from tests.net.services import TURN_URLS, public_services

PROFILES = ("clean", "loss-5", "loss-20", "burst-5", "cap-64")
GAP_BAR_MS = 200.0  # at 20 % loss
MOS_BAR = 3.0


def _apply(net: Internet, profile: str) -> None:
    net.clear_impairments(1)
    kind, _, value = profile.partition("-")
    if kind == "loss":
        net.impair(1, loss_percent=int(value))
    elif kind == "burst":
        net.burst_loss(1, loss_percent=int(value), mean_burst=3)
    elif kind == "cap":
        net.impair(1, rate_kbit=int(value))


def _row(profile: str, sides: list[Side], failed: int) -> tuple[str, bool]:
    ok_sides = [s for s in sides if s.code == 0 and s.gaps.get("lost_ms") is not None]
    if not ok_sides:
        return f"{profile:8} no call completed ({failed} failed)", False
    lost = max(s.gaps["lost_ms"] for s in ok_sides)
    network = max(s.gaps.get("lost_network_ms") or 0 for s in ok_sides)
    cleans = [s.gaps["tone_clean"] for s in ok_sides if s.gaps.get("tone_clean") is not None]
    clean = statistics.median(cleans) * 100 if cleans else float("nan")
    speech = [s.gaps["speech"] for s in ok_sides if "speech" in s.gaps]
    snr = statistics.median(x["snr_db"] for x in speech) if speech else float("nan")
    bad = statistics.median(x["bad"] for x in speech) * 100 if speech else float("nan")
    rtts = [s.quality.get("rtt_ms_p50") for s in ok_sides]
    jitters = [s.quality.get("jitter_ms_p50") for s in ok_sides]
    rtt = statistics.median(x for x in rtts if x is not None) if any(rtts) else float("nan")
    jit = statistics.median(x for x in jitters if x is not None) if any(jitters) else float("nan")
    heard = [s.heard_loss_percent for s in ok_sides if s.heard_loss_percent is not None]
    heard_loss = statistics.median(heard) if heard else float("nan")
    stall = max(s.gaps["stall_ms"] or 0 for s in ok_sides)
    moses = [s.mos for s in ok_sides if s.mos is not None]
    mos = statistics.median(moses) if moses else float("nan")
    losses = [s.loss_percent for s in ok_sides if s.loss_percent is not None]
    loss = statistics.median(losses) if losses else float("nan")
    verdict, ok = "", True
    if profile == "loss-20":
        ok = lost <= GAP_BAR_MS and mos >= MOS_BAR and not failed
        verdict = "  PASS" if ok else "  FAIL"
    line = (f"{profile:8} lost {lost:4.0f} ms (network {network:4.0f})  stall {stall:5.0f} ms  "
            f"MOS {mos:4.2f} (RTT {rtt:4.0f} jitter {jit:4.0f} ms)  "
            f"loss {loss:4.1f} % heard {heard_loss:4.1f} %  "
            f"clean tone {clean:5.1f} %  SNR {snr:4.1f} dB bad {bad:4.1f} %  "
            f"sides={len(ok_sides)} failed={failed}"
            f"{verdict}")  # fmt: skip
    return line, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", choices=PROFILES, action="append")
    parser.add_argument("--signal", choices=("speech", "tone"), default="speech",
                        help="what the callers send (a steady tone: no FEC, see docs)")  # fmt: skip
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        print(f"skipped: {reason}")
        return 0
    ok = True
    with (
        tempfile.TemporaryDirectory(prefix="impaired-bench-") as tmp,
        internet() as net,
        public_services(net, Path(tmp) / "pub", turn_urls=TURN_URLS[:1]) as pub,
    ):
        alice, bob = pub.home(1, Path(tmp)), pub.home(2, Path(tmp))
        for home, name in ((alice, "alice"), (bob, "bob")):
            done = home.run("account", "register", name, "--server", pub.url)
            assert done.returncode == 0, done.stderr
        for profile in args.only or PROFILES:
            _apply(net, profile)
            sides: list[Side] = []
            failed = 0
            for i in range(args.calls):
                got = recorded_call(alice, bob, Path(tmp) / f"{profile}-{i}", args.seconds,
                                    speech=args.signal == "speech")  # fmt: skip
                failed += any(s.code != 0 for s in got)
                sides.extend(got)
            net.clear_impairments(1)
            line, passed = _row(profile, sides, failed)
            ok &= passed
            print(line, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
