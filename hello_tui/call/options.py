"""What a call needs besides signaling: media endpoints, ICE, identity.

:class:`CallOptions` is frozen: a phone's options, a call's options and the
options an incoming call is answered with are values, changed only by
``dataclasses.replace`` (``phone.options = replace(phone.options, audio_in=...)``
applies to the next call; a live call keeps the options it started with).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from aiortc import RTCIceServer

from hello_tui.call.chat import ChatLimits
from hello_tui.call.identity_proof import Identity
from hello_tui.call.media_watch import LOST_AFTER
from hello_tui.media.audio_processing import DEFAULT as DEFAULT_PROCESSING
from hello_tui.media.audio_processing import ProcessingConfig
from hello_tui.media.video import DEFAULT_FPS, DEFAULT_HEIGHT, DEFAULT_WIDTH

__all__ = ["MEDIA_TIMEOUT", "QUALITY_INTERVAL", "CallOptions"]

MEDIA_TIMEOUT = 10.0  # answered → ICE+DTLS connected, else media-fail (the server's timer too)
QUALITY_INTERVAL = 1.0  # seconds between QualitySamples while connected


@dataclass(frozen=True, slots=True, kw_only=True)
class CallOptions:
    """Audio: ``audio_in`` / ``audio_out`` endpoints (``null:``, ``sine:HZ``,
    ``file:PATH``, ``device:NAME``; ``audio_fallback``: a device that cannot be
    opened falls back to ``null:`` with a notice).

    Video: ``video_source`` (an endpoint, ``camera:INDEX`` / ``pattern:`` /
    ``null:``) makes a video call; None (the default) an audio-only one.
    ``null:`` (or a camera that cannot be used) still receives the far side's
    video. ``video_out`` (``file:PATH.y4m`` / ``.mp4``) records what is received.

    ``host_addresses``: the only addresses ICE gathers on (None: every
    interface). ``quality_interval``: seconds between quality samples (None:
    none). ``identity``: the account we signed in as (name and key): direct
    calls sign our DTLS fingerprint with it (:mod:`hello_tui.call.identity_proof`).
    ``chat_limits``: the chat rate bound, per direction (:mod:`hello_tui.call.chat`).
    ``audio_processing``: echo cancellation, noise suppression and gain on
    ``device:`` capture (:mod:`hello_tui.media.audio_processing`).
    """

    audio_in: str = "null:"
    audio_out: str = "null:"
    ice_servers: Sequence[RTCIceServer] = ()
    host_addresses: Sequence[str] | None = None
    media_timeout: float = MEDIA_TIMEOUT
    audio_fallback: bool = True
    quality_interval: float | None = QUALITY_INTERVAL
    video_source: str | None = None
    video_width: int = DEFAULT_WIDTH
    video_height: int = DEFAULT_HEIGHT
    video_fps: int = DEFAULT_FPS
    video_out: str | None = None
    identity: Identity | None = None
    chat_limits: ChatLimits = field(default_factory=ChatLimits)
    # "relay": gather and use TURN relays only (config [ice] transport_policy).
    ice_transport_policy: Literal["all", "relay"] = "all"
    audio_processing: ProcessingConfig = DEFAULT_PROCESSING
    # The send path in C's packet duration (config [audio] ptime_ms): 10 (default) or 20 ms.
    ptime_ms: int = 10
    # Connected, no audio from the other side for this long: the call is lost
    # (hello_tui.call.media_watch; "reconnecting" is said after STALL_AFTER).
    media_lost_after: float = LOST_AFTER

    def __post_init__(self) -> None:
        # Tuples, so that a caller's list cannot change the options afterwards.
        object.__setattr__(self, "ice_servers", tuple(self.ice_servers))
        hosts = tuple(self.host_addresses) if self.host_addresses else None
        object.__setattr__(self, "host_addresses", hosts)
