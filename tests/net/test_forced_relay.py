"""``[ice] transport_policy = "relay"``: the other side never sees a host address of ours.

Two in-process peer connections against a real coturn on 127.0.0.1: the
forced-relay one offers only relay candidates (no host, no private related
address) and the call still connects, through the relay.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import RTCIceServer, RTCSessionDescription

from hello_tui.call.peer import local_description, new_peer_connection
from hello_tui.config.loader import load_config
from hello_tui.media.aiortc_adapter import nominated_candidates
from hello_tui.media.sources import SineSource
from hello_tui.session.options import call_options

SECRET = "forced-relay-secret"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[RTCIceServer]:
    if shutil.which("turnserver") is None:
        pytest.skip("coturn's turnserver is not installed (Debian coturn; dev.sh TEST_PKGS)")
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        "turnserver", "-n", "--listening-ip=127.0.0.1", f"--listening-port={port}",
        "--relay-ip=127.0.0.1", "--use-auth-secret", f"--static-auth-secret={SECRET}",
        "--realm=hello.test", "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers",
        f"--pidfile={tmp_path / 'turn.pid'}", "--log-file=stdout",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.1)
            else:
                writer.close()
                break
        username = f"{int(time.time()) + 600}:test"
        digest = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
        yield RTCIceServer(urls=f"turn:127.0.0.1:{port}?transport=udp", username=username,
                           credential=base64.b64encode(digest).decode())  # fmt: skip
    finally:
        proc.terminate()
        await proc.wait()


def test_the_config_sets_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[ice]\ntransport_policy = "relay"\n')
    settings = load_config(path)
    assert call_options(settings, embedded=False).ice_transport_policy == "relay"
    assert (
        call_options(load_config(tmp_path / "none.toml"), embedded=False).ice_transport_policy
        == "all"
    )


async def test_forced_relay_offers_no_host_candidate_and_connects(coturn: RTCIceServer) -> None:
    private = new_peer_connection([coturn], "relay")
    other = new_peer_connection([coturn])
    try:
        private.addTrack(SineSource("sine:440", 440))
        other.addTrack(SineSource("sine:880", 880))
        offer = await local_description(private, offer=True, addresses=["127.0.0.1"])
        lines = re.findall(r"^a=candidate:.*$", offer, re.M)
        assert lines and all(" typ relay" in line for line in lines), lines
        assert all("raddr 0.0.0.0" in line for line in lines), lines  # related address hidden
        await other.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        answer = await local_description(other, offer=False, addresses=["127.0.0.1"])
        await private.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        async with asyncio.timeout(20):
            while private.connectionState != "connected":
                assert private.connectionState != "failed"
                await asyncio.sleep(0.05)
        pair = nominated_candidates(private.getTransceivers()[0])
        assert pair is not None and pair[0].type == "relay"
        # What the other side knows of us: relay addresses only.
        seen = nominated_candidates(other.getTransceivers()[0])
        assert seen is not None and seen[1].type in ("relay", "prflx")
    finally:
        await private.close()
        await other.close()
