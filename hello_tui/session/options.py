"""The one place a face's ``CallOptions`` are built from the settings.

A phone's options are never changed in place (``CallOptions`` is a frozen
dataclass): ``dataclasses.replace`` makes a new object and the phone gets the
whole of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hello_tui.call.engine import CallOptions
    from hello_tui.call.identity_proof import Identity
    from hello_tui.config.settings import Settings

__all__ = ["LOOPBACK", "call_options"]

# Calls through the embedded server gather on loopback only. Held here, not in
# .embedded (which re-exports it), so that options for a remote server never
# import the server, the echo peer and prometheus_client (docs/media.md, "Memory").
LOOPBACK: tuple[str, ...] = ("127.0.0.1",)


def call_options(
    settings: Settings,
    *,
    embedded: bool,
    turn: Sequence[Any] = (),
    identity: Identity | None = None,
    audio_in: str | None = None,
    audio_out: str | None = None,
    video_source: str | None = None,
    video_out: str | None = None,
) -> CallOptions:
    """Options for every call of a session: ``[audio]`` (or the face's
    overrides) with its processing switches, ICE from ``[ice]`` plus the
    login's TURN servers, the video size from ``[video]``; calls through the
    embedded server gather on loopback only."""
    from hello_tui.call.engine import CallOptions
    from hello_tui.call.peer import ice_servers
    from hello_tui.media.audio_processing import ProcessingConfig

    video, audio = settings.video, settings.audio
    return CallOptions(
        audio_in=audio_in or settings.audio.input,
        audio_out=audio_out or settings.audio.output,
        ice_servers=ice_servers(settings.ice, list(turn)),
        host_addresses=LOOPBACK if embedded else None,
        video_source=video_source,
        video_width=video.width,
        video_height=video.height,
        video_fps=video.fps,
        video_out=video_out,
        identity=identity,
        ice_transport_policy=settings.ice.transport_policy,
        audio_processing=ProcessingConfig.from_switches(
            audio.aec, audio.noise_suppression, audio.auto_gain, audio.echo_tuning
        ),
        ptime_ms=audio.ptime_ms,
    )
