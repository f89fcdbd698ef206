"""Where the after-call feedback goes.

The telemetry API for feedback is not in the core yet, so :func:`record_feedback`
appends one JSON line per answer to ``feedback.jsonl`` in the profile's data
directory (it never leaves the device). When telemetry grows a feedback
function, point :data:`SINK` at it: the prompt does not change.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

REASONS: tuple[tuple[str, str], ...] = (
    ("audio-quality", "Poor sound"),
    ("echo", "Echo"),
    ("delay", "Delay"),
    ("dropped", "The call dropped"),
    ("other", "Something else"),
)


@dataclass(frozen=True, slots=True)
class Feedback:
    happy: bool
    reasons: tuple[str, ...] = ()
    call_id: str = ""
    duration: float = 0.0
    t: float = field(default_factory=time.time)


def _local_sink(feedback: Feedback, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "feedback.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({**asdict(feedback), "reasons": list(feedback.reasons)}) + "\n")


SINK: Callable[[Feedback, Path], None] = _local_sink


def record_feedback(feedback: Feedback, data_dir: Path) -> None:
    SINK(feedback, data_dir)


def read_feedback(data_dir: Path) -> list[dict[str, object]]:
    path = data_dir / "feedback.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def reason_labels(keys: Sequence[str]) -> list[str]:
    names = dict(REASONS)
    return [names.get(k, k) for k in keys]
