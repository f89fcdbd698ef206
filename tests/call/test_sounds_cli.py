"""``--sounds`` on the CLI (session/sounds.py): silent without it; with it the
cues of an echo call play, the last one whole before the process exits."""

from __future__ import annotations

from pathlib import Path

import pytest

from hello_tui.media.cues import duration
from tests.call.conftest import read_wav
from tests.call.test_call_cli import _run
from tests.media.test_cues import zero_crossing_hz
from tests.tui.conftest import write_config


@pytest.mark.parametrize("sounds", [True, False])
async def test_an_echo_call_with_sounds_plays_its_last_cue_whole(
    tmp_path: Path, sounds: bool
) -> None:
    wav = tmp_path / "cues.wav"
    write_config({"sounds": {"output": f"file:{wav}"}})
    flags = ["--sounds"] if sounds else []
    code, _, err = await _run("call", "echo", "--audio-in", "sine:440", "--audio-out", "null:",
                              "--duration", "0.5", *flags)  # fmt: skip
    assert code == 0, err
    if not sounds:
        assert not wav.exists()  # the CLI is silent unless asked
        return
    samples = read_wav(wav)  # "left", the last cue, played whole before the exit
    assert len(samples) >= duration("left") * 48_000 - 1
    assert zero_crossing_hz(samples[5000:9000]) == pytest.approx(587, rel=0.03)
