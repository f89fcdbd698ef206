"""``hello-tui`` with a log of the audio frames it receives (tests and benchmarks).

    python -m tests.net.recorded_cli FRAMES.json call bob --json …

runs the real CLI in this process (``hello_tui.cli.main.main``) and writes,
at exit ``{"frames": [...], "released": [...]}``: one ``[arrival_s, pts,
samples, rate]`` per decoded audio frame, taken where the call counts them
(``TappedTrack.recv``: before the sink), and one ``[rtp_timestamp, concealed]``
per frame the speech jitter buffer released to the decoder (with the aiortc
adapter on; ``concealed``: a concealment frame for a lost packet).
:func:`audio_gaps` reads what a call lost from it:

- ``lost_ms``: the longest run of audio lost in the network (concealed or
  skipped: the listener heard no real sound for that long);
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
import sys
import time
from pathlib import Path
from typing import Any

SETTLE_S = 1.0


def lost_run_ms(released: list[list[int]], frame: int = 960, rate: int = 48000) -> int:
    """The longest run of concealed or skipped frames in the jitter buffer's output."""
    longest = run = 0
    last: int | None = None
    for ts, concealed in released:
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
    if len(frames) < 2:
        return {"frames": len(frames), "lost_ms": lost_run, "missing_ms": None, "stall_ms": None,
                "missing_total_ms": None}  # fmt: skip
    missing = stall = total = 0.0
    start = frames[0][0]
    for (t0, pts0, n0, rate), (t1, pts1, _, _) in itertools.pairwise(frames):
        lost = max(0.0, (pts1 - pts0 - n0) / rate * 1000)
        missing, total = max(missing, lost), total + lost
        if t0 - start >= SETTLE_S:
            stall = max(stall, (t1 - t0) * 1000 - n0 / rate * 1000)
    return {"frames": len(frames), "lost_ms": lost_run, "missing_ms": round(missing),
            "stall_ms": round(max(stall, 0)), "missing_total_ms": round(total)}  # fmt: skip


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    from hello_tui.cli.main import main as cli
    from hello_tui.media import aiortc_adapter as adapter
    from hello_tui.media.tracks import TappedTrack

    log: list[tuple[float, int, int, int]] = []
    released: list[tuple[int, bool]] = []
    recv, add = TappedTrack.recv, adapter.SpeechJitterBuffer.add

    def adding(self: adapter.SpeechJitterBuffer, packet: Any) -> Any:
        pli, frame = add(self, packet)
        parts = frame.parts if isinstance(frame, adapter.JitterBundle) else [frame]
        released.extend((p.timestamp, isinstance(p, adapter.ConcealFrame)) for p in parts if p)
        return pli, frame

    async def recording(self: TappedTrack) -> Any:
        frame = await recv(self)
        if self.kind == "audio" and frame.pts is not None:
            log.append((time.monotonic(), frame.pts, frame.samples, frame.sample_rate))
        return frame

    TappedTrack.recv = recording  # type: ignore[method-assign]
    adapter.SpeechJitterBuffer.add = adding  # type: ignore[method-assign]
    try:
        return cli(argv[1:])
    finally:
        out.write_text(json.dumps({"frames": log, "released": released}))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
