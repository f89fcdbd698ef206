"""What the store holds: three record types, each with its own expiry.

Every record carries ``until`` (Unix seconds): the store drops it then, so
nothing a crashed client or instance leaves behind outlives its purpose (P4).
Records are msgspec structs so any backend can serialise them the same way.
Nothing here holds a plain account name or an IP address.
"""

from __future__ import annotations

from typing import Literal

import msgspec

CallState = Literal["init", "alerting", "connecting", "connected"]


class DeviceRecord(msgspec.Struct, kw_only=True):
    """A further device's key, with the approval that added it (server/devices.py)."""

    public_key: str  # raw Ed25519 key, base64url
    added: int
    approved_by: str  # the approving device's id (protocol.device_id)
    signature: str  # its signature over protocol.device_approval_payload
    # What else that signature covers, kept so contacts can check it (the approval
    # chain served with calls); "" in records written before the chain existed.
    approver_key: str = ""
    handle: str = ""
    tag: str = ""


class LinkRecord(msgspec.Struct, kw_only=True):
    """A new device waiting for approval: its key, the code's handle and tag (never
    the code's secret), its sealed label and the session to tell (minutes only)."""

    handle: str
    public_key: str
    tag: str
    label: str
    session: str
    until: float


class BoxKeyRecord(msgspec.Struct, kw_only=True):
    """A device's published X25519 key for room keys, with its Ed25519 signature
    over protocol.box_key_payload (kept so every device can check it)."""

    box_key: str
    signature: str


class AccountRecord(msgspec.Struct, kw_only=True):
    """An identity: keyed by HMAC(secret, name), never by the name itself."""

    public_key: str  # raw Ed25519 key, base64url: the first device
    created: int
    until: float
    devices: list[DeviceRecord] = msgspec.field(default_factory=list)  # the others
    links: list[LinkRecord] = msgspec.field(default_factory=list)  # pending, short-lived
    # device id → its box key (rooms' keys are sealed to it); revoked ones pruned
    box_keys: dict[str, BoxKeyRecord] = msgspec.field(default_factory=dict)


class CallRecord(msgspec.Struct, kw_only=True):
    """A call from invite to hang-up; deleted the moment it ends.

    ``caller``/``callee``/``devices`` are session ids. ``offer`` is the held
    SDP, dropped as soon as it is handed to the accepting device.
    """

    call_id: str
    state: CallState
    caller: str
    until: float
    kind: Literal["direct", "room"] = "direct"
    callee: str | None = None
    devices: list[str] = msgspec.field(default_factory=list)
    offer: str | None = None
    video: bool = False
    room: str | None = None
    # When the timer guarding ``state`` fires (Unix seconds; None: no timer).
    # A shared store keeps a due-list of these, so any instance can fire it.
    deadline: float | None = None
    # The parties' device keys ("" anonymous): a party that reconnects (a new
    # session, e.g. after a network change) with the same key takes its place back.
    caller_key: str = ""
    callee_key: str = ""
    renew_round: int = 0  # the last renew-offer round relayed (bounded: calls.MAX_RENEWALS)

    def is_party(self, session_id: str) -> bool:
        """Caller or the device that accepted (a room's two participants)."""
        return session_id in (self.caller, self.callee)

    def other(self, session_id: str) -> str | None:
        """The opposite party of ``session_id`` (None before accept)."""
        if session_id == self.caller:
            return self.callee
        return self.caller if session_id == self.callee else None


class KnockRecord(msgspec.Struct, kw_only=True):
    """A visitor waiting in a knock-to-enter room's lobby: its session, never its name."""

    knock: str  # the id the owner admits or declines by
    session: str
    until: float  # the visitor's instance ends the knock then (a crashed one: dropped)


class RoomRecord(msgspec.Struct, kw_only=True):
    """A conversation URL. ``name`` is ciphertext the server cannot read;
    ``owner`` is ``a:<account key>`` or ``s:<session id>`` (anonymous creator)."""

    token: str
    name: str
    owner: str
    created: int
    expires: int  # Unix seconds: joining after this answers room-expired
    ttl: int  # seconds added to "now" by each join
    until: float  # expires + grace: then the record is gone
    participants: list[str] = msgspec.field(default_factory=list)
    call_id: str | None = None
    context: str = ""  # ciphertext too (description and URL), "" when none
    knock: bool = False  # visitors wait in ``lobby`` until the owner admits them
    lobby: list[KnockRecord] = msgspec.field(default_factory=list)
    # device id → the room key sealed to that device of the owner's account
    # (ciphertext only: the server holds no key that opens them)
    key_boxes: dict[str, str] = msgspec.field(default_factory=dict)
    # participant's session id → SHA-256 (hex) of the seat secret it joined with
    # (v2 room-join ``seat``): a new session holding the secret takes the seat back
    seats: dict[str, str] = msgspec.field(default_factory=dict)
