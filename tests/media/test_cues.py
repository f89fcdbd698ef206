"""Call sounds (media/cues.py): each cue's cadence and energy as played into a
real ``file:`` sink and on a PulseAudio null sink; the bell stands in without
an output. Pitches are measured by zero crossings with tolerances, never by
exact FFT bins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from hello_tui.media.cues import AMPLITUDE, BELL_CUES, CUES, PATTERNS, CuePlayer, duration, render
from hello_tui.media.levels import rms_dbfs
from hello_tui.media.sources import open_audio_source
from tests.media.conftest import read_wav
from tests.pulse import PulseDaemon

RATE = 48_000
T = 15.0


def segments(samples: np.ndarray, floor: float = 0.02) -> list[tuple[int, int]]:
    """(start, end) of each stretch louder than ``floor`` of full scale (5 ms windows)."""
    win = RATE // 200
    n = len(samples) // win
    rms = np.sqrt(np.mean((samples[: n * win].astype(np.float64) / 32768).reshape(n, win) ** 2, 1))
    loud = rms > floor
    found, start = [], None
    for i, on in enumerate(loud):
        if on and start is None:
            start = i
        elif not on and start is not None:
            found.append((start * win, i * win))
            start = None
    if start is not None:
        found.append((start * win, n * win))
    return found


def zero_crossing_hz(samples: np.ndarray) -> float:
    signs = np.signbit(samples.astype(np.float64))
    return float(np.count_nonzero(signs[1:] != signs[:-1]) * RATE / (2 * len(samples)))


def notes(cue: str) -> list[tuple[float, float]]:
    """The cue's tones (Hz, seconds), adjacent tones of one sound merged like the ear does."""
    return [(hz, s) for hz, s in PATTERNS[cue] if hz > 0]  # type: ignore[index]


@pytest.mark.parametrize("cue", CUES)
async def test_each_cue_in_a_file_sink_has_its_cadence_pitch_and_level(
    tmp_path: Path, cue: str
) -> None:
    wav = tmp_path / f"{cue}.wav"
    player = CuePlayer(f"file:{wav}", bell=lambda: pytest.fail("a bell with an output"))
    player.play(cue)  # type: ignore[arg-type]
    await asyncio.wait_for(player.idle(), T)
    assert player.played == [cue]
    samples, rate, channels = read_wav(wav)
    assert (rate, channels) == (RATE, 1)
    # The whole cue, padded to whole 20 ms frames, and nothing more.
    assert duration(cue) - 1e-6 <= len(samples) / RATE <= duration(cue) + 0.021  # type: ignore[arg-type]
    # Short: a cue never holds up a conversation.
    assert len(samples) / RATE < 0.6
    # Cadence: the gaps of the pattern are silent, its tones loud (notes that follow
    # each other without a pause are one loud stretch).
    loud = segments(samples)
    pauses = sum(1 for hz, _ in PATTERNS[cue] if hz <= 0)  # type: ignore[index]
    assert len(loud) == pauses + 1
    # Each tone's pitch (the middle of it, away from the 5 ms edges) and level.
    at = 0
    for hz, seconds in PATTERNS[cue]:  # type: ignore[index]
        n = round(seconds * RATE)
        middle = samples[at + n // 4 : at + 3 * n // 4]
        if hz > 0:
            assert zero_crossing_hz(middle) == pytest.approx(hz, rel=0.03)
            # A sine at AMPLITUDE of full scale: -3 dB below its peak, within 1 dB.
            assert rms_dbfs(middle) == pytest.approx(20 * np.log10(AMPLITUDE) - 3.01, abs=1)
        else:
            assert np.max(np.abs(middle)) == 0
        at += n
    assert np.max(np.abs(samples)) <= AMPLITUDE * 32767 + 1  # never louder than meant


def test_the_cues_can_be_told_apart_by_ear() -> None:
    """Rising for connected/joined, falling for failed/left, the failure longest."""
    rises = {c: notes(c)[-1][0] > notes(c)[0][0] for c in ("connected", "joined", "left", "failed")}
    assert rises == {"connected": True, "joined": True, "left": False, "failed": False}
    assert max(CUES, key=duration) == "failed"
    assert len({render(c).tobytes() for c in CUES}) == len(CUES)


async def test_without_an_output_the_bell_rings_only_for_what_asks_for_attention() -> None:
    bells: list[int] = []
    player = CuePlayer(None, bell=lambda: bells.append(1))
    for cue in CUES:
        player.play(cue)
        await asyncio.wait_for(player.idle(), T)
    assert player.played == [f"bell:{c}" for c in CUES if c in BELL_CUES]
    assert len(bells) == len(BELL_CUES) == 3


async def test_an_output_that_cannot_open_falls_back_to_the_bell(tmp_path: Path) -> None:
    bells: list[int] = []
    player = CuePlayer(f"file:{tmp_path}/missing/dir/cue.wav", bell=lambda: bells.append(1))
    player.play("message")
    await asyncio.wait_for(player.idle(), T)
    assert player.played == ["bell:message"] and bells == [1]
    player.output = f"file:{tmp_path}/cue.wav"  # a good output is not tried at once again
    player.play("failed")
    await asyncio.wait_for(player.idle(), T)
    assert player.played[-1] == "bell:failed" and not (tmp_path / "cue.wav").exists()


async def test_a_cue_already_waiting_is_not_queued_twice(tmp_path: Path) -> None:
    player = CuePlayer(f"file:{tmp_path}/cue.wav")
    for _ in range(5):
        player.play("message")
    player.play("left")
    await asyncio.wait_for(player.idle(), T)
    assert player.played.count("message") <= 2 and player.played[-1] == "left"


async def test_a_cue_on_the_output_device_reaches_it(pulse: PulseDaemon) -> None:
    """The real device path: played on ``device:`` (a PulseAudio null sink), heard
    on its monitor: the cue's energy, then silence once it is over."""
    mic = open_audio_source("device:")
    player = CuePlayer("device:")
    try:
        # The microphone runs before the cue starts: a stream that opens late under
        # load would otherwise miss the cue's head and hear less than it played.
        await asyncio.wait_for(mic.recv(), T)
        player.play("failed")
        frames = [await asyncio.wait_for(mic.recv(), 2) for _ in range(50)]  # 1 s
        await asyncio.wait_for(player.idle(), T)
    finally:
        mic.stop()
        await player.close()
    assert player.played == ["failed"]
    heard = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    loud = segments(heard)
    assert loud, "the cue was not heard on the device"
    total = sum(end - start for start, end in loud) / RATE
    assert 0.3 <= total <= 0.7  # ~0.5 s of tone (the gap may blur at 5 ms windows)
    assert rms_dbfs(heard[loud[0][0] : loud[-1][1]]) > -30
