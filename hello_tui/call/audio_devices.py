"""A call's sound devices mid-call: the switch commands and the device watch, as events.

The media side (:mod:`hello_tui.media.device_watch`) swaps PortAudio streams
under the call's tracks; this glue finds the call's device source and sink,
and turns what happened into the call's events
(:class:`~hello_tui.call.events.AudioDeviceChanged`,
:class:`~hello_tui.call.events.MutedSpeech`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from hello_tui.call import events as ev
from hello_tui.media.audio_processing import follow_output
from hello_tui.media.device_watch import (
    DeviceChange,
    DeviceWatch,
    device_name,
    switch_input,
    switch_output,
)
from hello_tui.media.errors import MediaError
from hello_tui.media.sinks import DeviceSink
from hello_tui.media.sources import DeviceSource

if TYPE_CHECKING:
    from hello_tui.call.call import Call

__all__ = ["device_source", "switch_audio", "watch_devices"]


def device_source(call: Call) -> DeviceSource | None:
    """The call's microphone when it captures from a device (else None)."""
    gated = call.media.source
    source = gated.source if gated is not None else None
    return source if isinstance(source, DeviceSource) else None


def _device_sink(call: Call) -> DeviceSink | None:
    sink = call.media.sink
    return sink if isinstance(sink, DeviceSink) else None


def _emit_change(call: Call, change: DeviceChange) -> None:
    if call.ended is None:
        call._emit(ev.AudioDeviceChanged(
            call_id=call.call_id, direction=change.direction, device=change.device,
            previous=change.previous, reason=change.reason, latency_ms=change.latency_ms,
        ))  # fmt: skip


async def switch_audio(call: Call, direction: Literal["in", "out"], endpoint: str) -> None:
    """Move the call's microphone (``in``) or speaker (``out``) to ``endpoint``
    (``device:NAME``; ``device:`` the default). MediaError (one line) when the
    call has no device there, or the new device does not open: nothing changed."""
    name = device_name(endpoint)
    if direction == "in":
        source = device_source(call)
        if source is None:
            raise MediaError("this call's microphone is not a device: nothing to switch")
        change = await switch_input(source, name)
    else:
        sink = _device_sink(call)
        if sink is None:
            raise MediaError("this call's speaker is not a device: nothing to switch")
        change = await switch_output(sink, name)
    _emit_change(call, change)
    if direction == "out":
        await _follow_output(call)


async def _follow_output(call: Call) -> None:
    """Echo cancellation follows the speaker: off on a headset, on off it (a notice)."""
    notice = await asyncio.to_thread(follow_output, device_source(call), _device_sink(call))
    if notice is not None and call.ended is None:
        call._notice(notice, "audio-out")


def _changed(call: Call, change: DeviceChange) -> None:
    """The device watch moved a device (lost: to the default; latency: reopened)."""
    _emit_change(call, change)
    if change.direction == "out" and change.reason == "lost":
        call._spawn(_follow_output(call))


async def watch_devices(call: Call) -> None:
    """Run the call's :class:`DeviceWatch` (spawned when media flows; ends with the call)."""
    source, sink = device_source(call), _device_sink(call)
    if source is None and sink is None:
        return

    def muted_voice() -> None:
        if call.ended is None:
            call._emit(ev.MutedSpeech(call_id=call.call_id))

    watch = DeviceWatch(
        source,
        sink,
        on_change=lambda change: _changed(call, change),
        on_notice=call._notice,
        muted=lambda: call.muted,
        on_muted_voice=muted_voice,
    )
    await watch.run()
