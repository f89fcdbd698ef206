"""Devices that change mid-call: switched by command, lost, and the "you are muted" hint.

Two real peers through the real server; a private PulseAudio daemon whose
null sinks PortAudio lists as sound cards: microphones ``a_mic`` / ``a_mic2``
(their monitors; the test plays a different tone into each) and speakers
``b_spk`` / ``b_spk2`` (the test records their monitors). The switch is the
control command (``{"cmd": "audio-in", ...}``) through the one command table;
a device is lost by unloading its null sink mid-call. Gaps are measured and
printed (the bar is 100 ms) but asserted generously: the machine is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.call.commands import (
    AudioIn,
    AudioOut,
    CommandError,
    parse_command,
    run_command,
)
from hello_tui.media.output_latency import LADDER
from hello_tui.media.sinks import DeviceSink
from hello_tui.media.sources import DeviceSource
from tests.acoustic import read_mono, resample, speech
from tests.call.conftest import RATE, Env, T, rms
from tests.call.test_device_path import record, write_tone
from tests.pulse import SINK, PulseDaemon, pulse_devices


def unmonitor(name: str) -> str:
    """A microphone's name on either backend: PortAudio's ALSA PCM ``a_mic`` is the
    pulse backend's ``a_mic.monitor`` (the null sink's monitor source)."""
    return name.removesuffix(".monitor")


def mic(source: DeviceSource) -> str:
    return unmonitor(source.device.name)


MICS = {"a_mic": 440, "a_mic2": 1000}  # the tone played into each microphone
SPEAKERS = ("b_spk", "b_spk2")
BLOCK = RATE // 50  # 20 ms


@pytest.fixture
def devices4(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulseDaemon]:
    with pulse_devices(tmp_path_factory.mktemp("pulse"), MICS, SPEAKERS) as daemon:
        yield daemon


@pytest.fixture
def tones(devices4: PulseDaemon, tmp_path: Path) -> Iterator[None]:
    """A continuous tone into each microphone sink (440 Hz into a_mic, 1 kHz into a_mic2)."""
    null = subprocess.DEVNULL
    players = [
        subprocess.Popen(
            ["paplay", "-d", mic, str(write_tone(tmp_path / f"{mic}.wav", 60, hz))],
            env={**os.environ, **devices4.env},
            stdin=null,
            stdout=null,
            stderr=null,
        )
        for mic, hz in MICS.items()
    ]
    yield
    for player in players:
        player.terminate()
        player.wait(5)


@contextlib.asynccontextmanager
async def call_pair(env: Env, audio_in: str, audio_out: str) -> AsyncIterator[tuple[Call, Call]]:
    """Alice captures ``audio_in``, Bob plays on ``audio_out``; media flowing both ways."""
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    call = alice.dial("bob", audio_in=audio_in, audio_out="null:")
    incoming = await bob.next_incoming(T)
    await incoming.accept(replace(incoming.options, audio_in="null:", audio_out=audio_out))
    await call.wait_for(ev.MediaFlowing, 3 * T)
    await incoming.wait_for(ev.MediaFlowing, 3 * T)
    try:
        yield call, incoming
    finally:
        await call.hangup()
        await incoming.wait_ended(T)


def tone_power(block: np.ndarray, hz: float) -> float:
    """Power of ``block`` around ``hz`` (a windowed correlation: a band, not an exact bin)."""
    t = np.arange(len(block)) / RATE
    window = np.hanning(len(block))
    x = block.astype(np.float64) * window
    return float(abs(np.dot(x, np.exp(-2j * np.pi * hz * t))) ** 2)


def classify(samples: np.ndarray) -> str:
    """Per 20 ms block: "a" (440 Hz dominates), "b" (1 kHz dominates) or "-" (neither)."""
    out = []
    for i in range(0, len(samples) - BLOCK + 1, BLOCK):
        block = samples[i : i + BLOCK]
        a, b = tone_power(block, MICS["a_mic"]), tone_power(block, MICS["a_mic2"])
        out.append("-" if rms(block) < 300 else "a" if a > 4 * b else "b" if b > 4 * a else "-")
    return "".join(out)


def unload_sink(daemon: PulseDaemon, name: str) -> None:
    for line in daemon.pactl("list", "short", "modules").stdout.splitlines():
        if f"sink_name={name} " in line + " ":
            assert daemon.pactl("unload-module", line.split()[0]).returncode == 0
            return
    raise AssertionError(f"no module for sink {name}")


async def changed(call: Call, reason: str, direction: str) -> ev.AudioDeviceChanged:
    async with asyncio.timeout(3 * T):
        async for event in call.events():
            if (
                isinstance(event, ev.AudioDeviceChanged)
                and event.reason == reason
                and event.direction == direction
            ):
                return event
    raise AssertionError(f"no AudioDeviceChanged {direction} {reason}")


def test_the_commands_parse_and_refuse_what_is_not_a_device_switch() -> None:
    assert parse_command('{"cmd": "audio-in", "endpoint": "device:a_mic2"}') == AudioIn(
        "device:a_mic2"
    )
    assert parse_command('{"cmd": "audio-out", "endpoint": "device:"}') == AudioOut("device:")
    with pytest.raises(CommandError, match="endpoint"):
        parse_command('{"cmd": "audio-in"}')
    with pytest.raises(CommandError, match="no field"):
        parse_command('{"cmd": "audio-out", "endpoint": "device:", "volume": 3}')


async def test_switching_the_microphone_mid_call_reaches_the_far_side_with_a_short_gap(
    env: Env, devices4: PulseDaemon, tones: None
) -> None:
    async with call_pair(env, "device:a_mic", "device:b_spk") as (call, _):
        source = call.source.source if call.source is not None else None
        assert isinstance(source, DeviceSource) and mic(source) == "a_mic"
        recording = asyncio.create_task(record(devices4, "b_spk.monitor", 5.0))
        await asyncio.sleep(2.5)
        await run_command(call, parse_command('{"cmd": "audio-in", "endpoint": "device:a_mic2"}'))
        event = await changed(call, "switched", "in")
        heard = await recording
        with pytest.raises(CommandError, match="only a device: endpoint"):
            await run_command(call, AudioIn("file:/tmp/x.wav"))
        with pytest.raises(CommandError, match="no audio input device matches"):
            await run_command(call, AudioIn("device:no-such-mic"))
        with pytest.raises(CommandError, match="speaker is not a device"):
            await run_command(call, AudioOut("device:b_spk2"))  # alice plays on null:
        assert mic(source) == "a_mic2"  # a refused switch changed nothing

    blocks = classify(heard)
    first_b = blocks.find("b")
    last_a = blocks.rfind("a", 0, first_b if first_b >= 0 else None)
    gap_ms = (first_b - last_a - 1) * 20
    print(f"far side: {blocks}\nfar-side gap {gap_ms} ms; capture gap {source.switch_gap_ms} ms")
    assert (unmonitor(event.previous), unmonitor(event.device)) == ("a_mic", "a_mic2")
    assert blocks[:last_a].count("a") >= 25  # 0.5 s of a_mic's tone before the switch
    assert blocks[first_b:].count("b") >= 25  # and of a_mic2's after it
    assert "a" not in blocks[first_b + 5 :]  # a_mic is no longer heard (a few codec frames)
    assert gap_ms <= 500  # bar: 100 ms (printed above); generous for a shared machine


async def test_the_speaker_switches_then_moves_to_the_default_when_its_device_disappears(
    env: Env, devices4: PulseDaemon, tones: None
) -> None:
    async with call_pair(env, "device:a_mic", "device:b_spk") as (call, incoming):
        sink = incoming.sink
        assert isinstance(sink, DeviceSink)
        await run_command(incoming, AudioOut("device:b_spk2"))
        event = await changed(incoming, "switched", "out")
        assert (event.previous, event.device, sink.device.name) == ("b_spk", "b_spk2", "b_spk2")
        await asyncio.sleep(0.5)  # the playout is on b_spk2 now
        on_new = await record(devices4, "b_spk2.monitor", 1.0)
        on_old = await record(devices4, "b_spk.monitor", 1.0)
        switch_gap = sink.switch_gap_ms  # the switch asked for (the bar); a lost device's
        print(f"speaker switch gap (DAC clock): {switch_gap} ms")  # move waits to be noticed

        unload_sink(devices4, "b_spk2")  # unplugged: the sound server moves us; we follow
        lost = await changed(incoming, "lost", "out")
        await asyncio.sleep(0.5)
        on_default = await record(devices4, f"{SINK}.monitor", 1.0)
        # The microphone too: Alice's a_mic disappears; she captures from the default.
        unload_sink(devices4, "a_mic")
        lost_in = await changed(call, "lost", "in")

    print(f"rms: b_spk2 {rms(on_new):.0f}, b_spk {rms(on_old):.0f}, default {rms(on_default):.0f}")
    assert rms(on_new) > 1000 and rms(on_old) < 50
    assert lost.previous == "b_spk2" and lost.device not in SPEAKERS
    assert rms(on_default) > 1000  # the call is heard on the default device, not silent
    assert unmonitor(lost_in.previous) == "a_mic" and lost_in.device not in MICS
    print(f"gap moving off the lost speaker: {sink.switch_gap_ms} ms")
    assert switch_gap is not None and switch_gap <= 500  # bar: 100 ms


async def test_talking_while_muted_gives_one_hint(
    env: Env, devices4: PulseDaemon, tmp_path: Path
) -> None:
    voice = speech(tmp_path / "voice.wav", "Hello, can you hear me? I am talking to you now.")
    samples, rate = read_mono(voice)
    loud = tmp_path / "voice48.wav"  # three times over: about 10 s of talking
    with wave.open(str(loud), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.tile(resample(samples, rate).astype(np.int16), 3).tobytes())
    async with call_pair(env, "device:a_mic", "null:") as (call, _):
        await asyncio.sleep(1.0)
        assert not [e for e in call.event_log if isinstance(e, ev.MutedSpeech)]
        await run_command(call, parse_command('{"cmd": "mute"}'))
        player = await asyncio.create_subprocess_exec(
            "paplay", "-d", "a_mic", str(loud), env={**os.environ, **devices4.env},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            hint = await call.wait_for(ev.MutedSpeech, 3 * T)
            await asyncio.wait_for(player.wait(), 3 * T)  # ~10 s of talking while muted
        finally:
            with contextlib.suppress(ProcessLookupError):
                player.terminate()
            await player.wait()
        hints = [e for e in call.event_log if isinstance(e, ev.MutedSpeech)]
    assert hint.line().startswith("You are muted")
    assert len(hints) <= 2  # rate-limited: at most one per 10 s of talking


async def test_the_speaker_opens_at_low_latency_and_reopens_larger_only_when_it_runs_dry(
    env: Env, devices4: PulseDaemon, tones: None
) -> None:
    """Run under load (``./dev.sh test --stress``) to see it step up; prints what it chose."""
    async with call_pair(env, "device:a_mic", "device:b_spk") as (_, incoming):
        sink = incoming.sink
        assert isinstance(sink, DeviceSink)
        first = sink.stats().latency_ms
        await asyncio.sleep(12.0)
        stats = sink.stats()
        steps = [
            e
            for e in incoming.event_log
            if isinstance(e, ev.AudioDeviceChanged) and e.reason == "latency"
        ]
        settled = time.monotonic() - 1.0  # later underruns: the watch may not have ticked yet
        every = list(sink.underflow_times)
        times = [t for t in every if t < settled]
    print(f"speaker: opened at {first} ms, now {stats.latency_ms} ms, "
          f"{stats.card_underruns} card underruns, {len(steps)} step(s)")  # fmt: skip

    def dense(among: list[float]) -> bool:
        return any(sum(1 for t in among if s <= t < s + 10.0) >= 5 for s in among)

    if steps:
        # Stepped up the ladder (40 ms, then at most 80), because the card kept running
        # dry (the fifth underrun may be the last second's, which set it off).
        assert len(steps) <= len(LADDER) - 1 and dense(every)
        assert steps[-1].latency_ms == stats.latency_ms > first
        assert all(a.latency_ms < b.latency_ms for a, b in itertools.pairwise(steps))
    else:
        assert not dense(times) and stats.latency_ms == first  # no reason to step: it stayed low
