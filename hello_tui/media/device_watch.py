"""A call's sound devices, watched: switched on request, replaced when gone, adapted.

One :class:`DeviceWatch` per call that captures or plays on a ``device:``
(started when media flows, cancelled with the call). Every ``TICK_S`` it:

* asks the :class:`~hello_tui.media.output_latency.LatencyPolicy` whether the
  speaker ran dry too often, and if so reopens it at the larger latency
  (:meth:`DeviceSink.switch` with the same device);
* while muted, reads how many captured blocks were voice (the source counts
  them only while ``listening``) and reports "talking while muted" at most
  once per ``HINT_EVERY_S``;
* every ``PROBE_EVERY`` ticks, checks that each device is still there: its
  stream still runs, and the device still opens (PortAudio cannot re-list
  devices without closing every stream, so a removed device is found by
  opening it; a sound server moves our stream to its default meanwhile, a
  raw ALSA device stops it). A device that is gone is replaced by the
  default one (``device:``) with a :class:`DeviceChange` ``lost``.

:func:`switch_input` / :func:`switch_output` are the mid-call switch (the
control command ``audio-in`` / ``audio-out``): the PortAudio work runs in a
thread, the track and the playout buffer stay, no renegotiation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hello_tui.media.audio_format import SAMPLE_RATE
from hello_tui.media.devices import AudioDevice, still_there
from hello_tui.media.endpoint import EndpointError, parse_endpoint
from hello_tui.media.errors import AudioUnavailable, DeviceError, MediaError
from hello_tui.media.output_latency import LatencyPolicy
from hello_tui.media.sinks import DeviceSink
from hello_tui.media.sources import DeviceSource

__all__ = ["DeviceChange", "DeviceWatch", "device_name", "switch_input", "switch_output"]

log = logging.getLogger("hello_tui.media.devices")

TICK_S = 0.5
PROBE_EVERY = 4  # ticks between checks that the devices are still there (2 s)
HINT_EVERY_S = 10.0  # at most one "you are muted" hint this often
MAX_ENDPOINT = 300  # a device name from a command line: untrusted, bounded
VOICE_BLOCKS = 8  # voice blocks (20 ms) within one tick that mean the user is talking

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class DeviceChange:
    """What the watch (or a switch) did to a device; the call turns it into an event."""

    direction: Direction
    device: str  # the device's name now
    previous: str  # the device's name before
    reason: Literal["switched", "lost", "latency"]
    latency_ms: float | None = None  # the speaker's new latency (``latency``)


def device_name(endpoint: str) -> str:
    """NAME of a ``device:NAME`` endpoint (``""``: the default); MediaError for others."""
    if len(endpoint) > MAX_ENDPOINT:
        raise MediaError(f"endpoint too long (at most {MAX_ENDPOINT} characters)")
    try:
        parsed = parse_endpoint(endpoint, "audio-source")
    except EndpointError as exc:
        raise MediaError(str(exc)) from None
    if parsed.kind != "device":
        raise MediaError(f"only a device: endpoint can be switched to mid-call, not {endpoint!r}")
    return parsed.arg


async def switch_input(source: DeviceSource, name: str) -> DeviceChange:
    """Capture from ``device:NAME`` (DeviceError / AudioUnavailable: nothing changed)."""
    previous = source.device.name
    device = await asyncio.to_thread(source.switch, name)
    log.info("audio input switched to %r", device.name)
    return DeviceChange("in", device.name, previous, "switched")


async def switch_output(sink: DeviceSink, name: str) -> DeviceChange:
    """Play on ``device:NAME`` (DeviceError / AudioUnavailable: nothing changed)."""
    previous = sink.device.name
    device = await asyncio.to_thread(sink.switch, name)
    log.info("audio output switched to %r", device.name)
    return DeviceChange("out", device.name, previous, "switched")


class DeviceWatch:
    """Watches one call's device source and/or sink; :meth:`run` until cancelled."""

    def __init__(
        self,
        source: DeviceSource | None,
        sink: DeviceSink | None,
        *,
        on_change: Callable[[DeviceChange], None],
        on_notice: Callable[[str, str], None],
        muted: Callable[[], bool],
        on_muted_voice: Callable[[], None],
        policy: LatencyPolicy | None = None,
    ) -> None:
        self.source, self.sink = source, sink
        self._on_change, self._on_notice = on_change, on_notice
        self._muted, self._on_muted_voice = muted, on_muted_voice
        self.policy = policy or LatencyPolicy()
        self._last_hint = float("-inf")
        self._voice_seen = 0
        self._given_up: set[Direction] = set()

    async def run(self) -> None:
        tick = 0
        try:
            while True:
                await asyncio.sleep(TICK_S)
                tick += 1
                await self._adapt_latency()
                self._muted_voice()
                if tick % PROBE_EVERY == 0:
                    await self._check_present()
        finally:
            if self.source is not None:
                self.source.listening = False

    async def _adapt_latency(self) -> None:
        sink = self.sink
        if sink is None or not sink.started:
            return
        latency = self.policy.next_latency(sink.underflow_times, time.monotonic())
        if latency is None:
            return
        before = sink.card_underflows
        try:
            await asyncio.to_thread(sink.switch, sink.name, latency)
        except (AudioUnavailable, DeviceError) as exc:
            log.debug("speaker: cannot reopen at latency %s: %s", latency, exc)
            return
        ms = round(sink.stats().latency_ms, 1)
        log.debug("speaker: %d card underruns; reopened at latency %s (%.1f ms)",
                  before, latency, ms)  # fmt: skip
        self._on_change(DeviceChange("out", sink.device.name, sink.device.name, "latency", ms))

    def _muted_voice(self) -> None:
        source = self.source
        if source is None:
            return
        muted = self._muted()
        if muted and not source.listening:
            self._voice_seen = source.voice_blocks
        source.listening = muted
        if not muted:
            return
        voice = source.voice_blocks - self._voice_seen
        self._voice_seen = source.voice_blocks
        now = time.monotonic()
        if voice >= VOICE_BLOCKS and now - self._last_hint >= HINT_EVERY_S:
            self._last_hint = now
            self._on_muted_voice()

    async def _check_present(self) -> None:
        if self.source is not None and self.source.started and "in" not in self._given_up:
            await self._check(self.source, "in")
        if self.sink is not None and self.sink.started and "out" not in self._given_up:
            await self._check(self.sink, "out")

    async def _check(self, endpoint: DeviceSource | DeviceSink, direction: Direction) -> None:
        kind: Literal["input", "output"] = "input" if direction == "in" else "output"
        device: AudioDevice = endpoint.device
        if endpoint.stream_active and await asyncio.to_thread(
            still_there, kind, device, SAMPLE_RATE
        ):
            return
        log.info("audio %s device %r is gone: moving to the default", kind, device.name)
        try:
            moved = await asyncio.to_thread(endpoint.switch, "")
        except (AudioUnavailable, DeviceError) as exc:
            self._given_up.add(direction)
            text = f"audio {kind} {device.name!r} is gone, and no other device opens ({exc})"
            self._on_notice(text, f"audio-{direction}")
            return
        self._on_change(DeviceChange(direction, moved.name, device.name, "lost"))
