"""Optional accounts (P2): a name bound to an Ed25519 key, stored as a keyed hash.

A name must pass the shared policy (``signaling.names.check_name``: printable,
NFKC, no control/bidi/zero-width characters, bounded) or is refused ``bad-name``.
The store key is HMAC-SHA256(server secret, ``names.fold(name)``), the name's
case-insensitive UTS #39 confusable skeleton: the server can find an account by
name but a copy of the store cannot list names, and a look-alike of a taken name
(``MUM@example.org`` with a Cyrillic ``М``) has the same key, so it is taken too. The plain
name lives only in the live session (to show callers' names to callees).
Login is challenge-response: the signature covers the nonce, the session id
and the origin the client dialled (``login_payload``), so it can be neither
replayed on another connection nor relayed by another server.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hello_tui.server.errors import Refusal
from hello_tui.server.invites import digest as invite_digest
from hello_tui.server.privacy import log, short
from hello_tui.server.records import AccountRecord
from hello_tui.server.turn import turn_credentials
from hello_tui.signaling.names import BadName, check_name, fold
from hello_tui.signaling.protocol import (
    AccountDelete,
    Challenge,
    LoggedIn,
    Login,
    LoginProof,
    Logout,
    Ok,
    Register,
    login_payload,
)

if TYPE_CHECKING:
    from hello_tui.server.hub import Hub
    from hello_tui.server.session import Session
    from hello_tui.server.settings import ServerSettings


def normalize_name(name: str) -> str:
    """One account per look: NFKC, case folded, confusable skeleton (``names.fold``)."""
    return fold(name)


def policy_name(name: str) -> str:
    """``name`` as it will be shown to others, or a ``bad-name`` refusal."""
    try:
        return check_name(name)
    except BadName as exc:
        raise Refusal("bad-name", str(exc)) from None


def name_key(secret: bytes, name: str) -> str:
    """The only form in which a name reaches the store."""
    return hmac.new(secret, normalize_name(name).encode(), hashlib.sha256).hexdigest()


def with_service(settings: ServerSettings, name: str, public_key_b64: str) -> ServerSettings:
    """``settings`` with ``name`` reserved and bound to a service's key (the echo peer)."""
    reserved = settings.reserved_names
    if normalize_name(name) not in {normalize_name(n) for n in reserved}:
        reserved = (*reserved, name)
    keys = {**settings.service_keys, name_key(settings.secret, name): public_key_b64}
    return dataclasses.replace(settings, reserved_names=reserved, service_keys=keys)


def b64decode(text: str) -> bytes:
    """Base64 or base64url, padding optional (clients differ)."""
    data = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise Refusal("bad-message", "invalid base64") from None


def public_key(text: str) -> Ed25519PublicKey:
    raw = b64decode(text)
    if len(raw) != 32:
        raise Refusal("bad-message", "public_key must be a raw 32-byte Ed25519 key")
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise Refusal("bad-message", "invalid Ed25519 public key") from None


def raw_b64url(key_b64: str) -> str:
    """A stored public key in the one form the protocol announces: raw 32 bytes,
    base64url without padding (service keys may come padded or standard)."""
    return base64.urlsafe_b64encode(public_key(key_b64).public_bytes_raw()).rstrip(b"=").decode()


def device_keys(record: AccountRecord) -> list[str]:
    """Every key that may sign in as the account: the first device's, then the
    ones linked to it (``server/devices.py``)."""
    return [record.public_key, *(d.public_key for d in record.devices)]


def verify(key_b64: str, signature_b64: str, payload: bytes) -> bool:
    try:
        public_key(key_b64).verify(b64decode(signature_b64), payload)
    except (Refusal, InvalidSignature):
        return False
    return True


TAKEN = "that name is taken, or too close to an existing name"
ACCOUNT_REFRESH = 24 * 3600.0  # a login refreshes the account's expiry if older than this


class Accounts:
    """Handlers for register / login / login-proof / logout / account-delete."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def key(self, name: str) -> str:
        return name_key(self.hub.settings.secret, name)

    def reserved(self, name: str) -> bool:
        """A service name (``echo``): nobody may register it."""
        settings = self.hub.settings
        normal = normalize_name(name)
        return self.key(name) in settings.service_keys or any(
            normalize_name(n) == normal for n in settings.reserved_names
        )

    async def register(self, session: Session, msg: Register) -> None:
        policy_name(msg.name)
        key_text = base64.urlsafe_b64encode(public_key(msg.public_key).public_bytes_raw())
        hub = self.hub
        key = self.key(msg.name)
        if self.reserved(msg.name) or await hub.store.get_account(key) is not None:
            raise Refusal("name-taken", TAKEN)
        if hub.settings.registration == "invite-only":
            if not msg.invite:
                raise Refusal("invite-required", "this server needs an invite code to register")
            if not await hub.store.consume_invite(invite_digest(msg.invite)) and not (
                await asyncio.to_thread(hub.invites.consume, msg.invite)
            ):
                raise Refusal("invite-invalid", "unknown, used or expired invite code")
        now = hub.store.clock()
        record = AccountRecord(
            public_key=key_text.decode().rstrip("="),
            created=int(now),
            until=now + hub.settings.account_ttl,
        )
        if not await hub.store.create_account(key, record):  # lost a race
            raise Refusal("name-taken", TAKEN)
        log.info("account registered session=%s", short(session.id))
        session.push(Ok(ref=msg.ref))

    async def login(self, session: Session, msg: Login) -> None:
        # Same answer whether or not the account exists: the proof step fails.
        session.pending_login = (policy_name(msg.name), secrets.token_urlsafe(32))
        session.push(Challenge(nonce=session.pending_login[1], ref=msg.ref))

    async def login_proof(self, session: Session, msg: LoginProof) -> None:
        if session.pending_login is None:
            raise Refusal("no-challenge", "send login first")
        name, nonce = session.pending_login
        session.pending_login = None  # one attempt per challenge
        if msg.origin not in session.login_origins:
            # Signed for another server: a relayed login (or a server that does
            # not know its public URL). Never accepted, whatever the signature.
            log.warning("login for another origin refused session=%s", short(session.id))
            raise Refusal(
                "wrong-server",
                "this login was signed for another server; if this server is reached "
                "by that name, its operator must set --public-url",
            )
        key = self.key(name)
        store = self.hub.store
        service_key = self.hub.settings.service_keys.get(key)
        if service_key is not None:  # a service logs in with the key it was started with
            now = store.clock()
            record: AccountRecord | None = AccountRecord(
                public_key=service_key, created=int(now), until=now
            )
        else:
            record = await store.get_account(key)
        payload = login_payload(nonce, session.id, msg.origin)
        # Any of the account's devices (server/devices.py): the one whose key signed.
        signer = (
            None
            if record is None
            else next((k for k in device_keys(record) if verify(k, msg.signature, payload)), None)
        )
        if record is None or signer is None:
            raise Refusal("bad-signature", "the signature does not match this account")
        # Logging in keeps an account alive: refresh its expiry, at most once a
        # day (a store write per login is what a reconnect wave waits on).
        until = store.clock() + self.hub.settings.account_ttl
        if record.until < until - ACCOUNT_REFRESH:
            record.until = until
            await store.put_account(key, record)
        await session.set_account(name, key, raw_b64url(signer))
        log.info("logged in session=%s", short(session.id))
        settings = self.hub.settings
        ice = turn_credentials(settings.turn_secret, settings.turn_urls,
                               self.hub.store.clock(), settings.turn_ttl)  # fmt: skip
        session.push(LoggedIn(name=name, ice=ice, ref=msg.ref))

    async def logout(self, session: Session, msg: Logout) -> None:
        await session.set_account(None, None)
        session.push(Ok(ref=msg.ref))

    async def delete(self, session: Session, msg: AccountDelete) -> None:
        key = session.account_key
        if key is None:
            raise Refusal("auth-required", "log in first")
        store = self.hub.store
        await self.hub.rooms.delete_owned(f"a:{key}")
        await store.delete_account(key)
        await store.clear_presence(key)
        for other in self.hub.sessions.values():
            if other.account_key == key:  # this instance's other devices: now anonymous
                await other.set_account(None, None)
        log.info("account deleted session=%s", short(session.id))
        session.push(Ok(ref=msg.ref))
