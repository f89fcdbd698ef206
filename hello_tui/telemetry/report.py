"""The bodies telemetry sends, built from what the call itself produced.

Nothing here reads the call's peer, account, room token, call id or SDP: a
report is assembled field by field from the ``Ended`` event (reason, stage,
duration, outcome, quality summary), the ``Connected`` event's ``setup_ms``,
the call's direction, whether it was a room, and for how long a terminal was
shared in it (``Call.shared_s``: the ``share-stopped`` events' durations). Every body is validated
against the protocol's strict decoder before it is kept or sent.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import time
import traceback
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from hello_tui import __version__
from hello_tui.call import events as ev
from hello_tui.quality.summary import CallQualitySummary
from hello_tui.signaling import protocol as p

__all__ = [
    "build_call_report",
    "build_crash_report",
    "build_feedback",
    "daily_id",
    "hour_of",
    "os_family",
    "parse_feedback",
    "quality_report",
    "validate",
]

B = TypeVar("B", p.CallReport, p.FeedbackReport, p.CrashReport)


def os_family(system: str | None = None) -> p.OsFamily:
    """``linux`` / ``macos`` / ``windows`` / ``bsd`` / ``other``: never a version or host."""
    name = (system if system is not None else platform.system()).lower()
    if name == "linux":
        return "linux"
    if name == "darwin":
        return "macos"
    if name.startswith(("windows", "cygwin", "msys")):
        return "windows"
    if name.endswith("bsd") or name == "dragonfly":
        return "bsd"
    return "other"


def hour_of(ts: float) -> str:
    """A coarse UTC timestamp: ``2026-11-26T04``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H")


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def daily_id(install_secret: str, day: str) -> str:
    """Random-looking, stable for one install during one UTC day, unlinkable across days
    (without the secret, which never leaves the device)."""
    digest = hashlib.sha256(f"hello-tui daily id v1\n{install_secret}\n{day}".encode())
    return digest.hexdigest()[:32]


def quality_report(summary: CallQualitySummary | None) -> p.QualityReport:
    """The summary's quality fields, unchanged (the values the samples carried)."""
    if summary is None:
        return p.QualityReport()
    return p.QualityReport(
        samples=summary.samples,
        rtt_ms_p50=summary.rtt_ms_p50,
        rtt_ms_p95=summary.rtt_ms_p95,
        jitter_ms_p50=summary.jitter_ms_p50,
        jitter_ms_p95=summary.jitter_ms_p95,
        fraction_lost_p50=summary.fraction_lost_p50,
        fraction_lost_p95=summary.fraction_lost_p95,
        packets_lost=summary.packets_lost,
        packets_received=summary.packets_received,
        mos_mean=summary.mos_mean,
        mos_min=summary.mos_min,
        codec=summary.codec,
        candidate_type=summary.candidate_type,
    )


def build_call_report(
    ended: ev.Ended,
    *,
    direction: p.Direction,
    room: bool,
    started: float,
    setup_ms: float | None,
    install_secret: str,
    os: p.OsFamily | None = None,
    client_version: str = __version__,
    shared_s: float | None = None,
) -> p.CallReport:
    """The report of one ended call (validated: raises ValueError if it would not pass).

    The event's words are typed, but an event may have been built from text
    (a test, an older writer): a word outside the vocabulary is reported as
    the catch-all (``error``, ``dialing``, ``unknown``), never sent as is."""
    summary = ended.quality
    network = summary.network_type if summary is not None else "unknown"
    reason = p.one_of(ended.reason, p.CALL_END_REASONS) or "error"
    stage = p.one_of(ended.stage, p.CALL_STAGES) or "dialing"
    report = p.CallReport(
        daily_id=daily_id(install_secret, day_of(started)),
        client_version=client_version,
        os=os or os_family(),
        hour=hour_of(started),
        direction=direction,
        room=room,
        outcome=ended.outcome or ev.call_outcome(ended.reason, ended.stage),
        reason=reason,
        stage=stage,
        duration_s=ended.duration,
        setup_ms=setup_ms,
        network_type=p.one_of(network, p.NETWORK_TYPES) or "unknown",
        quality=quality_report(summary),
    )
    if shared_s is not None:  # version 2 only when it says something version 1 cannot
        report.v, report.shared_s = 2, round(min(shared_s, 7 * 24 * 3600.0), 1)
    return validate(report)


def report_for_call(call: Any, install_secret: str) -> p.CallReport | None:
    """:func:`build_call_report` for an ended :class:`hello_tui.call.engine.Call`."""
    ended = call.ended
    if ended is None:
        return None
    return build_call_report(
        ended,
        direction=call.direction,
        room=call.is_room,
        started=call.started,
        setup_ms=call.connected_ms,
        install_secret=install_secret,
        shared_s=getattr(call, "shared_s", None),
    )


def parse_feedback(spec: str) -> tuple[p.FeedbackRating, list[str]]:
    """``happy`` | ``sad`` | ``sad:audio-quality,disconnected`` → ``(rating, reasons)``
    (every reason one of ``protocol.FEEDBACK_REASONS``)."""
    word, _, rest = spec.strip().partition(":")
    rating = p.one_of(word.strip().lower(), p.FEEDBACK_RATINGS)
    if rating is None:
        raise ValueError(f"--feedback: expected happy or sad[:REASON,...], got {spec!r}")
    reasons = [r.strip().lower() for r in rest.split(",") if r.strip()]
    for reason in reasons:
        if reason not in p.FEEDBACK_REASONS:
            raise ValueError(
                f"--feedback: unknown reason {reason!r} (one of {', '.join(p.FEEDBACK_REASONS)})"
            )
    return rating, list(dict.fromkeys(reasons))


def build_feedback(
    rating: str,
    reasons: Iterable[str] = (),
    *,
    at: float | None = None,
    os: p.OsFamily | None = None,
) -> p.FeedbackReport:
    """The feedback body; ValueError for a rating or reason the protocol does not know."""
    given = list(dict.fromkeys(reasons))
    word = p.one_of(rating, p.FEEDBACK_RATINGS)
    known = [r for r in (p.one_of(g, p.FEEDBACK_REASONS) for g in given) if r is not None]
    if word is None or len(known) != len(given):
        raise ValueError(f"invalid FeedbackReport: rating {rating!r}, reasons {given!r}")
    return validate(
        p.FeedbackReport(
            rating=word,
            reasons=known,
            client_version=__version__,
            os=os or os_family(),
            hour=hour_of(time.time() if at is None else at),
        )
    )


def _scrub(text: str) -> str:
    """Replace the home directory (it names the user) by ``~``."""
    home = str(Path.home())
    return text.replace(home, "~") if len(home) > 1 else text


def build_crash_report(
    exc: BaseException, *, command: str = "", at: float | None = None
) -> p.CrashReport:
    """A crash report: the exception type, the traceback (home directory shown as
    ``~``), versions. The user reads it before choosing to send it."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    text = _scrub(text)
    limit = 16 * 1024
    if len(text) > limit:
        text = "…" + text[-(limit - 1) :]
    name = type(exc).__qualname__
    python = ".".join(str(x) for x in sys.version_info[:3])
    words = "".join(c for c in command.lower() if c.isalpha() or c in " -")[:32]
    return validate(
        p.CrashReport(
            client_version=__version__,
            os=os_family(),
            python=python,
            hour=hour_of(time.time() if at is None else at),
            command=words,
            error=name if name.replace(".", "").replace("_", "").isalnum() else "Exception",
            traceback=text,
        )
    )


def validate(body: B) -> B:
    """Round-trip ``body`` through the strict decoder the server uses."""
    try:
        return msgspec.json.decode(p.encode_body(body), type=type(body))
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid {type(body).__name__}: {exc}") from None
