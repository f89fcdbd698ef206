"""The signaling protocol: every message the client and server exchange.

One WebSocket per client, one JSON object per text frame, discriminated by
``type``. This module is the single schema the server, the client and the
tests share (the server imports nothing else from the client). Decoding is
strict: unknown types, unknown fields, wrong types and oversized values are
rejected with a :class:`ProtocolError` carrying a machine-readable code.

Requests may carry ``ref`` (a client-chosen integer); the reply to that
request (``ok``, ``error`` or a typed answer) echoes it, so a client can
match replies to requests without a second channel. See ``docs/protocol.md``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Annotated, Final, Literal, TypeVar, get_args

import msgspec

from hello_tui.signaling.urls import canonical_origin as canonical_origin  # re-exported

# Version 2 is version 1 plus optional room fields and messages (display names,
# room-waiting, room context). A server speaks both: a session that said hello
# with 1 never receives what version 1 cannot decode (``for_version``); a client
# says 2 first and, on ``error version``, says 1 on the same connection.
PROTOCOL_VERSION: Final = 2
PROTOCOL_VERSIONS: Final = (1, 2)
MAX_MESSAGE_BYTES: Final = 64 * 1024
MAX_ORIGIN_CHARS: Final = 300

# Field shapes. Lengths are caps against abuse, far above real use.
Ref = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
Id = Annotated[str, msgspec.Meta(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Sdp = Annotated[str, msgspec.Meta(min_length=1, max_length=48 * 1024)]
B64 = Annotated[str, msgspec.Meta(max_length=512, pattern=r"^[A-Za-z0-9_=+/-]*$")]
# An encrypted room name (roomcrypt): at most 256 characters of 4 UTF-8 bytes,
# padded to 1,024, plus version, nonce and tag (1,053 bytes) in base64url.
MAX_CIPHERTEXT: Final = 1404
Ciphertext = Annotated[str, msgspec.Meta(max_length=MAX_CIPHERTEXT, pattern=r"^[A-Za-z0-9_=+/-]*$")]
Seconds = Annotated[int, msgspec.Meta(ge=60, le=366 * 24 * 3600)]
Nonce = Annotated[str, msgspec.Meta(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]+$")]
# How a person shows themself in a room (docs/protocol.md): one line, no control,
# bidi-override or line-separator characters; the faces still escape it when shown.
MAX_DISPLAY_NAME: Final = 64
DisplayName = Annotated[
    str,
    msgspec.Meta(
        max_length=MAX_DISPLAY_NAME,
        pattern=r"^[^\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]*$",
    ),
]
_NOT_SHOWN = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]+")


def clean_display_name(text: str) -> str:
    """``text`` as a valid ``DisplayName``: what it may not hold becomes a space,
    runs of spaces one, cut to ``MAX_DISPLAY_NAME`` characters."""
    return " ".join(_NOT_SHOWN.sub(" ", text).split())[:MAX_DISPLAY_NAME].strip()


# A room's encrypted context (roomcrypt.encrypt_context): a description of at most
# 200 characters and an http(s) URL of at most 500, as JSON, padded, encrypted.
MAX_CONTEXT_CIPHERTEXT: Final = 2600
ContextCiphertext = Annotated[
    str, msgspec.Meta(max_length=MAX_CONTEXT_CIPHERTEXT, pattern=r"^[A-Za-z0-9_=+/-]*$")
]
# An account's Ed25519 public key as the server announces it to the other party:
# raw 32 bytes, base64url without padding (43 characters); empty when unknown.
AccountKey = Annotated[str, msgspec.Meta(max_length=43, pattern=r"^([A-Za-z0-9_-]{43})?$")]
# v2: a room participant's seat secret (room-join): 32 random bytes, base64url
# without padding; empty when none. The server keeps only its hash.
Seat = Annotated[str, msgspec.Meta(max_length=43, pattern=r"^([A-Za-z0-9_-]{43})?$")]

# ---------------------------------------------------------------- the call vocabulary
# Every word list of a call's life is defined here, once, as a Literal: the
# wire (call-ended, peer-left, hangup, reject), the call events
# (hello_tui.call.events), the quality samples and summary, the telemetry
# reports, the server's counts and the faces all use these types. The tuples
# beside them are the same words at run time (typing.get_args), for checks
# and help texts. The words are wire and on-disk vocabulary: never rename one.

# Why a call ended, as Firefox Hello named them (plus the timers' own).
EndReason = Literal[
    "hangup",  # a party hung up after connecting
    "rejected",  # the callee declined
    "busy",  # the callee is in a call, on do-not-disturb, or blocked the caller
    "timeout",  # nobody answered before the ringing timer
    "cancel",  # the caller hung up before an answer
    "answered-elsewhere",  # another device of the callee accepted
    "user-unknown",  # no such room (the server never says it of an account: see unavailable)
    "unavailable",  # no such account, or no device connected: the same answer, on purpose
    "closed",  # a party's connection vanished
    "media-fail",  # media did not flow (reported by a client, or connection timer)
    "setup-timeout",  # supervisory timer: both sides did not join in time
]
HangupReason = Literal["hangup", "media-fail"]  # what a party may say when it hangs up
RejectReason = Literal["rejected", "busy"]  # what a callee device may say when it declines
# Why a call ended, when the client itself ended it (never on the wire to the server).
LocalReason = Literal[
    "unreachable",  # the server could not be reached, or the connection dropped
    "error",  # something else went wrong locally (the event's message says what)
]
CallEndReason = Literal[EndReason, LocalReason]  # an Ended event's and a report's reason
# Where a call is; a call that ends reports the stage it was at.
CallStage = Literal["dialing", "ringing", "waiting", "connecting", "connected"]
StageOrEnded = Literal[CallStage, "ended"]  # a Call object's stage: over once it ended
Direction = Literal["outgoing", "incoming"]
CallOutcome = Literal[
    "completed",  # connected, then hung up normally (either side)
    "dropped",  # connected, then lost (media failure, network, error)
    "not-answered",  # never connected for a human reason: rejected, busy, no answer, cancel
    "failed",  # never connected for a technical reason: unreachable, media-fail, error
]
# The network the call's local candidate is on (from the OS, never finer than this).
NetworkType = Literal["wired", "wifi", "cellular", "loopback", "unknown"]
CandidateType = Literal["host", "srflx", "prflx", "relay"]  # ICE (RFC 8445 §5.1.1)

END_REASONS: Final[tuple[EndReason, ...]] = get_args(EndReason)
LOCAL_REASONS: Final[tuple[LocalReason, ...]] = get_args(LocalReason)
CALL_END_REASONS: Final[tuple[CallEndReason, ...]] = get_args(CallEndReason)
CALL_STAGES: Final[tuple[CallStage, ...]] = get_args(CallStage)
DIRECTIONS: Final[tuple[Direction, ...]] = get_args(Direction)
CALL_OUTCOMES: Final[tuple[CallOutcome, ...]] = get_args(CallOutcome)
NETWORK_TYPES: Final[tuple[NetworkType, ...]] = get_args(NetworkType)
CANDIDATE_TYPES: Final[tuple[CandidateType, ...]] = get_args(CandidateType)

W = TypeVar("W", bound=str)


def one_of(value: object, words: tuple[W, ...]) -> W | None:
    """``value`` as one of ``words`` (a vocabulary tuple above), or None: how text
    from outside (aioice, a file) becomes a typed word without a cast."""
    for word in words:
        if value == word:
            return word
    return None


ErrorCode = Literal[
    "bad-message",  # not JSON, unknown type, wrong field
    "too-big",  # over MAX_MESSAGE_BYTES
    "rate-limited",
    "version",  # unsupported protocol version
    "hello-first",  # anything before hello
    "auth-required",  # the request needs a logged-in account
    "name-taken",  # taken, reserved, or a look-alike of one (names.fold)
    "bad-name",  # breaks the name policy (hello_tui.signaling.names)
    "invite-required",
    "invite-invalid",
    "bad-signature",
    "wrong-server",  # a login signed for another server's origin (a relayed login)
    "no-challenge",
    "unknown-call",
    "not-allowed",  # not a party of that call, or wrong state
    "unknown-room",
    "room-full",
    "room-expired",
    "quota-exceeded",  # too many rooms, registrations or unanswered calls (network or account)
    "internal",
    "unknown-link",  # v2: no pending device link with that code (expired, used or mistyped)
]


class Message(
    msgspec.Struct, tag_field="type", forbid_unknown_fields=True, kw_only=True, omit_defaults=True
):
    """Base of every message; ``ref`` links a reply to its request."""

    ref: Ref | None = None


# ---------------------------------------------------------------- session
class Hello(Message, tag="hello"):
    """Client → server, first message. ``client`` is a short product string."""

    version: int
    client: Annotated[str, msgspec.Meta(max_length=64)] = ""


class IceServer(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    urls: list[str]
    username: str = ""
    credential: str = ""


class Welcome(Message, tag="welcome"):
    """Server → client: the session is open. ``registration`` is "open" or
    "invite-only"; ``ice`` carries time-limited TURN credentials when the
    operator configured a TURN secret (after login only)."""

    version: int
    session: Id
    registration: Literal["open", "invite-only"] = "open"
    ice: list[IceServer] = msgspec.field(default_factory=list)


class Ok(Message, tag="ok"):
    """Server → client: the request ``ref`` succeeded (no other data)."""


class Error(Message, tag="error"):
    """Server → client: the request ``ref`` (or an unparsable frame) failed.
    The connection stays usable."""

    code: ErrorCode
    message: str


class Reconnect(Message, tag="reconnect"):
    """Server → client: the server is shutting down; reconnect after ``after_ms``."""

    after_ms: int = 1000


# ---------------------------------------------------------------- accounts
class Register(Message, tag="register"):
    """Bind ``name`` to an Ed25519 public key (raw 32 bytes, base64url)."""

    name: Name
    public_key: B64
    invite: Annotated[str, msgspec.Meta(max_length=128)] = ""


class Login(Message, tag="login"):
    """Start a login as ``name``; the server replies with a ``challenge``."""

    name: Name


class Challenge(Message, tag="challenge"):
    """Server → client: sign ``login_payload(nonce, session)`` with the account key."""

    nonce: B64


class LoginProof(Message, tag="login-proof"):
    """``signature`` covers ``login_payload(nonce, session, origin)``; ``origin``
    is the server as the client dialled it (:func:`canonical_origin`)."""

    signature: B64
    origin: Annotated[str, msgspec.Meta(max_length=MAX_ORIGIN_CHARS)]


class LoggedIn(Message, tag="logged-in"):
    name: Name
    ice: list[IceServer] = msgspec.field(default_factory=list)


class Logout(Message, tag="logout"):
    pass


class AccountDelete(Message, tag="account-delete"):
    """Delete the logged-in account and everything the server holds for it."""


# Linking a second device (v2, docs/accounts-and-rooms.md "Your devices"). The new
# device makes its own key and shows a code ``HHHH-SSSS-SSSS``: the handle ``HHHH``
# reaches the server, the secret ``SSSS-SSSS`` never does; ``tag`` (an HMAC keyed
# by the secret, stretched) lets the approving device check the key it is shown is
# the one the new device made. The approval is signed by a device already on the
# account (``device_approval_payload``): the server cannot add a key by itself.
DeviceId = Annotated[str, msgspec.Meta(min_length=12, max_length=12, pattern=r"^[A-Za-z0-9_-]+$")]
LinkHandle = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-HJKMNP-TV-Z]{4}$")]
LinkTag = Annotated[str, msgspec.Meta(min_length=43, max_length=43, pattern=r"^[A-Za-z0-9_-]+$")]
# A device's label (hostname by default), sealed with the link's key: at most 64
# characters padded to 256 bytes, + version, nonce and tag, base64url.
LabelBox = Annotated[str, msgspec.Meta(max_length=384, pattern=r"^[A-Za-z0-9_-]*$")]
LINK_TTL: Final = 300  # seconds a pending link waits for its approval


class DeviceLink(Message, tag="device-link"):
    """v2. A new device → server: ask to join account ``name`` with its own key.
    Answered ``ok`` whether or not the account exists (no enumeration); then
    ``device-linked`` arrives once a device of the account approved."""

    name: Name
    public_key: AccountKey
    handle: LinkHandle
    tag: LinkTag
    label: LabelBox = ""


class DeviceLinkGet(Message, tag="device-link-get"):
    """v2. A signed-in device → server: the pending link with this handle, if any
    (answered ``device-link-request`` or ``unknown-link``; misses are rate-limited)."""

    handle: LinkHandle


class DeviceLinkRequest(Message, tag="device-link-request"):
    """v2. Server → the asking device: what the new device sent, unchanged."""

    handle: LinkHandle
    public_key: AccountKey
    tag: LinkTag
    label: LabelBox = ""


class DeviceApprove(Message, tag="device-approve"):
    """v2. A signed-in device adds the linked key: ``signature`` is its account key's
    Ed25519 signature over ``device_approval_payload`` (answered ``ok``)."""

    handle: LinkHandle
    public_key: AccountKey
    signature: B64


class DeviceLinked(Message, tag="device-linked"):
    """v2. Server → the new device's session: approved; sign in as ``name``."""

    name: Name
    device: DeviceId


class DeviceInfo(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    id: DeviceId
    public_key: AccountKey
    added: int  # Unix seconds
    approved_by: Annotated[str, msgspec.Meta(max_length=12)] = ""  # "" for the first key
    current: bool = False  # the asking session's own device
    box_key: AccountKey = ""  # v2: its X25519 key for room keys, "" before it published one
    box_signature: B64 = ""  # its Ed25519 signature over box_key_payload


class DeviceList(Message, tag="device-list"):
    """v2. The signed-in account's devices (answered ``devices``)."""


class Devices(Message, tag="devices"):
    devices: list[DeviceInfo]


class DeviceRevoke(Message, tag="device-revoke"):
    """v2. Remove a device's key from the account (answered ``ok``); its sessions
    get ``device-revoked`` and are signed out and closed."""

    device: DeviceId


class DeviceRevoked(Message, tag="device-revoked"):
    """v2. Server → the account's sessions: ``device`` was revoked."""

    device: DeviceId


class DeviceApproval(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """v2. One link of a device's approval chain, as the server keeps it: the
    ``approver`` key signed ``device_approval_payload(account, public_key, handle,
    tag)`` (``signature``). ``added`` is the server's word (not signed)."""

    public_key: AccountKey
    approver: AccountKey
    handle: LinkHandle
    tag: LinkTag
    signature: B64
    added: int = 0


MAX_CHAIN: Final = 20  # the server's MAX_DEVICES: no chain is longer
# The approvals from a device's key up to the account's first key (its own first),
# so a contact who pinned an older key of the account can follow them (docs/security.md).
Chain = Annotated[list[DeviceApproval], msgspec.Meta(max_length=MAX_CHAIN)]

# Room keys on every device (v2, docs/accounts-and-rooms.md "Room keys on every
# device"). Each device publishes an X25519 key derived from its key file, signed
# by its Ed25519 key (``box_key_payload``) so the server cannot slip in its own; a
# room's key travels to each device sealed to that key (``roomkeys.seal``), and the
# server keeps only the sealed boxes.
BoxKey = AccountKey  # raw X25519 public key, base64url without padding
# version, ephemeral key, nonce, the sealed 16-byte key and its tag: 77 bytes.
KeyBox = Annotated[str, msgspec.Meta(max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]


class DeviceBoxKey(Message, tag="device-box-key"):
    """v2. A signed-in device publishes its X25519 key (answered ``ok``);
    ``signature``: its Ed25519 signature over ``box_key_payload``."""

    box_key: BoxKey
    signature: B64


class RoomKeyBox(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A room key sealed to one device of the owner's account."""

    device: DeviceId
    box: KeyBox


KeyBoxes = Annotated[list[RoomKeyBox], msgspec.Meta(max_length=MAX_CHAIN)]


class RoomKeyAdd(Message, tag="room-key-add"):
    """v2. The owner's device adds boxes of a room's key for (new) devices (``ok``)."""

    token: Id
    key_boxes: KeyBoxes


# ---------------------------------------------------------------- direct calls
class Call(Message, tag="call"):
    """Caller → server: ring every device of ``to``. The SDP offer travels
    with the invite and is held by the server, then handed only to the device
    that accepts: the call connects one round trip after accept."""

    to: Name
    offer: Sdp
    video: bool = False


class CallCreated(Message, tag="call-created"):
    """Server → caller: the call exists (devices are being rung)."""

    call_id: Id


class Incoming(Message, tag="incoming"):
    """Server → each callee device. ``caller`` is the caller's account name,
    or empty for an anonymous caller; ``caller_key`` the public key that
    account signed in with (empty when anonymous). The key is only the
    server's word: the offer's ``a=hello-identity`` signature proves it
    (``hello_tui.call.identity_proof``)."""

    call_id: Id
    caller: Annotated[str, msgspec.Meta(max_length=254)] = ""
    video: bool = False
    caller_key: AccountKey = ""
    caller_chain: Chain = msgspec.field(default_factory=list)  # v2: how caller_key was linked


class Missed(Message, tag="missed"):
    """Server → a callee device that was in another call when ``incoming``
    arrived: the caller was told ``busy``, and the user is told someone called
    (nobody is turned away unseen). ``caller`` and ``caller_key`` as in ``incoming``."""

    call_id: Id
    caller: Annotated[str, msgspec.Meta(max_length=254)] = ""
    video: bool = False
    caller_key: AccountKey = ""
    caller_chain: Chain = msgspec.field(default_factory=list)  # v2: how caller_key was linked


class Ringing(Message, tag="ringing"):
    """Callee device → server → caller: the device is ringing."""

    call_id: Id


class Accept(Message, tag="accept"):
    """Callee device → server. The server replies with the held ``offer``,
    tells the caller ``accepted`` and ends the call on the other devices."""

    call_id: Id


class Accepted(Message, tag="accepted"):
    """Server → caller: a device accepted. ``callee_key``: the public key its
    account signed in with, proved by the answer's ``a=hello-identity``."""

    call_id: Id
    callee_key: AccountKey = ""
    callee_chain: Chain = msgspec.field(default_factory=list)  # v2: how callee_key was linked


class Reject(Message, tag="reject"):
    """Callee device → server: decline (``busy`` when blocked, in a call, DND)."""

    call_id: Id
    reason: RejectReason = "rejected"


class Offer(Message, tag="offer"):
    """SDP offer: server → accepting callee; or room participant ↔ peer."""

    call_id: Id
    sdp: Sdp


class Answer(Message, tag="answer"):
    """SDP answer, relayed to the other party only."""

    call_id: Id
    sdp: Sdp


class SasReveal(Message, tag="sas-reveal"):
    """Offerer → server → answerer, sent once the answer arrived: the nonce (32
    bytes, base64url) whose hash the offer's ``a=hello-sas-commit`` carried,
    for the check code (``hello_tui.call.sas``). Relayed like ``answer``, not kept."""

    call_id: Id
    nonce: Nonce


class Connected(Message, tag="connected"):
    """A party's media is flowing; stops the connection timer."""

    call_id: Id


class Hangup(Message, tag="hangup"):
    """End the call: ``cancel`` before answer is implied for the caller."""

    call_id: Id
    reason: HangupReason = "hangup"


class CallEnded(Message, tag="call-ended"):
    """Server → each party: the call is over and forgotten by the server."""

    call_id: Id
    reason: EndReason


class CallTurn(Message, tag="call-turn"):
    """v2. A signed-in session → server, before it places or accepts a call: fresh
    TURN credentials (answered ``room-ice``), since those of ``logged-in`` may be
    near their end (coturn re-checks the expiry on each allocation refresh).
    Rationed per account; ``auth-required`` without an account."""


class RenewOffer(Message, tag="renew-offer"):
    """v2. A connected call's offerer → server → the other party: a fresh transport
    within the same call (a new peer connection: aiortc has no ICE restart), after
    ICE failed or the network changed (docs/calls.md, "A new transport within the
    call"). ``round`` counts the renewals of this call (from 1); the same round
    may be sent again (its answer got lost while a side reconnected). Relayed
    like ``offer``, only for a connected call, a bounded number of times."""

    call_id: Id
    round: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    sdp: Sdp


class RenewAnswer(Message, tag="renew-answer"):
    """v2. The answer to ``renew-offer`` of the same ``round``, relayed back."""

    call_id: Id
    round: Annotated[int, msgspec.Meta(ge=1, le=1000)]
    sdp: Sdp


# ---------------------------------------------------------------- rooms
class RoomInfo(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    token: Id
    name: Ciphertext  # encrypted by the client; the key is only in the URL fragment
    expires: int  # Unix seconds
    participants: int = 0
    context: ContextCiphertext = ""  # v2: description and URL, encrypted like the name
    knock: bool = False  # v2: visitors knock and wait until the owner lets them in
    key_box: KeyBox | None = None  # v2: the room key sealed to the asking device


class RoomCreate(Message, tag="room-create"):
    name: Ciphertext
    ttl: Seconds | None = None
    context: ContextCiphertext = ""  # v2
    knock: bool = False  # v2: knock to enter


class RoomCreated(Message, tag="room-created"):
    room: RoomInfo
    url: str


class RoomList(Message, tag="room-list"):
    pass


class Rooms(Message, tag="rooms"):
    rooms: list[RoomInfo]


class RoomRename(Message, tag="room-rename"):
    token: Id
    name: Ciphertext
    context: ContextCiphertext | None = None  # v2: None keeps it, "" clears it
    knock: bool | None = None  # v2: None keeps the setting


class RoomDelete(Message, tag="room-delete"):
    token: Id


class RoomJoin(Message, tag="room-join"):
    """Join a room (anyone holding the token). ``offer`` may ride along: if a
    peer is already there it is relayed at once (the later arrival offers)."""

    token: Id
    offer: Sdp | None = None
    display_name: DisplayName = ""  # v2: how the joiner shows itself to the other
    # v2: a secret the joiner picked. A later room-join with the same secret, from
    # a new session (the old one's connection dropped), takes that seat back while
    # the room keeps it (``room_seat_grace``): the pair's call goes on, renewable.
    seat: Seat = ""


class RoomJoined(Message, tag="room-joined"):
    """Server → joiner. With ``call_id`` set a peer is present: send your
    ``offer`` for that call (unless it rode along with ``room-join``)."""

    room: RoomInfo
    call_id: Id | None = None


class PeerJoined(Message, tag="peer-joined"):
    """Server → the participant already in the room: expect an ``offer``."""

    token: Id
    call_id: Id
    display_name: DisplayName = ""  # v2: the joiner's, as it gave it


class RoomLeave(Message, tag="room-leave"):
    token: Id
    # v2: ``media-fail``: we leave because the media path is gone (the other side
    # hears peer-left with that reason, and says so in words).
    reason: HangupReason = "hangup"


class PeerLeft(Message, tag="peer-left"):
    """Server → remaining participant; ``reason`` is ``hangup`` or ``closed``."""

    token: Id
    call_id: Id
    reason: EndReason


class PeerName(Message, tag="peer-name"):
    """v2. Server → the later arrival of a pair: the display name the participant
    already there gave. Sent by that participant's own instance, since the
    server keeps display names only in the live connection, never in its store."""

    token: Id
    call_id: Id
    display_name: DisplayName


class RoomWaiting(Message, tag="room-waiting"):
    """v2. Server → every signed-in session of a room's owner (or the anonymous
    creating session) when someone joins the room while none of them is in it.
    ``name`` is the room's ciphertext (the owner's device decrypts it);
    ``display_name`` is all the server says about the visitor."""

    token: Id
    name: Ciphertext
    display_name: DisplayName = ""


class RoomTurn(Message, tag="room-turn"):
    """v2. Anyone holding a room's token (an anonymous visitor too) → server: TURN
    credentials for a call in that room, before making an offer. Refused with
    ``quota-exceeded`` past the per-room and per-network rates."""

    token: Id


class RoomIce(Message, tag="room-ice"):
    """v2. Server → the asker: short-lived TURN credentials (empty without TURN)."""

    ice: list[IceServer] = msgspec.field(default_factory=list)


# How a knock ends: the visitor hears declined, timeout or closed (admitted: it is
# let in, room-joined follows); the owner's sessions in the room hear every one.
KnockEnd = Literal["admitted", "declined", "timeout", "left", "closed"]
KNOCK_ENDS: Final[tuple[KnockEnd, ...]] = get_args(KnockEnd)


class RoomKnocking(Message, tag="room-knocking"):
    """v2. Server → a visitor of a knock-to-enter room, the reply to its
    ``room-join``: it waits in the lobby. Sent again (without ``ref``) when one
    of the owner's sessions enters the room (``owner_present``)."""

    token: Id
    knock: Id
    owner_present: bool = False


class RoomKnock(Message, tag="room-knock"):
    """v2. Server → the owner's sessions in the room: a visitor knocks. The
    display name comes from the visitor's own instance (never stored)."""

    token: Id
    knock: Id
    display_name: DisplayName = ""


class RoomAdmit(Message, tag="room-admit"):
    """v2. The owner lets a knocking visitor in (answered ``ok``)."""

    token: Id
    knock: Id


class RoomDecline(Message, tag="room-decline"):
    """v2. The owner turns a knocking visitor away (answered ``ok``)."""

    token: Id
    knock: Id


class RoomKnockEnded(Message, tag="room-knock-ended"):
    """v2. A knock is over (``KnockEnd``): to the visitor and the owner's sessions in the room."""

    token: Id
    knock: Id
    reason: KnockEnd


ClientMessage = (
    Hello | Register | Login | LoginProof | Logout | AccountDelete
    | Call | Ringing | Accept | Reject | Offer | Answer | SasReveal | Connected | Hangup
    | RoomCreate | RoomList | RoomRename | RoomDelete | RoomJoin | RoomLeave
    | RoomTurn
    | RoomAdmit | RoomDecline
    | CallTurn
    | DeviceLink | DeviceLinkGet | DeviceApprove | DeviceList | DeviceRevoke
    | DeviceBoxKey | RoomKeyAdd
    | RenewOffer | RenewAnswer
)  # fmt: skip
ServerMessage = (
    Welcome | Ok | Error | Reconnect | Challenge | LoggedIn
    | CallCreated | Incoming | Missed | Ringing | Accepted | Offer | Answer | SasReveal | CallEnded
    | RoomCreated | Rooms | RoomJoined | PeerJoined | PeerLeft | PeerName | RoomWaiting
    | RoomIce
    | RoomKnocking | RoomKnock | RoomKnockEnded
    | DeviceLinkRequest | DeviceLinked | Devices | DeviceRevoked
    | RenewOffer | RenewAnswer
)  # fmt: skip


def _v2_only(room: RoomInfo) -> bool:
    return bool(room.context or room.knock or room.key_box is not None)


def _v1_room(room: RoomInfo) -> RoomInfo:
    if _v2_only(room):
        return msgspec.structs.replace(room, context="", knock=False, key_box=None)
    return room


def for_version(message: Message, version: int) -> Message | None:
    """``message`` as a session that said hello with ``version`` can decode it:
    version 1 never sees version 2's fields (they are dropped) or messages
    (None: not sent). Decoding is strict, so an unknown field would break it."""
    if version >= PROTOCOL_VERSION:
        return message
    replace = msgspec.structs.replace
    match message:
        case PeerName() | RoomWaiting() | RoomKnocking() | RoomKnock() | RoomKnockEnded():
            return None
        case DeviceLinkRequest() | DeviceLinked() | Devices() | DeviceRevoked():
            return None
        case RenewOffer() | RenewAnswer():  # a v1 peer keeps its call as it was
            return None
        case Error() if message.code == "unknown-link":
            return replace(message, code="not-allowed")
        case PeerJoined() if message.display_name:
            return replace(message, display_name="")
        case RoomJoined() | RoomCreated() if _v2_only(message.room):
            return replace(message, room=_v1_room(message.room))
        case Rooms() if any(_v2_only(r) for r in message.rooms):
            return replace(message, rooms=[_v1_room(r) for r in message.rooms])
        case Incoming() | Missed() if message.caller_chain:
            return replace(message, caller_chain=[])
        case Accepted() if message.callee_chain:
            return replace(message, callee_chain=[])
    return message


class ProtocolError(ValueError):
    """A frame that is not a valid message; ``code`` goes into the error reply."""

    def __init__(self, code: ErrorCode, message: str, ref: int | None = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.ref = ref


_client_decoder = msgspec.json.Decoder(ClientMessage)
_server_decoder = msgspec.json.Decoder(ServerMessage)
_encoder = msgspec.json.Encoder()
_ref_decoder = msgspec.json.Decoder(dict[str, object])


def _decode(decoder: msgspec.json.Decoder[Message], data: str | bytes) -> Message:
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too-big", f"message over {MAX_MESSAGE_BYTES} bytes")
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise ProtocolError("bad-message", str(exc), _salvage_ref(data)) from None
    except RecursionError:  # thousands of nested brackets: an error reply, not a crash
        raise ProtocolError("bad-message", "nested too deeply", None) from None


def _salvage_ref(data: str | bytes) -> int | None:
    """The ``ref`` of an invalid request, so its error reply can still be matched."""
    try:
        ref = _ref_decoder.decode(data).get("ref")
    except (msgspec.DecodeError, RecursionError):
        return None
    return ref if isinstance(ref, int) and not isinstance(ref, bool) and ref >= 0 else None


def decode_client(data: str | bytes) -> Message:
    """Parse a client→server frame; raise :class:`ProtocolError` if invalid."""
    return _decode(_client_decoder, data)


def decode_server(data: str | bytes) -> Message:
    """Parse a server→client frame; raise :class:`ProtocolError` if invalid."""
    return _decode(_server_decoder, data)


def encode(message: Message) -> bytes:
    """Serialise any message to its JSON frame."""
    return _encoder.encode(message)


def login_payload(nonce: str, session: str, origin: str) -> bytes:
    """What a login signature covers. The session stops a replay on another
    connection; the origin (the server the client dialled, canonical) stops a
    relay: a proof made for ``http://evil`` is refused by the real server even
    when evil passes the real server's challenge through (docs/security.md)."""
    return (  # "protocol 1" whatever the version spoken: the bytes every client signs
        f"hello-tui login v2\nprotocol 1\norigin {origin}\nsession {session}\nnonce {nonce}"
    ).encode()


def device_id(public_key: str) -> str:
    """A device's id: the first 12 characters of base64url(SHA-256(raw key)),
    from the key as the wire carries it (base64url, padding optional)."""
    raw = base64.urlsafe_b64decode(public_key + "=" * (-len(public_key) % 4))
    return base64.urlsafe_b64encode(hashlib.sha256(raw).digest()).decode()[:12]


def box_key_payload(name: str, public_key: str, box_key: str) -> bytes:
    """What a device signs to publish its X25519 key: the account, its own
    Ed25519 key and the X25519 key (each base64url), one per line."""
    return f"hello-tui box key v1\naccount {name}\ndevice {public_key}\nbox {box_key}".encode()


def device_approval_payload(name: str, public_key: str, handle: str, tag: str) -> bytes:
    """What an approving device signs: the account (as signed in), the new key,
    the link's handle and the tag the code's secret made (docs/security.md)."""
    return (
        f"hello-tui device v1\naccount {name}\ndevice {public_key}\nlink {handle}\ntag {tag}"
    ).encode()


# ================================================================ telemetry (HTTP, not WebSocket)
# The bodies of ``POST /telemetry``, ``POST /feedback`` and ``POST /crash``
# (docs/telemetry.md). They live here because this is the one module the
# server shares with the client. Every field is from a closed set or a
# bounded number: nothing in them can carry a contact, an account name, a
# room token, a call id, an address or SDP, and decoding rejects anything
# else (unknown fields included).

# Version 2 adds ``CallReport.shared_s``. A client says 2 only in a report that
# carries it (a server that knows 1 only still takes every other body); a
# server accepts 1 and 2, and refuses ``shared_s`` in a version 1 body.
TELEMETRY_VERSION: Final = 2
MAX_TELEMETRY_BYTES: Final = 8 * 1024  # a report is ~700 bytes
MAX_CRASH_BYTES: Final = 24 * 1024

OsFamily = Literal["linux", "macos", "windows", "bsd", "other"]
FeedbackRating = Literal["happy", "sad"]
FEEDBACK_RATINGS: Final[tuple[FeedbackRating, ...]] = get_args(FeedbackRating)
FeedbackReason = Literal[
    "audio-quality", "video-quality", "disconnected", "confusing-controls", "setup-slow", "other"
]
FEEDBACK_REASONS: Final[tuple[FeedbackReason, ...]] = get_args(FeedbackReason)
Version = Annotated[
    str, msgspec.Meta(max_length=32, pattern=r"^[0-9]+(\.[0-9]+){0,3}[A-Za-z0-9.+-]*$")
]
# A coarse UTC timestamp: the hour, "2026-11-26T04".
Hour = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}$")]
DailyId = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}$")]
Ms = Annotated[float, msgspec.Meta(ge=0, le=3_600_000)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]
Mos = Annotated[float, msgspec.Meta(ge=0, le=5)]
Count = Annotated[int, msgspec.Meta(ge=0, le=2**40)]
Codec = Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[a-z0-9.-]+/[0-9]+(/[0-9]+)?$")]


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class QualityReport(_Body, kw_only=True):
    """The end-of-call quality summary (``hello_tui.quality.summary``), as sent."""

    samples: Count = 0
    rtt_ms_p50: Ms | None = None
    rtt_ms_p95: Ms | None = None
    jitter_ms_p50: Ms | None = None
    jitter_ms_p95: Ms | None = None
    fraction_lost_p50: Fraction | None = None
    fraction_lost_p95: Fraction | None = None
    packets_lost: Count = 0
    packets_received: Count = 0
    mos_mean: Mos | None = None
    mos_min: Mos | None = None
    codec: Codec | None = None
    candidate_type: CandidateType | None = None


class CallReport(_Body, kw_only=True):
    """``POST /telemetry``: one call, after it ended."""

    v: Annotated[int, msgspec.Meta(ge=1, le=TELEMETRY_VERSION)] = 1
    # Random per install *and per UTC day* (the client derives it from a local
    # secret and the date): counts daily users, links nothing across days.
    daily_id: DailyId
    client_version: Version
    os: OsFamily
    hour: Hour  # when the call started, UTC, to the hour
    direction: Direction
    room: bool = False
    outcome: CallOutcome
    reason: CallEndReason
    stage: CallStage  # where the call was when it ended (for a failed call: where it failed)
    duration_s: Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 3600)] = 0.0
    setup_ms: Ms | None = None  # dial/accept → connected (DTLS up)
    network_type: NetworkType = "unknown"
    quality: QualityReport = msgspec.field(default_factory=QualityReport)
    # Version 2: seconds a terminal was shared in this call (either way; None: none was).
    # Only that and how long: never what was shared, by whom, or its size.
    shared_s: Annotated[float, msgspec.Meta(ge=0, le=7 * 24 * 3600)] | None = None

    def __post_init__(self) -> None:
        if self.shared_s is not None and self.v < 2:
            raise ValueError("shared_s needs v 2")


class FeedbackReport(_Body, kw_only=True):
    """``POST /feedback``: "How was your conversation?" (only when the user answered)."""

    v: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1  # unchanged: version 2 is CallReport's
    rating: FeedbackRating
    reasons: Annotated[list[FeedbackReason], msgspec.Meta(max_length=6)] = msgspec.field(
        default_factory=list
    )
    client_version: Version
    os: OsFamily
    hour: Hour


class CrashReport(_Body, kw_only=True):
    """``POST /crash``: an unexpected error, sent only when the user said yes."""

    v: Annotated[int, msgspec.Meta(ge=1, le=1)] = 1  # unchanged: version 2 is CallReport's
    client_version: Version
    os: OsFamily
    python: Annotated[str, msgspec.Meta(max_length=16, pattern=r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")]
    hour: Hour
    command: Annotated[str, msgspec.Meta(max_length=32, pattern=r"^[a-z -]*$")] = ""
    error: Annotated[str, msgspec.Meta(max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]
    traceback: Annotated[str, msgspec.Meta(max_length=16 * 1024)] = ""


def encode_body(body: _Body) -> bytes:
    """The exact bytes a client sends (and keeps, for ``hello-tui privacy``). A call
    report without ``shared_s`` leaves the field out: version 1 bodies, byte for byte."""
    if isinstance(body, CallReport) and body.shared_s is None:
        data = msgspec.to_builtins(body)
        del data["shared_s"]
        return _encoder.encode(data)
    return _encoder.encode(body)
