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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.net.recorded_cli import audio_gaps
from tests.net.services import Home

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
    def loss_percent(self) -> float | None:
        value = self.quality.get("fraction_lost_p50")
        return None if value is None else round(float(value) * 100, 1)


def _spawn(home: Home, frames: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [*home.net.exec_prefix(home.where), sys.executable, "-m", "tests.net.recorded_cli",
           str(frames), *args]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=home.env(), cwd=ROOT)  # fmt: skip


def _side(name: str, proc: subprocess.Popen[str], frames: Path) -> Side:
    try:
        out, err = proc.communicate(timeout=T)
    except subprocess.TimeoutExpired:  # a call that never ended: a failure, not a hang
        proc.kill()
        out, err = proc.communicate()
        err += f"\n(killed after {T:g} s)"
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    ended = next((e for e in events if e["kind"] == "ended"), {})
    log = json.loads(frames.read_text()) if frames.exists() else {}
    return Side(name, proc.returncode, ended, audio_gaps(log), err)


def recorded_call(alice: Home, bob: Home, tmp: Path, seconds: float) -> tuple[Side, Side]:
    """A call of ``seconds`` (alice hangs up), a 440 Hz and an 880 Hz tone."""
    tmp.mkdir(parents=True, exist_ok=True)
    answer = _spawn(bob, tmp / "bob.json", "answer", "--auto", "--once", "--server", bob.server,
                    "--audio-in", "sine:880", "--audio-out", "null:", "--json")  # fmt: skip
    try:
        assert answer.stdout is not None
        listening = json.loads(answer.stdout.readline() or "{}")
        assert listening.get("kind") == "listening", listening
        call = _spawn(alice, tmp / "alice.json", "call", "bob", "--server", alice.server,
                      "--audio-in", "sine:440", "--audio-out", "null:",
                      "--duration", f"{seconds:g}", "--json")  # fmt: skip
        return _side("alice", call, tmp / "alice.json"), _side("bob", answer, tmp / "bob.json")
    finally:
        for proc in (answer,):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
