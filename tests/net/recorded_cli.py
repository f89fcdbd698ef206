"""``hello-tui`` with a log of the audio frames it receives (tests and benchmarks).

    python -m tests.net.recorded_cli FRAMES.json call bob --json …

runs the real CLI in this process (``hello_tui.cli.main.main``) and writes,
at exit ``{"frames": [...], "released": [...]}``: one ``[arrival_s, pts,
samples, rate, tone_db]`` per decoded audio frame, taken where the call counts them
(``TappedTrack.recv``: before the sink; ``tone_db``: how clean the frame's
tone is, below), and one ``[rtp_timestamp, concealed, recovered]``
per frame the speech jitter buffer released to the decoder (with the aiortc
adapter on; ``concealed``: a concealment frame for a lost packet;
``recovered``: of those, one recovered from the next packet's in-band FEC).
:func:`audio_gaps` reads what a call lost from it:

- ``lost_ms``: the longest run of audio the listener did not get (concealed
  or skipped, not recovered by FEC: no real sound for that long);
- ``lost_network_ms``: the same counting FEC recoveries as lost (the network's
  longest loss run, what ``lost_ms`` was without FEC);
- ``tone_clean``: the share of frames (after the first second) whose tone is
  clean, an objective check of what was heard: the callers send pure tones
  (440/880 Hz), and a frame is clean when its best least-squares fit of one of
  those tones leaves a residual ≥ 20 dB below it and its amplitude is within
  3 dB of the call's median (concealment that drifts, fades or buzzes is not);
- ``missing_ms``: the longest run of audio that never reached the sink (an
  RTP timestamp jump beyond one frame: lost and not concealed);
- ``stall_ms``: the longest wait between two frames beyond one frame's
  duration (what a playout would have to fill);
- ``missing_total_ms``: all the audio that never arrived.

The first second is left out of ``stall_ms`` (the jitter buffer fills).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

SETTLE_S = 1.0


TONES_HZ = (440.0, 880.0)
CLEAN_DB = 20.0


def tone_db(pcm: Any, rate: int) -> tuple[float, float]:
    """``(fit-to-residual dB, amplitude)`` of the best fit of one of ``TONES_HZ``."""
    import numpy as np

    x = np.asarray(pcm, dtype=np.float64).reshape(-1)
    if not x.size or not np.any(x):
        return -99.0, 0.0
    t = np.arange(x.size) / rate
    best = (-99.0, 0.0)
    for hz in TONES_HZ:
        basis = np.stack([np.sin(2 * np.pi * hz * t), np.cos(2 * np.pi * hz * t)], axis=1)
        coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
        fit = basis @ coef
        residual = float(np.sum((x - fit) ** 2)) + 1e-9
        db = 10 * np.log10(float(np.sum(fit**2)) / residual + 1e-12)
        if db > best[0]:
            best = (float(db), float(np.hypot(*coef)))
    return best


def tone_clean(frames: list[list[float]]) -> float | None:
    """Share of frames (after ``SETTLE_S``) with a clean tone (see the module doc)."""
    import statistics

    if not frames or len(frames[0]) < 6:
        return None
    start = frames[0][0]
    kept = [(f[4], f[5]) for f in frames if f[0] - start >= SETTLE_S]
    if not kept:
        return None
    median = statistics.median(a for _, a in kept) or 1.0
    clean = sum(db >= CLEAN_DB and abs(20 * math.log10(max(a, 1e-9) / median)) <= 3.0
                for db, a in kept)  # fmt: skip
    return round(clean / len(kept), 4)


def lost_run_ms(
    released: list[list[int]], frame: int = 960, rate: int = 48000, fec: bool = True
) -> int:
    """The longest run of concealed or skipped frames in the jitter buffer's output
    (``fec``: a frame recovered from FEC is not lost)."""
    longest = run = 0
    last: int | None = None
    for ts, concealed, *more in released:
        concealed = concealed and not (fec and more and more[0])
        skipped = 0 if last is None else max(0, ((ts - last) & 0xFFFFFFFF) // frame - 1)
        if skipped > 10_000:  # a restart, not a gap
            skipped = 0
        run = run + skipped + 1 if concealed else run + skipped
        longest = max(longest, run)
        if not concealed:
            run = 0
        last = ts
    return round(longest * frame * 1000 / rate)


def audio_gaps(log: dict[str, Any]) -> dict[str, Any]:
    """What a call lost, from a frame log (see the module doc)."""
    frames, released = log.get("frames", []), log.get("released", [])
    lost_run = lost_run_ms(released) if released else None
    network_run = lost_run_ms(released, fec=False) if released else None
    recovered = sum(1 for r in released if len(r) > 2 and r[2])
    if len(frames) < 2:
        return {"frames": len(frames), "lost_ms": lost_run, "missing_ms": None, "stall_ms": None,
                "missing_total_ms": None, "lost_network_ms": network_run,
                "recovered": recovered, "tone_clean": None}  # fmt: skip
    missing = stall = total = 0.0
    start = frames[0][0]
    for (t0, pts0, n0, rate, *_), (t1, pts1, *_) in itertools.pairwise(frames):
        lost = max(0.0, (pts1 - pts0 - n0) / rate * 1000)
        missing, total = max(missing, lost), total + lost
        if t0 - start >= SETTLE_S:
            stall = max(stall, (t1 - t0) * 1000 - n0 / rate * 1000)
    return {"frames": len(frames), "lost_ms": lost_run, "missing_ms": round(missing),
            "stall_ms": round(max(stall, 0)), "missing_total_ms": round(total),
            "lost_network_ms": network_run, "recovered": recovered,
            "tone_clean": tone_clean(frames)}  # fmt: skip


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    from hello_tui.cli.main import main as cli
    from hello_tui.media import aiortc_adapter as adapter
    from hello_tui.media.tracks import TappedTrack

    log: list[tuple[float, int, int, int, float, float]] = []
    heard: list[tuple[int, Any]] = []  # (pts, mono int16) of every audio frame
    released: list[tuple[int, bool, bool]] = []
    recv, add = TappedTrack.recv, adapter.SpeechJitterBuffer.add

    def adding(self: adapter.SpeechJitterBuffer, packet: Any) -> Any:
        pli, frame = add(self, packet)
        parts = frame.parts if isinstance(frame, adapter.JitterBundle) else [frame]
        released.extend(
            (p.timestamp, isinstance(p, adapter.ConcealFrame),
             isinstance(p, adapter.FecFrame) and p.lbrr)
            for p in parts if p
        )  # fmt: skip
        return pli, frame

    async def recording(self: TappedTrack) -> Any:
        frame = await recv(self)
        if self.kind == "audio" and frame.pts is not None:
            mono = frame.to_ndarray()[0][:: len(frame.layout.channels)]
            heard.append((frame.pts, mono.copy()))
            db, amplitude = tone_db(mono, frame.sample_rate)
            log.append((time.monotonic(), frame.pts, frame.samples, frame.sample_rate, db,
                        amplitude))  # fmt: skip
        return frame

    TappedTrack.recv = recording  # type: ignore[method-assign]
    adapter.SpeechJitterBuffer.add = adding  # type: ignore[method-assign]
    try:
        return cli(argv[1:])
    finally:
        out.write_text(json.dumps({"frames": log, "released": released}))
        write_timeline(out.with_suffix(".npy"), heard)


def write_timeline(path: Path, heard: list[tuple[int, Any]]) -> None:
    """What was heard on the stream's timeline (sample = pts), NaN where nothing was."""
    import numpy as np

    end = max((pts + len(pcm) for pts, pcm in heard), default=0)
    timeline = np.full(min(end, 48_000 * 600), np.nan, dtype=np.float32)
    for pts, pcm in heard:
        if 0 <= pts < len(timeline):
            timeline[pts : pts + len(pcm)] = pcm[: len(timeline) - pts]
    np.save(path, timeline)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
