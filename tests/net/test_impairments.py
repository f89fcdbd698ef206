"""Impaired links on the namespace Internet: the call still carries audio.

alice (home 1) calls bob (home 2) through coturn over UDP only (so that loss
stays loss: over TURN/TCP it would become retransmission stalls), while home
1's router drops or caps traffic both ways (tests/net/internet.py). Both
sides are the real CLI with a log of what they received
(tests/net/recorded_cli.py); the bounds are generous (a loaded machine), the
figures are bench/impaired_calls.py's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.net.impaired import Home, recorded_call
from tests.net.internet import Internet
from tests.net.services import TURN_URLS, public_services

SECONDS = 6.0


@pytest.fixture(scope="module")
def homes(net: Internet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, Home]]:
    root = tmp_path_factory.mktemp("impaired")
    with public_services(net, root / "public", turn_urls=TURN_URLS[:1]) as public:
        alice, bob = public.home(1, root), public.home(2, root)
        for home, name in ((alice, "alice"), (bob, "bob")):
            done = home.run("account", "register", name, "--server", public.url)
            assert done.returncode == 0, done.stderr
        yield alice, bob


@pytest.mark.parametrize("profile", ["loss-5", "burst-5", "cap-64"])
def test_an_impaired_call_still_delivers_audio(
    net: Internet, homes: tuple[Home, Home], tmp_path: Path, profile: str
) -> None:
    kind, value = profile.split("-")
    if kind == "loss":
        net.impair(1, loss_percent=int(value))
    elif kind == "burst":
        net.burst_loss(1, loss_percent=int(value), mean_burst=3)
    else:
        net.impair(1, rate_kbit=int(value))
    try:
        sides = recorded_call(*homes, tmp_path, SECONDS, speech=True)  # speech: FEC is coded
        dropped = net.dropped_by_impairment(1)
    finally:
        net.clear_impairments(1)
    for side in sides:
        print(f"{profile} {side.name}: {side.gaps} MOS {side.mos} loss {side.loss_percent} %")
        # The reason, stage and words first: pytest cuts a long dict's repr short.
        ended = {k: side.ended.get(k) for k in ("reason", "stage", "duration", "message")}
        assert side.code == 0, (ended, side.ended, side.stderr[-2000:])
        assert (side.ended["reason"], side.ended["stage"]) == ("hangup", "connected")
        gaps = side.gaps
        # Most of the audio sent came: the timestamps' holes are what never arrived.
        # (Not frames per second of the call: at load 18 the CLI processes themselves
        # fall behind real time, and a loaded machine takes seconds to set up.)
        heard_ms = gaps["frames"] * 20
        assert heard_ms >= 0.8 * (heard_ms + gaps["missing_total_ms"])
        assert gaps["frames"] >= 0.5 * SECONDS * 50  # and for most of the call
        # no long silence (seen once: 540 ms at 5 % random loss, cause not found yet)
        assert gaps["lost_ms"] is not None and gaps["lost_ms"] <= 1000
        assert gaps["stall_ms"] <= 1000
    if kind != "cap":
        assert dropped > 0  # the profile did drop packets: the call lived through loss
    if kind == "loss":  # isolated losses come back from in-band FEC, and the MOS knows it
        assert sum(side.gaps["recovered"] for side in sides) > 0
        assert sum(side.quality.get("packets_recovered", 0) for side in sides) > 0
