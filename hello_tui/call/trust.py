"""What a call can tell about the other side: who it is, and whether the line is clean.

:class:`CallTrust` is the call's trust job, fed by the :class:`~hello_tui.call.call.Call`
that owns it as the call setup happens, and speaking only through the ``emit``
callback it is given (the call's own event stream):

- **identity**: the account name and key the server announced for the peer,
  whether the peer's SDP signature checked out under that key
  (:mod:`hello_tui.call.identity_proof`), and, once DTLS is up, the judgement
  of that key against the pins (:mod:`hello_tui.contacts.pins`), following the
  approval chain the server sent with it when the key is another device of a
  pinned account (``linked``, checked here, never taken on the server's word): one
  :class:`~hello_tui.call.events.Identity` event, again when the user marks
  the key verified or accepts a changed one;
- **check code**: this offer/answer's commitment exchange
  (:class:`~hello_tui.call.sas.SasExchange`): our SDPs stamped on the way out,
  the peer's answer and reveal read on the way in, one
  :class:`~hello_tui.call.events.CheckCode` event once it is settled.

Rooms are anonymous: no signature is made or checked, no pins apply; the
check code works the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from hello_tui.call import events as ev
from hello_tui.call.identity_proof import Identity, proven, stamp
from hello_tui.call.sas import SasError, SasExchange, Status, fingerprint_from_sdp
from hello_tui.contacts.pins import KeyPins, Pin, key_fingerprint
from hello_tui.signaling.protocol import DeviceApproval, device_id

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

__all__ = ["CallTrust"]

log = logging.getLogger("hello_tui.call.engine")  # the name the log files have always shown


class CallTrust:
    """One call's identity proof and check code (see the module docstring).

    ``call_id`` gives the call's id as it is now (an outgoing call learns it
    after its offer is made); ``emit`` puts an event on the call's stream."""

    def __init__(
        self,
        *,
        pins: KeyPins | None,
        identity: Identity | None,
        anonymous: bool,
        call_id: Callable[[], str],
        emit: Callable[[ev.CallEvent], None],
    ) -> None:
        self.pins = pins
        self.own = identity  # our account, to sign our SDP with (None: we sign nothing)
        self.anonymous = anonymous  # a room
        self._call_id = call_id
        self._emit = emit
        # Who the other side is by key: the account name and key the server
        # announced, whether its SDP signature checked out, and the settled event.
        self.peer_account = ""
        self.peer_key = ""
        self.peer_chain: list[DeviceApproval] = []  # how peer_key was linked (unchecked)
        self.peer_proven = False
        self.identity: ev.Identity | None = None
        # Whether a front end may show the contact of that name (its photo):
        # not while the key is known to differ from the pinned one, or unproven.
        self.contact_shown = True
        self.sas: str | None = None  # the check code, once verified (never before)
        self._exchange: SasExchange | None = None  # this offer/answer's commitment exchange
        self._code_shown = False
        # A renewed transport: its round, and the (offer, answer) fingerprints the
        # code last shown was derived from.
        self.renewal = 0
        self._fingerprints: tuple[str, str] | None = None

    def renew(self, renewal: int) -> None:
        """A new transport within the call (round ``renewal``): the next offer and
        answer settle the check code again (:meth:`settle_check_code`)."""
        self.renewal = renewal
        self._exchange = None
        self._code_shown = False

    # ------------------------------------------------------------ our SDP, peer's SDP
    def stamp_offer(self, sdp: str) -> str:
        """Our offer with the code's commitment and our signature (a new exchange)."""
        self._exchange = SasExchange("offerer")
        return self._sign(self._exchange.stamp_offer(sdp), "offer")

    def stamp_answer(self, offer: str, answer: str) -> str:
        """Our answer to ``offer`` with our nonce and our signature (a new exchange)."""
        self._exchange = SasExchange("answerer")
        return self._sign(self._exchange.stamp_answer(offer, answer), "answer")

    def _sign(self, sdp: str, role: str) -> str:
        """Our identity signature on a direct call's SDP (rooms are anonymous)."""
        return sdp if self.own is None or self.anonymous else stamp(sdp, role, self.own)

    def take_offer(self, sdp: str) -> None:
        """The caller's offer: does it carry the announced account's signature?"""
        self.peer_proven = proven(sdp, "offer", self.peer_account, self.peer_key)

    def take_answer(self, sdp: str) -> str | None:
        """The peer's answer: returns our nonce to reveal now (never earlier), or None."""
        reveal = self._exchange.take_answer(sdp) if self._exchange is not None else None
        if not self.anonymous:
            self.peer_proven = proven(sdp, "answer", self.peer_account, self.peer_key)
        return reveal

    def take_reveal(self, nonce: str) -> bool:
        """The offerer's revealed nonce (False: no exchange to check it against)."""
        if self._exchange is None:
            return False
        self._exchange.take_reveal(nonce)
        return True

    # ------------------------------------------------------------ the check code
    @property
    def check_status(self) -> Status:
        """``waiting``, ``verified`` (``sas`` holds the code), ``mismatch`` or ``unsupported``."""
        return self._exchange.status if self._exchange is not None else "waiting"

    def settle_check_code(self, pc: RTCPeerConnection | None, *, connected: bool) -> None:
        """Emit :class:`~hello_tui.call.events.CheckCode` once the exchange is settled:
        a mismatch at once; a code (or its absence) once DTLS has checked the fingerprints
        (``connected``) of ``pc``'s descriptions."""
        exchange = self._exchange
        if exchange is None or pc is None or self._code_shown:
            return
        if exchange.status == "waiting" and not (connected and self._same_certificates(pc)):
            return
        if exchange.status != "mismatch" and not connected:
            return
        self._code_shown = True
        status: str = exchange.status
        try:
            local = fingerprint_from_sdp(pc.localDescription.sdp)
            remote = fingerprint_from_sdp(pc.remoteDescription.sdp)
        except SasError:  # cannot happen with aiortc's SDP; never block a call on it
            local = remote = ""
        offer, answer = (local, remote) if exchange.role == "offerer" else (remote, local)
        before, changed = self.sas, False
        same = self._fingerprints is not None and set(self._fingerprints) == {offer, answer}
        if status != "mismatch" and same and before:
            # A renewed transport between the same certificates (DTLS checked them):
            # the code shown before still holds, and the same on both sides.
            status = "verified"
        elif status == "verified":
            self.sas = exchange.code(offer, answer) if local else None
            status = status if self.sas else "unsupported"
            changed = self.renewal > 0 and self.sas != before
        if status == "mismatch":
            log.warning("call %s: the check code's reveal does not match", self._call_id()[:6])
        elif changed:
            log.warning("call %s: the check code changed on renewal", self._call_id()[:6])
        if local:
            self._fingerprints = (offer, answer)
        self._emit(
            ev.CheckCode(
                call_id=self._call_id(),
                status=status,
                code=self.sas or "",
                renewal=self.renewal,
                changed=changed,
            )
        )

    def _same_certificates(self, pc: RTCPeerConnection) -> bool:
        """A renewal between the certificates the shown code was derived from."""
        if self.renewal == 0 or self._fingerprints is None or not self.sas:
            return False
        try:
            pair = {fingerprint_from_sdp(pc.localDescription.sdp),
                    fingerprint_from_sdp(pc.remoteDescription.sdp)}  # fmt: skip
        except SasError:
            return False
        return pair == set(self._fingerprints)

    # ------------------------------------------------------------ identity
    def announce(
        self,
        account: str,
        key: str,
        *,
        contact_shown: bool = True,
        chain: Sequence[DeviceApproval] = (),
    ) -> None:
        """Who the server says the peer is (its account name and key, and the
        approvals that linked that key to the account's older ones)."""
        self.peer_account, self.peer_key = account, key
        self.peer_chain = list(chain)
        self.contact_shown = contact_shown

    def settle_identity(self) -> None:
        """Once DTLS is up (the peer holds the certificate its SDP signed):
        judge the key against the pins and emit :class:`~hello_tui.call.events.Identity`."""
        pins = self.pins
        if self.anonymous or pins is None or not pins.applies(self.peer_account):
            return
        name, key = self.peer_account, self.peer_key
        try:
            proven = self.peer_proven
            status: str = pins.record(name, key, self.peer_chain) if proven else "unproven"
            pin = pins.get(name)
        except Exception as exc:  # the pins are a safeguard: say so, never break the call
            log.warning("call %s: the known keys cannot be read or written", self._call_id()[:6])
            self._emit(ev.Notice(call_id=self._call_id(), text=str(exc), source="known-keys"))
            return
        self.emit_identity(status, pin, proven=self.peer_proven)

    def emit_identity(self, status: str, pin: Pin | None, *, proven: bool) -> None:
        """Emit (and keep) an :class:`~hello_tui.call.events.Identity` of ``status``."""
        key = self.peer_key
        link = next((x for x in self.peer_chain if x.public_key == key), None)
        linked = status == "linked" and link is not None
        event = ev.Identity(
            call_id=self._call_id(),
            name=self.peer_account,
            status=status,
            fingerprint=key_fingerprint(key) if key else "",
            pinned=pin.fingerprint if pin is not None and pin.key != key else "",
            proven=proven,
            linked_by=device_id(link.approver) if linked and link is not None else "",
            linked_on=link.added if linked and link is not None else 0,
        )
        if status in ("changed", "unproven"):
            log.warning("call %s: the peer's account key is %s", self._call_id()[:6], status)
            self.contact_shown = False
        self.identity = event
        self._emit(event)

    def mark_verified(self) -> ev.Identity:
        """The user compared the check code aloud: mark this account's pinned key
        verified (``RuntimeError`` saying why when it cannot be)."""
        identity, pins = self.identity, self.pins
        if identity is None or pins is None:
            raise RuntimeError("no account key to verify on this call")
        if not identity.proven or identity.status not in ("new", "known", "verified", "linked"):
            raise RuntimeError(f"this account's key is {identity.status}: it cannot be verified")
        if self.check_status != "verified":
            raise RuntimeError("compare the check code first (there is none on this call yet)")
        if identity.status != "verified":
            self.emit_identity("verified", pins.verify(self.peer_account), proven=True)
        assert self.identity is not None
        return self.identity

    def accept_new_key(self) -> ev.Identity:
        """The user accepts this account's changed key (proven on this call): it
        replaces the pinned one, unverified (``RuntimeError`` saying why not)."""
        identity, pins = self.identity, self.pins
        if identity is None or pins is None or identity.status != "changed":
            raise RuntimeError("this account's key has not changed")
        if not identity.proven:
            raise RuntimeError("answer first: the new key is not proven yet")
        self.emit_identity("known", pins.trust(self.peer_account, self.peer_key), proven=True)
        assert self.identity is not None
        return self.identity
