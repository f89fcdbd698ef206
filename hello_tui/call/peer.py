"""The RTCPeerConnection of a call, and the few aiortc/aioice hooks it needs.

- **ICE servers come only from the config** (``[ice] stun`` / ``[ice] turn``)
  plus the time-limited TURN credentials the server hands out at login. The
  configuration is always passed explicitly, *including an empty list*:
  given ``iceServers=None``, aiortc silently uses ``stun.l.google.com``,
  which would be a hidden third party (promise P8).
- **Host addresses**: aioice gathers a candidate on every interface address
  (it skips 127.0.0.1). A call whose signaling server is in this very process
  (the embedded default) can only reach peers on this machine, so it gathers
  on loopback only: nothing about the machine's addresses goes into its SDP.
  :func:`host_addresses` scopes that per call (a context variable, so
  concurrent calls in one process do not interfere); ``HELLO_TUI_ICE_HOSTS``
  (comma-separated addresses) sets it for a whole process.
- Media is DTLS-SRTP, aiortc's default and only mode.
- Audio: :func:`new_peer_connection` applies :mod:`hello_tui.media.aiortc_adapter`
  (a speech jitter buffer and Opus settings) to each connection it makes.

The tracks a call wraps (mute, first frame, echo) are in
:mod:`hello_tui.media.tracks`.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator, Sequence
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
)

from hello_tui.call.chat import CHANNEL_ID, CHANNEL_LABEL
from hello_tui.config.settings import IceSettings
from hello_tui.media import aiortc_adapter
from hello_tui.share import wire as share_wire

__all__ = [
    "add_chat_channel",
    "add_share_channel",
    "has_turn",
    "host_addresses",
    "ice_servers",
    "local_description",
    "new_peer_connection",
    "reuse_certificate",
    "rtc_configuration",
]

_hosts: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "hello_tui_ice_hosts", default=None
)


def _env_hosts() -> tuple[str, ...] | None:
    text = os.environ.get("HELLO_TUI_ICE_HOSTS", "").strip()
    return tuple(h.strip() for h in text.split(",") if h.strip()) or None


def _chosen_hosts() -> tuple[str, ...] | None:
    return _hosts.get() or _env_hosts()


aiortc_adapter.choose_host_addresses(_chosen_hosts)  # aioice's gathering asks _chosen_hosts


@contextlib.contextmanager
def host_addresses(addresses: Sequence[str] | None) -> Iterator[None]:
    """Gather ICE host candidates only on ``addresses`` within this block
    (None: every interface, aioice's default)."""
    token = _hosts.set(tuple(addresses) if addresses else None)
    try:
        yield
    finally:
        _hosts.reset(token)


async def local_description(
    pc: RTCPeerConnection, *, offer: bool, addresses: Sequence[str] | None
) -> str:
    """Create and set our SDP (an offer, else an answer), gathering ICE host
    candidates only on ``addresses``; ICE gathering completes inside (aiortc)."""
    with host_addresses(addresses):
        desc = await (pc.createOffer() if offer else pc.createAnswer())
        await pc.setLocalDescription(desc)
    sdp: str = pc.localDescription.sdp
    return sdp


def ice_servers(ice: IceSettings | None, turn: Sequence[Any] = ()) -> list[RTCIceServer]:
    """The ICE servers of a call: ``[ice]`` stun/turn, then the server's TURN
    credentials (``protocol.IceServer`` items from ``logged-in``). Never a default."""
    servers: list[RTCIceServer] = []
    if ice is not None:
        servers += [RTCIceServer(urls=url) for url in ice.stun]
        servers += [
            RTCIceServer(urls=t.url, username=t.username or None, credential=t.credential or None)
            for t in ice.turn
        ]
    for entry in turn:
        servers.append(
            RTCIceServer(
                urls=list(entry.urls),
                username=entry.username or None,
                credential=entry.credential or None,
            )
        )
    return servers


# Server-issued TURN credentials (TURN REST API) are named "<expiry>:<id>"; a call
# asks for fresh ones when those it holds have less than this left: half the
# server's default 2 h lifetime, ample for coturn's refreshes during a long call.
FRESH_FOR = 3600


def _turn_expiry(server: RTCIceServer) -> int | None:
    """The expiry in a TURN REST username (None: another kind of server or name)."""
    name = server.username or ""
    head, sep, _ = name.partition(":")
    return int(head) if sep and head.isdigit() and len(head) <= 12 else None


def turn_is_stale(servers: Sequence[RTCIceServer], now: float) -> bool:
    """Whether any time-limited TURN credentials in ``servers`` end within ``FRESH_FOR``."""
    return any(
        (expiry := _turn_expiry(s)) is not None and expiry - now < FRESH_FOR for s in servers
    )


def without_timed_turn(servers: Sequence[RTCIceServer]) -> list[RTCIceServer]:
    """``servers`` minus the time-limited TURN entries (to be replaced by fresh ones)."""
    return [s for s in servers if _turn_expiry(s) is None]


def has_turn(servers: Sequence[RTCIceServer]) -> bool:
    """Whether any of ``servers`` is a TURN server (``turn:`` / ``turns:``)."""
    for server in servers:
        urls = [server.urls] if isinstance(server.urls, str) else server.urls
        if any(url.startswith(("turn:", "turns:")) for url in urls):
            return True
    return False


def rtc_configuration(servers: Sequence[RTCIceServer], policy: str = "all") -> RTCConfiguration:
    """An explicit configuration: an empty list means *no* STUN/TURN server.
    ``policy`` "relay": relay candidates only (aioice then gathers no host
    address and hides the relay's related address)."""
    transport = RTCIceTransportPolicy.RELAY if policy == "relay" else RTCIceTransportPolicy.ALL
    # max-bundle: one ICE transport for audio, video and the data channels from the
    # offer on (aiortc's default, balanced, gathers one per kind: two TURN allocations
    # per relay URL where one is used once the answer bundles them).
    return RTCConfiguration(iceServers=list(servers), iceTransportPolicy=transport,
                            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)  # fmt: skip


def new_peer_connection(
    servers: Sequence[RTCIceServer], policy: str = "all", ptime_ms: int = 20
) -> RTCPeerConnection:
    """A peer connection with the speech audio path (``media/aiortc_adapter.py``:
    jitter buffer and Opus settings, ``ptime_ms`` the send path in C's packet duration)
    unless ``HELLO_TUI_AIORTC_ADAPTER=0``."""
    pc = RTCPeerConnection(configuration=rtc_configuration(servers, policy))
    aiortc_adapter.gather_every_turn(pc, servers)  # UDP, TCP and TLS relays at once
    aiortc_adapter.pace_checks(pc)  # ICE checks at a 5 ms pace, not 20 ms
    if aiortc_adapter.enabled():
        aiortc_adapter.adapt_peer_connection(pc, aiortc_adapter.AudioTuning(ptime_ms=ptime_ms))
    return pc


def reuse_certificate(pc: RTCPeerConnection, previous: RTCPeerConnection) -> None:
    """``pc`` presents ``previous``'s DTLS certificate (a call's renewed transport:
    the same fingerprint, so the check code stays; ``media/aiortc_adapter.py``)."""
    aiortc_adapter.reuse_certificate(pc, previous)


def add_chat_channel(pc: RTCPeerConnection, *, answering: bool) -> RTCDataChannel | None:
    """The call's pre-negotiated data channel (``hello``, id 0; docs/protocol.md).

    The offerer adds it before ``createOffer`` (the offer then has its
    ``m=application`` line). The answerer adds it after ``setRemoteDescription``,
    and only if the offer has that line (``pc.sctp``): None otherwise, the other
    side has no data channel (aiortc's public API only)."""
    if answering and pc.sctp is None:
        return None
    return pc.createDataChannel(CHANNEL_LABEL, negotiated=True, id=CHANNEL_ID)


def add_share_channel(pc: RTCPeerConnection, *, answering: bool) -> RTCDataChannel | None:
    """The call's second pre-negotiated channel (``share``, id 1): terminal sharing
    (:mod:`hello_tui.share.wire`), apart from chat so a screenful never waits in
    chat's way. Added right after :func:`add_chat_channel`, under the same rule."""
    if answering and pc.sctp is None:
        return None
    return pc.createDataChannel(share_wire.CHANNEL_LABEL, negotiated=True, id=share_wire.CHANNEL_ID)
