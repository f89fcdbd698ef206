"""One recorded call between the two homes (tests and bench/impaired_calls.py).

alice (home 1) calls bob (home 2), who answers ``--auto``; both are the real
CLI with a log of the audio frames they receive (:mod:`tests.net.recorded_cli`).
Each side's result: exit code, end reason, the gaps in what it heard, and the
quality summary its ``ended`` event carries (MOS, loss as RTCP reported it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tests.net.recorded_cli import audio_gaps
from tests.net.services import Home
from tests.speechlike import segmental_snr, voiced, write_wav

ROOT = Path(__file__).resolve().parent.parent.parent
T = 90.0


@dataclass
class Side:
    name: str
    code: int
    ended: dict[str, Any]
    gaps: dict[str, Any]
    stderr: str

    @property
    def quality(self) -> dict[str, Any]:
        return dict(self.ended.get("quality") or {})

    @property
    def mos(self) -> float | None:
        value = self.quality.get("mos_mean")
        return None if value is None else float(value)

    @property
    def heard_loss_percent(self) -> float | None:
        value = self.quality.get("effective_fraction_lost_p50")
        return None if value is None else round(float(value) * 100, 1)

    @property
    def loss_percent(self) -> float | None:
        value = self.quality.get("fraction_lost_p50")
        return None if value is None else round(float(value) * 100, 1)


def _spawn(home: Home, frames: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [*home.net.exec_prefix(home.where), sys.executable, "-m", "tests.net.recorded_cli",
           str(frames), *args]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=home.env(), cwd=ROOT)  # fmt: skip


def _side(name: str, proc: subprocess.Popen[str], frames: Path, sent: Path | None) -> Side:
    try:
        out, err = proc.communicate(timeout=T)
    except subprocess.TimeoutExpired:  # a call that never ended: a failure, not a hang
        proc.kill()
        out, err = proc.communicate()
        err += f"\n(killed after {T:g} s)"
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ended = next((e for e in events if e["kind"] == "ended"), {})
    log = json.loads(frames.read_text()) if frames.exists() else {}
    gaps = audio_gaps(log)
    timeline = frames.with_suffix(".npy")
    if sent is not None and timeline.exists():  # what the other side sent, as heard here
        with wave.open(str(sent)) as source:
            samples = np.frombuffer(source.readframes(source.getnframes()), dtype="<i2")
        gaps["speech"] = segmental_snr(np.load(timeline), samples)
    return Side(name, proc.returncode, ended, gaps, err)


def recorded_call(
    alice: Home, bob: Home, tmp: Path, seconds: float, speech: bool = False
) -> tuple[Side, Side]:
    """A call of ``seconds`` (alice hangs up), a 440 Hz and an 880 Hz tone; with
    ``speech``, speech-like signals instead (:mod:`tests.speechlike`, pitch 140 and
    220 Hz, from WAV files), and each side's ``gaps["speech"]`` says how close
    what it heard is to what the other sent (:func:`segmental_snr`)."""
    tmp.mkdir(parents=True, exist_ok=True)
    sources = {"alice": "sine:440", "bob": "sine:880"}
    wavs: dict[str, Path] = {}
    if speech:
        for name, pitch in (("alice", 140.0), ("bob", 220.0)):
            wavs[name] = write_wav(tmp / f"{name}-sent.wav", voiced(seconds + 30, pitch_hz=pitch))
            sources[name] = f"file:{wavs[name]}"
    answer = _spawn(bob, tmp / "bob.json", "answer", "--auto", "--once", "--server", bob.server,
                    "--audio-in", sources["bob"], "--audio-out", "null:", "--json")  # fmt: skip
    try:
        assert answer.stdout is not None
        listening = json.loads(answer.stdout.readline() or "{}")
        assert listening.get("kind") == "listening", listening
        call = _spawn(alice, tmp / "alice.json", "call", "bob", "--server", alice.server,
                      "--audio-in", sources["alice"], "--audio-out", "null:",
                      "--duration", f"{seconds:g}", "--json")  # fmt: skip
        return (_side("alice", call, tmp / "alice.json", wavs.get("bob")),
                _side("bob", answer, tmp / "bob.json", wavs.get("alice")))  # fmt: skip
    finally:
        for proc in (answer,):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
