"""The one stream of typed events a call emits.

Every front end consumes the same stream: the CLI prints each event as one
JSON line (``to_json()``), the TUI will wrap them in Textual messages, and
telemetry will read the quality samples. Events are frozen dataclasses with
a ``kind`` string, the call's server id (empty until the server gave one)
and a wall-clock timestamp ``t`` (Unix seconds).

Order of a call that connects::

    Dialing | Incoming → Ringing | Waiting (a room) → Connecting → Connected → MediaFlowing
        → (CheckCode / Muted / Unmuted / CameraOn / CameraOff / Notice / Quality
           / ChatMessage / Share* / AudioDeviceChanged / MutedSpeech)* → Ended

``CheckCode`` comes once per call: right after ``Connected`` (usually) or a
little later (the answerer waits for the offerer's reveal); a ``mismatch``
one may come before ``Connected``. Until then the code is "waiting".

``Identity`` (direct calls, when the front end keeps pins) comes right after
``Connected``: who the other side is, by key. An incoming call whose
announced key differs from the pinned one also gets an unproven ``changed``
one at ring time, before ``Ringing``; marking the contact verified during
the call emits one more (``verified``).

``Ended`` is always the last event, exactly once. While connected, a
:class:`Quality` event carries one :class:`QualitySample` a second; ``Ended``
carries the call's :class:`CallQualitySummary`, computed from those very
samples (the panel, the CLI and telemetry all read the same numbers).

The words an ``Ended`` carries (reason, stage, outcome, direction) are the
protocol's vocabulary (:mod:`hello_tui.signaling.protocol`: ``CallEndReason``,
``CallStage``, ``CallOutcome``, ``Direction``), the same the server and
telemetry use. Consumers dispatch on the event's type (``match event: case
Ended(): ...``); ``kind`` is the event's name in the JSON lines only.

Two clocks, kept apart by name: every event's ``t`` is wall-clock Unix time;
a sample's own ``t`` (``Quality.sample.t``) is seconds since the call connected.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from hello_tui.quality.sample import QualitySample
from hello_tui.quality.summary import CallQualitySummary
from hello_tui.signaling.protocol import (
    CallEndReason,
    CallOutcome,
    CallStage,
    Direction,
)
from hello_tui.util.display import printable


@dataclass(frozen=True, slots=True, kw_only=True)
class CallEvent:
    """Base of every call event."""

    kind: ClassVar[str] = "event"
    call_id: str = ""
    t: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"kind": ..., "call_id": ..., "t": ..., fields...}``."""
        data = asdict(self)
        return {"kind": self.kind, **data}


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialing(CallEvent):
    """An outgoing call or room join started; ``to`` is what the user asked for."""

    kind: ClassVar[str] = "dialing"
    to: str
    room: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming(CallEvent):
    """Answer mode: someone is calling (``caller`` empty when anonymous)."""

    kind: ClassVar[str] = "incoming"
    caller: str
    video: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Ringing(CallEvent):
    """The callee's device is ringing (caller side) or we are ringing (callee side)."""

    kind: ClassVar[str] = "ringing"


@dataclass(frozen=True, slots=True, kw_only=True)
class Waiting(CallEvent):
    """A room: we are in it alone, waiting for someone to join (they will offer)."""

    kind: ClassVar[str] = "waiting"
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomEntered(CallEvent):
    """A room was joined: its name and context (description, URL) as the room key
    in the URL decrypts them (None: no key, or not readable with it). The URL is
    someone else's text: shown, never opened."""

    kind: ClassVar[str] = "room"
    token: str
    name: str | None = None
    description: str = ""
    url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerName(CallEvent):
    """A room: the display name the other participant gave (its own words)."""

    kind: ClassVar[str] = "peer-name"
    name: str


# Knock to enter (a room's owner lets visitors in). The visitor's side:
@dataclass(frozen=True, slots=True, kw_only=True)
class Knocking(CallEvent):
    """A knock-to-enter room: waiting to be let in (``owner_present``: the owner
    is in the room and has been asked; else they were told someone waits)."""

    kind: ClassVar[str] = "knocking"
    token: str
    owner_present: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted(CallEvent):
    """The room's owner let us in: the call goes on as a room join."""

    kind: ClassVar[str] = "admitted"
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Declined(CallEvent):
    """Not let in (``declined`` by the owner, ``timeout``, or the room ``closed``);
    ``Ended`` follows."""

    kind: ClassVar[str] = "declined"
    token: str
    reason: str


# ... and the owner's, in the room:
@dataclass(frozen=True, slots=True, kw_only=True)
class Knock(CallEvent):
    """Someone knocks at our room: ``call.admit(knock)`` or ``call.decline(knock)``.
    ``name`` is the visitor's own words ("" if none)."""

    kind: ClassVar[str] = "knock"
    token: str
    knock: str
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class KnockEnded(CallEvent):
    """A knock is over (``admitted``, ``declined``, ``timeout``, ``left``, ``closed``)."""

    kind: ClassVar[str] = "knock-ended"
    token: str
    knock: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Connecting(CallEvent):
    """Answered: SDP exchanged, ICE and DTLS under way."""

    kind: ClassVar[str] = "connecting"


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected(CallEvent):
    """ICE and DTLS are up: media is encrypted (DTLS-SRTP). ``setup_ms`` is the
    time since dialing (or accepting). The check code follows in :class:`CheckCode`."""

    kind: ClassVar[str] = "connected"
    setup_ms: float


CHECK_STATUSES: tuple[str, ...] = ("verified", "mismatch", "unsupported")


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckCode(CallEvent):
    """The check code is settled (once per call; :mod:`hello_tui.call.sas`).

    ``verified``: ``code`` is the six digits both sides show (``"482 913"``):
    read it aloud and compare. ``mismatch``: the offerer's revealed nonce does
    not open the commitment in its offer, so someone tampered with the call
    setup: a loud warning, and never a code. ``unsupported``: the other side
    sent no commitment (or no nonce): no code, rather than a weak one.
    """

    kind: ClassVar[str] = "check-code"
    status: str
    code: str = ""
    # A renewed transport (docs/calls.md, "A new transport within the call"): its
    # round (0: the call's first), and whether the code differs from the last one.
    renewal: int = 0
    changed: bool = False

    def line(self) -> str:
        """One line for people."""
        if self.status == "verified" and self.changed:
            return (
                f"WARNING: the check code changed with the new connection: {self.code}. "
                "Read it aloud again: if the other side sees another, hang up."
            )
        if self.status == "verified" and self.renewal:
            return f"Reconnected: check code unchanged ({self.code})"
        if self.status == "verified":
            return f"Check code: {self.code} (read it aloud: the other side must see the same)"
        if self.status == "mismatch":
            return (
                "WARNING: no check code. The other side's reveal does not match its "
                "commitment: someone may be intercepting this call. Hang up."
            )
        return "No check code: the other side does not support it."


IDENTITY_STATUSES: tuple[str, ...] = (
    "new", "known", "verified", "linked", "changed", "unproven"
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity(CallEvent):
    """Who the other side is, by account key (:mod:`hello_tui.contacts.pins`).

    ``name``: the account name the server gave (untrusted text).
    ``fingerprint``: of the key the server announced ("" if none); ``pinned``:
    of the key pinned before, when it differs (``changed``). ``proven``: the
    SDP's signature checked out under that key and DTLS connected to the
    signed certificate (False at ring time: only the server's word).
    ``status``: ``new`` (pinned now), ``known``, ``verified`` (a check code
    was compared once), ``linked`` (another device of the same account: its key
    was approved by a pinned one, ``linked_by`` the approving device's id,
    ``linked_on`` when, as the server recorded it; now pinned too), ``changed``
    (another key than the pinned one: a LOUD warning, the pin is kept) or
    ``unproven`` (no valid signature: never pinned).
    """

    kind: ClassVar[str] = "identity"
    name: str
    status: str
    fingerprint: str = ""
    pinned: str = ""
    proven: bool = True
    linked_by: str = ""
    linked_on: int = 0

    @property
    def trusted(self) -> bool:
        """The contact behind this name may be shown (name, photo)."""
        return self.status in ("new", "known", "verified", "linked")

    def line(self) -> str:
        """One line for people (the name escaped)."""
        name = printable(self.name)
        if self.status == "changed":
            return (
                f"WARNING: this is not the {name} you talked to before: the account's key "
                f"changed (was {self.pinned or '?'}, now {self.fingerprint or '?'}). Someone "
                f"else may have taken the name. Hang up unless {name} told you of a new key; "
                f"to accept it: hello-tui contacts trust {name}"
            )
        if self.status == "unproven":
            return (
                f"WARNING: cannot prove this is the account {name}: its key signature is "
                "missing or wrong (the server may be lying). Treat it as a stranger."
            )
        if self.status == "new":
            return (
                f"First call with {name}: key {self.fingerprint} remembered. Compare the "
                f"check code aloud, then mark it verified: hello-tui contacts verify {name}"
            )
        if self.status == "verified":
            return f"Identity: {name}, verified key {self.fingerprint}"
        if self.status == "linked":
            by = f" by device {self.linked_by}" if self.linked_by else ""
            when = time.strftime(" on %Y-%m-%d", time.localtime(self.linked_on))
            return (
                f"Same account {name}, a new device (linked{by}"
                f"{when if self.linked_on else ''}): its key is remembered now."
            )
        return f"Identity: {name}, same key as before ({self.fingerprint})"


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaFlowing(CallEvent):
    """The first remote audio frame was received; ``setup_ms`` since dial/accept."""

    kind: ClassVar[str] = "media-flowing"
    setup_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Muted(CallEvent):
    """Our microphone is muted: the far side receives silence."""

    kind: ClassVar[str] = "muted"


@dataclass(frozen=True, slots=True, kw_only=True)
class Unmuted(CallEvent):
    kind: ClassVar[str] = "unmuted"


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraOn(CallEvent):
    """Our camera is sending again (``call.set_camera(True)``; a video call starts on)."""

    kind: ClassVar[str] = "camera-on"


@dataclass(frozen=True, slots=True, kw_only=True)
class CameraOff(CallEvent):
    """Our camera is off: the far side receives no new frames."""

    kind: ClassVar[str] = "camera-off"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notice(CallEvent):
    """Something the user should know in one line (e.g. an audio device fallback)."""

    kind: ClassVar[str] = "notice"
    text: str
    source: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage(CallEvent):
    """A chat message over the call's data channel (:mod:`hello_tui.call.chat`):
    ``sender`` ``local`` (we sent it, once it went out) or ``remote``; ``name``
    who it is from as the call knows them (untrusted text, like ``text``: faces
    escape both); the event's ``t`` is when it was sent or received. In JSON
    ``sender`` is ``from``. Kept in memory for the call only (``Call.chat_log``)."""

    kind: ClassVar[str] = "chat"
    sender: Literal["local", "remote"]
    name: str
    text: str

    def line(self) -> str:
        """One line for people (escaped: a newline or ESC in the text is shown, not obeyed)."""
        who = self.name or ("me" if self.sender == "local" else "them")
        return f"{printable(who)}: {printable(self.text)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "call_id": self.call_id, "t": self.t,
                "from": self.sender, "name": self.name, "text": self.text}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerLost(CallEvent):
    """The connection to the rendezvous server dropped during a connected call.
    The media path is the peers' own: the call goes on; the client reconnects
    (with backoff and jitter) unless ``retrying`` is False (it gave up)."""

    kind: ClassVar[str] = "server-lost"
    reason: str
    retrying: bool = True

    def line(self) -> str:
        then = "reconnecting..." if self.retrying else "it is not coming back"
        return f"Lost the server ({self.reason}): the call goes on; {then}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerBack(CallEvent):
    """The server connection is back during a call. ``call_known``: the server
    still knows this call; False: it forgot it (it restarted, or it ended the
    call when our old connection vanished), so the call goes on peer to peer
    and hanging up ends it directly, over the data channel."""

    kind: ClassVar[str] = "server-back"
    call_known: bool

    def line(self) -> str:
        if self.call_known:
            return "Server back"
        return "Server back; it no longer knows this call: it goes on peer to peer"


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(CallEvent):
    """No audio from the other side for ``quiet_s`` seconds: the network path
    is interrupted (``cause`` ``network``), or our own network changed
    (``network-change``: the call renews its transport at once).
    :class:`MediaResumed` follows if it comes back; the call ends
    (``media-fail``) if it does not in time."""

    kind: ClassVar[str] = "reconnecting"
    cause: str = "network"
    quiet_s: float = 0.0

    def line(self) -> str:
        if self.cause == "network-change":
            return "The network changed: reconnecting…"
        return "No audio from the other side: reconnecting…"


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaResumed(CallEvent):
    """Audio from the other side again after a :class:`Reconnecting`; ``gap_s``:
    how long nothing was received."""

    kind: ClassVar[str] = "media-resumed"
    gap_s: float

    def line(self) -> str:
        return f"Audio back (nothing heard for {self.gap_s:.1f} s)"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareStarted(CallEvent):
    """A terminal is shared (:mod:`hello_tui.share`): ``side`` ``local`` (ours, over
    the call's ``share`` channel) or ``remote`` (theirs: we view it). ``title``
    is what the sharer named it (untrusted text from a remote: faces escape it)."""

    kind: ClassVar[str] = "share-started"
    side: Literal["local", "remote"]
    cols: int
    rows: int
    title: str = ""

    def line(self) -> str:
        who = "You share" if self.side == "local" else "They share"
        return f"{who} a terminal ({self.cols}x{self.rows}): {printable(self.title)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareStopped(CallEvent):
    """A shared terminal stopped after ``duration`` seconds (the call's end stops it too)."""

    kind: ClassVar[str] = "share-stopped"
    side: Literal["local", "remote"]
    duration: float

    def line(self) -> str:
        who = "You stopped" if self.side == "local" else "They stopped"
        return f"{who} sharing a terminal ({self.duration:.0f} s)"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareControl(CallEvent):
    """Keyboard control of a shared terminal changed hands: ``side`` ``local``: we
    granted (or revoked) it on ours; ``remote``: they did on theirs (``granted``:
    we may type now). Read-only is the default; a grant ends with the share."""

    kind: ClassVar[str] = "share-control"
    side: Literal["local", "remote"]
    granted: bool

    def line(self) -> str:
        if self.side == "local":
            return (
                "CONTROL GRANTED: the other side can type in your shared terminal"
                if self.granted
                else "Control revoked: your shared terminal is read-only for them"
            )
        return "You may type in their terminal" if self.granted else "Their terminal is read-only"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShareSnapshot(CallEvent):
    """A shared terminal's screen as text (``{"cmd": "share-snapshot"}``): one line
    a row, trailing blanks trimmed; ``cursor`` ``[x, y]`` from 0."""

    kind: ClassVar[str] = "share-snapshot"
    side: Literal["local", "remote"]
    cols: int
    rows: int
    text: str
    cursor: tuple[int, int]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "call_id": self.call_id, "t": self.t, "side": self.side,
                "cols": self.cols, "rows": self.rows, "text": self.text,
                "cursor": list(self.cursor)}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Quality(CallEvent):
    """One second of call quality while connected (``sample.t``: seconds since
    connected; the event's own ``t`` is wall-clock, like every event's)."""

    kind: ClassVar[str] = "quality"
    sample: QualitySample

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "call_id": self.call_id, "t": self.t,
                "sample": self.sample.to_json()}  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended(CallEvent):
    """The call is over. ``reason`` is one of the protocol's ``CallEndReason``
    (END_REASONS or LOCAL_REASONS); ``duration`` is seconds connected (0 if
    never); ``stage`` is where the call was when it ended; ``outcome`` is
    :func:`call_outcome` of those two (filled in when not given); ``quality``
    summarises the call's :class:`Quality` samples (``summarize()`` over
    exactly the samples emitted; 0 samples if the call never connected)."""

    kind: ClassVar[str] = "ended"
    reason: CallEndReason
    duration: float
    stage: CallStage
    message: str = ""
    outcome: CallOutcome | Literal[""] = ""
    quality: CallQualitySummary | None = None
    # For the words people read (not in the JSON, which keeps the codes).
    peer: str = ""
    direction: Direction | Literal[""] = ""

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", call_outcome(self.reason, self.stage))

    @property
    def history_outcome(self) -> str:
        """The history's word for this call: :func:`history_outcome`."""
        return history_outcome(self.reason, self.stage, self.direction)

    def line(self) -> str:
        """One sentence for people ("No answer from Bob"): :mod:`wording`."""
        from hello_tui.call.wording import end_words

        return end_words(
            self.reason, self.stage, self.duration,
            peer=self.peer, direction=self.direction, message=self.message,
        )  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "call_id": self.call_id,
            "t": self.t,
            "reason": self.reason,
            "duration": self.duration,
            "stage": self.stage,
            "message": self.message,
            "outcome": self.outcome,
        }
        if self.quality is not None:
            data["quality"] = self.quality.to_json()
        return data


_NORMAL_ENDINGS: frozenset[CallEndReason] = frozenset(
    {"hangup", "closed", "cancel", "answered-elsewhere"}
)
_HUMAN_ENDINGS: frozenset[CallEndReason] = frozenset(
    {"rejected", "busy", "timeout", "cancel", "answered-elsewhere", "user-unknown", "unavailable"}
)


# How a call went: the one place that turns the facts (end reason, the stage it
# ended in, its direction) into words. Two audiences, two vocabularies, both
# fixed (telemetry's is on the wire, the history's is in users' files).
_HANGUPS = frozenset({"hangup", "closed", "cancel"})
_UNANSWERED = frozenset({"cancel", "timeout", "setup-timeout", "closed"})


def call_outcome(reason: CallEndReason, stage: CallStage) -> CallOutcome:
    """How the call went, in four words (``Ended.outcome``, telemetry's ``outcome``):

    ``completed`` (connected, then hung up), ``dropped`` (connected, then lost),
    ``not-answered`` (never connected for a human reason: declined, busy, no
    answer, cancelled, nobody there) or ``failed`` (never connected for a
    technical reason: unreachable, media failure, setup timeout, error)."""
    if stage == "connected":
        return "completed" if reason in _NORMAL_ENDINGS else "dropped"
    return "not-answered" if reason in _HUMAN_ENDINGS else "failed"


def history_outcome(reason: str, stage: str, direction: str) -> str:
    """The history's word (``CallRecord.outcome``): ``answered`` (connected,
    then hung up), ``missed`` (an incoming call that stopped ringing unanswered)
    or else the end reason itself (``rejected``, ``busy``, ``media-fail``, ...)."""
    if stage == "connected" and reason in _HANGUPS:
        return "answered"
    if direction == "incoming" and reason in _UNANSWERED:
        return "missed"
    return reason


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDeviceChanged(CallEvent):
    """Our microphone (``direction`` ``in``) or speaker (``out``) changed mid-call,
    without renegotiation: ``switched`` (asked for: the ``audio-in``/``audio-out``
    command), ``lost`` (the device disappeared: moved to the default one) or
    ``latency`` (the speaker kept running dry: reopened at ``latency_ms``)."""

    kind: ClassVar[str] = "audio-device"
    direction: Literal["in", "out"]
    device: str
    previous: str = ""
    reason: Literal["switched", "lost", "latency"] = "switched"
    latency_ms: float | None = None

    def line(self) -> str:
        what = "Microphone" if self.direction == "in" else "Speaker"
        if self.reason == "lost":
            return f"{what} {printable(self.previous)!r} is gone: now {printable(self.device)!r}"
        if self.reason == "latency":
            return f"{what} kept running dry: its buffer is now {self.latency_ms or 0:.0f} ms"
        return f"{what}: now {printable(self.device)!r}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MutedSpeech(CallEvent):
    """The microphone hears someone talking while the call is muted (at most
    once every 10 s): the "you are muted" hint."""

    kind: ClassVar[str] = "muted-speech"

    def line(self) -> str:
        return "You are muted: the other side does not hear you"


def json_line(data: dict[str, Any]) -> str:
    """One JSON line as every face writes it (``--json`` output, the control
    socket): ``event.to_json()`` (or a face's own line, like :func:`missed_json`),
    UTF-8 as is, one object a line (the encoder escapes newlines in text)."""
    return json.dumps(data, ensure_ascii=False) + "\n"


def missed_json(shown: str) -> dict[str, Any]:
    """The ``missed`` line: someone called while this device was in another call."""
    return {"kind": "missed", "caller": shown}


EVENT_TYPES: dict[str, type[CallEvent]] = {
    cls.kind: cls
    for cls in (
        Dialing,
        Incoming,
        Ringing,
        Waiting,
        Connecting,
        Connected,
        CheckCode,
        Identity,
        MediaFlowing,
        Muted,
        Unmuted,
        CameraOn,
        CameraOff,
        Notice,
        Quality,
        Ended,
        RoomEntered,
        PeerName,
        ChatMessage,
        Knocking,
        Admitted,
        Declined,
        Knock,
        KnockEnded,
        ServerLost,
        ServerBack,
        Reconnecting,
        MediaResumed,
        ShareStarted,
        ShareStopped,
        ShareControl,
        ShareSnapshot,
        AudioDeviceChanged,
        MutedSpeech,
    )
}

__all__ = [
    "CHECK_STATUSES",
    "EVENT_TYPES",
    "IDENTITY_STATUSES",
    "AudioDeviceChanged",
    "CallEvent",
    "CameraOff",
    "CameraOn",
    "ChatMessage",
    "CheckCode",
    "Connected",
    "Connecting",
    "Dialing",
    "Ended",
    "Identity",
    "Incoming",
    "MediaFlowing",
    "MediaResumed",
    "Muted",
    "MutedSpeech",
    "Notice",
    "Quality",
    "Reconnecting",
    "Ringing",
    "ServerBack",
    "ServerLost",
    "ShareControl",
    "ShareSnapshot",
    "ShareStarted",
    "ShareStopped",
    "Unmuted",
    "Waiting",
    "call_outcome",
    "history_outcome",
    "json_line",
    "missed_json",
]
