"""Where the after-call feedback goes.

:func:`record_feedback` does what the CLI's ``--feedback`` does, through the
same core function (``hello_tui.telemetry.feedback.queue_feedback``): for a
call through a real server it queues a ``FeedbackReport`` (rating, reasons,
version, OS family, hour: nothing linking it to the call) for that server's
``/feedback``; the app then sends the queue in a worker, and the body shows
in Settings › What was sent and in ``hello-tui privacy``. Calls through the
embedded server send nothing, as in the CLI.

Either way the answer is also appended to ``feedback.jsonl`` in the data
directory (one JSON object per answer, with the call id and where it was
sent, if anywhere): the user's own record, which never leaves the device.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

# The protocol's feedback reasons (``protocol.FeedbackReason``), in the words shown.
REASONS: tuple[tuple[str, str], ...] = (
    ("audio-quality", "Poor sound"),
    ("video-quality", "Poor picture"),
    ("disconnected", "The call dropped"),
    ("setup-slow", "Slow to connect"),
    ("confusing-controls", "Confusing controls"),
    ("other", "Something else"),
)
JOURNAL = "feedback.jsonl"


@dataclass(frozen=True, slots=True)
class Feedback:
    happy: bool
    reasons: tuple[str, ...] = ()
    call_id: str = ""
    duration: float = 0.0
    t: float = field(default_factory=time.time)


def record_feedback(feedback: Feedback, data_dir: Path, server_url: str = "") -> bool:
    """Keep the answer locally and, for a real server (``server_url`` not
    empty), queue it for that server. True when something was queued (the
    caller sends the queue: ``telemetry.sender.flush``)."""
    from hello_tui.telemetry.feedback import queue_feedback
    from hello_tui.telemetry.store import TelemetryStore

    rating = "happy" if feedback.happy else "sad"
    entry = queue_feedback(TelemetryStore(data_dir), server_url, rating, feedback.reasons)
    from hello_tui.util.private import private_file

    private_file(data_dir / JOURNAL)
    line = {**asdict(feedback), "reasons": list(feedback.reasons),
            "sent_to": entry.url if entry is not None else None}  # fmt: skip
    with (data_dir / JOURNAL).open("a", encoding="utf-8") as f:
        f.write(json.dumps(line) + "\n")
    return entry is not None


def read_feedback(data_dir: Path) -> list[dict[str, object]]:
    path = data_dir / JOURNAL
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def reason_labels(keys: Sequence[str]) -> list[str]:
    names = dict(REASONS)
    return [names.get(k, k) for k in keys]
