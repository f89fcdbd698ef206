"""The soak benchmark (``bench/soak.py``) at CI scale, so it cannot rot.

Real subprocesses over loopback: ``hello-tui serve``, one long-running
``answer --auto`` and back-to-back ``call`` processes. Asserts zero
unexplained ends (anything but the scripted hang-up on either side), the
answerer's open descriptors back to their baseline after the calls, and a
generous bound on its memory growth. No timing is asserted.
"""

from __future__ import annotations

from pathlib import Path

from tests.benches import load_bench

CALLS = 10  # ~3 s a call (process start-ups), far more under load

bench = load_bench("soak.py")


def test_back_to_back_calls_into_one_answerer(tmp_path: Path) -> None:
    result = bench.soak(CALLS, 0.5, tmp_path)
    assert result.unexplained == []
    assert len(result.samples) == CALLS and len(result.setup_ms) == CALLS
    base, end = result.baseline, result.samples[-1]
    # Every call's sockets, pipes and media files closed again (a leak of one
    # descriptor per call would show as +10).
    assert abs(end.answer_fds - base.answer_fds) <= 3, (base, end)
    assert abs(end.server_fds - base.server_fds) <= 3, (base, end)
    # Memory: the first call loads codecs and aiortc; later calls must not keep
    # adding. Generous: 10 calls leaking a whole call's worth each would exceed it.
    first = result.samples[0].answer_rss
    assert end.answer_rss - first < 40, [s.answer_rss for s in result.samples]
