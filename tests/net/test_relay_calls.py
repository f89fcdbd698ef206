"""Calls between two homes behind NATs go through a real coturn (tests/net/)."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np

from tests.net.conftest import World
from tests.net.internet import PUBLIC_IP, Internet, home_ip, router_wan_ip

T = 60.0

_LISTEN = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 40000)); s.settimeout(float(sys.argv[1]))
print("ready", flush=True)
try:
    print(s.recvfrom(100)[0].decode(), flush=True)
except OSError:
    print("nothing", flush=True)
"""
_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for host in sys.argv[1:]:
    s.sendto(f"from-{host}".encode(), (host, 40000))
"""


def _listen(net: Internet, where: str, wait: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*net.exec_prefix(where), sys.executable, "-c", _LISTEN, str(wait)],
                            stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_homes_cannot_reach_each_other_but_reach_the_public_side(net: Internet) -> None:
    # Home 2 listens; home 1 sends to its private address and to its NAT's public one.
    listener = _listen(net, "h2", 2.0)
    subprocess.run([*net.exec_prefix("h1"), sys.executable, "-c", _SEND,
                    home_ip(2), router_wan_ip(2)], check=True)  # fmt: skip
    assert listener.communicate(timeout=10)[0].strip() == "nothing"
    # The same send to the public side arrives (so the test above can fail).
    listener = _listen(net, "pub", 10.0)
    subprocess.run([*net.exec_prefix("h1"), sys.executable, "-c", _SEND, PUBLIC_IP], check=True)
    assert listener.communicate(timeout=20)[0].strip() == f"from-{PUBLIC_IP}"


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def _dominant_hz(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    data = data[rate // 4 :]
    assert len(data) > rate // 4, "almost nothing was recorded"
    spectrum = np.abs(np.fft.rfft((data - data.mean()) * np.hanning(len(data))))
    return float(np.fft.rfftfreq(len(data), 1 / rate)[int(np.argmax(spectrum))])


def relay_call(world: World, tmp: Path, *extra: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """alice (home 1) calls bob (home 2), each a CLI subprocess; both record what they
    hear. Returns each side's ``ended`` event after checking audio crossed both ways."""
    heard = {"alice": tmp / "alice.wav", "bob": tmp / "bob.wav"}
    bob = world.bob.spawn(
        "answer", "--auto", "--once", "--server", world.public.url, "--audio-in", "sine:880",
        "--audio-out", f"file:{heard['bob']}", "--json", *extra,
    )  # fmt: skip
    try:
        assert bob.stdout is not None
        assert json.loads(bob.stdout.readline())["kind"] == "listening"
        alice = world.alice.run(
            "call", "bob", "--server", world.public.url, "--audio-in", "sine:440",
            "--audio-out", f"file:{heard['alice']}", "--duration", "2", "--json", *extra,
            timeout=T,
        )  # fmt: skip
        if alice.returncode != 0:
            bob.kill()
        bob_out, bob_err = bob.communicate(timeout=T)
    finally:
        if bob.poll() is None:
            bob.kill()
            bob.wait()
    assert alice.returncode == 0, alice.stderr
    assert bob.returncode == 0, bob_err
    ends = []
    for out in (alice.stdout, bob_out):
        events = _events(out)
        kinds = [e["kind"] for e in events]
        assert "media-flowing" in kinds, kinds
        ends.append(next(e for e in events if e["kind"] == "ended"))
    assert abs(_dominant_hz(heard["alice"]) - 880) < 10  # bob's tone reached alice
    assert abs(_dominant_hz(heard["bob"]) - 440) < 10  # and alice's reached bob
    return ends[0], ends[1]


def test_a_call_between_two_homes_goes_through_the_relay(world: World, tmp_path: Path) -> None:
    alice_end, bob_end = relay_call(world, tmp_path)
    for end in (alice_end, bob_end):
        assert end["reason"] == "hangup"
        assert end["quality"]["candidate_type"] == "relay", end["quality"]


def test_an_anonymous_visitor_reaches_a_room_owner_in_another_home(
    world: World, tmp_path: Path
) -> None:
    """The Hello link-clicker: no account, so its relay comes from the room (room-turn)."""
    made = world.bob.run("room", "create", "Friday", "--server", world.public.url, "--json")
    assert made.returncode == 0, made.stderr
    url = json.loads(made.stdout)["url"]
    visitor = world.public.home(1, tmp_path)  # home 1, a fresh profile with no account
    heard = {"owner": tmp_path / "owner.wav", "visitor": tmp_path / "visitor.wav"}
    owner = world.bob.spawn("join", url, "--audio-in", "sine:880", "--audio-out",
                            f"file:{heard['owner']}", "--duration", "2", "--json")  # fmt: skip
    try:
        assert owner.stdout is not None
        while (line := owner.stdout.readline()) and json.loads(line)["kind"] != "waiting":
            pass
        assert line, owner.communicate(timeout=T)[1]
        joined = visitor.run("join", url, "--audio-in", "sine:440", "--audio-out",
                             f"file:{heard['visitor']}", "--duration", "2", "--json",
                             timeout=T)  # fmt: skip
        owner_out, owner_err = owner.communicate(timeout=T)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert joined.returncode == 0, joined.stderr
    assert owner.returncode == 0, owner_err
    end = next(e for e in _events(joined.stdout) if e["kind"] == "ended")
    assert end["quality"]["candidate_type"] == "relay", end["quality"]
    assert "media-flowing" in [e["kind"] for e in _events(owner_out)]
    assert abs(_dominant_hz(heard["visitor"]) - 880) < 10
    assert abs(_dominant_hz(heard["owner"]) - 440) < 10


def test_udp_blocked_the_call_relays_over_tcp(world: World, tmp_path: Path) -> None:
    world.net.block_udp(1)
    try:
        alice_end, bob_end = relay_call(world, tmp_path)
        assert world.net.dropped(1) > 0  # UDP was tried, and dropped
    finally:
        world.net.unblock(1)
    assert alice_end["quality"]["candidate_type"] == "relay"
    assert bob_end["quality"]["candidate_type"] == "relay"


def test_forced_relay_from_the_config_relays_though_the_homes_could_meet(
    world: World, tmp_path: Path
) -> None:
    """``[ice] transport_policy = "relay"`` in both homes' config, with the NATs off so a
    direct path exists (home 1 reaches home 2's own address): the call still goes through
    coturn, and each side's quality data says so."""
    homes = (world.alice, world.bob)
    saved = [(h.root / "config" / "hello-tui" / "config.toml").read_text() for h in homes]
    world.net.set_nat(False)
    try:
        listener = _listen(world.net, "h2", 10.0)
        subprocess.run([*world.net.exec_prefix("h1"), sys.executable, "-c", _SEND, home_ip(2)],
                       check=True)  # fmt: skip
        assert listener.communicate(timeout=20)[0].strip() == f"from-{home_ip(2)}"
        for home, text in zip(homes, saved, strict=True):
            home.config(text.rstrip("\n") + '\n\n[ice]\ntransport_policy = "relay"\n')
        alice_end, bob_end = relay_call(world, tmp_path)
    finally:
        world.net.set_nat(True)
        for home, text in zip(homes, saved, strict=True):
            home.config(text)
    assert alice_end["quality"]["candidate_type"] == "relay", alice_end["quality"]
    assert bob_end["quality"]["candidate_type"] == "relay", bob_end["quality"]
