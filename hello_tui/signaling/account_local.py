"""The optional account, on this device: where its key is, registering,
signing out and deleting, for both front ends (``hello-tui account …`` and
the TUI's settings screen).

An account is a name on the server bound to an Ed25519 key kept in the
profile's data directory (``[account] key_file``, else ``account.key``);
the config's ``[account] name`` says which name to sign in as. Signing out
clears the name and keeps the key (signing in again needs only the name);
deleting removes the account on the server, then the key and the name.

Module level is stdlib-only (the CLI's parser imports its users for
``--help``); the config, crypto and client load inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hello_tui.signaling.errors import SignalingClientError, SignalingError
from hello_tui.util.private import private_dir

if TYPE_CHECKING:
    from hello_tui.config.paths import Paths
    from hello_tui.config.settings import Settings
    from hello_tui.signaling.client import SignalingClient

# Friendlier words for the server's error codes a user can do something about
# (front-end neutral; the CLI adds its own flags to some).
HINTS = {
    "name-taken": "that account name is taken, or too close to one that is",
    "invite-required": "this server is invite-only: an invite code is needed",
    "invite-invalid": "the invite code is invalid or already used",
    "bad-signature": "the server did not accept this device's key for that account",
    "unknown-room": "no such room (it may have expired or been deleted)",
    "room-expired": "the room has expired",
    "auth-required": "this needs an account: register one first",
    "rate-limited": "the server is rate-limiting this client; try again shortly",
    "quota-exceeded": "the server's limit for this network or account is reached; try later",
    "wrong-server": "the server refused a login signed for another address: its operator "
    "must set --public-url to the URL you use",
}


class AccountError(SignalingClientError):
    """No account, or one that cannot be registered here (the message says why)."""


@dataclass(frozen=True, slots=True)
class Registered:
    settings: Settings  # the new settings, [account] name set (already saved)
    key_file: Path
    fingerprint: str


def explain(exc: BaseException, hints: dict[str, str] | None = None) -> str:
    """One line for a failure: the hint for a server refusal, else its message."""
    if isinstance(exc, SignalingError):
        hint = (hints or HINTS).get(exc.code)
        return f"{hint} ({exc.code})" if hint else str(exc)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def key_path(paths: Paths, settings: Settings) -> Path:
    """``[account] key_file`` (relative to the data directory), else ``account.key``."""
    configured = settings.account.key_file
    if not configured:
        return paths.data_dir / "account.key"
    path = Path(configured).expanduser()
    return path if path.is_absolute() else paths.data_dir / path


def is_own_server(settings: Settings, url: str) -> bool:
    """True when ``url`` is the server this profile is configured for
    (``[server] url``, same canonical origin). The account key signs in only
    there: a room link that names another server is joined anonymously, so a
    link can never choose where the key is used (docs/security.md)."""
    from hello_tui.signaling.urls import canonical_origin

    configured = settings.server.url
    if not configured:
        return False
    try:
        return canonical_origin(configured) == canonical_origin(url)
    except ValueError:
        return False


def has_account(paths: Paths, settings: Settings) -> bool:
    """A name is configured and its key file is there: calls can sign in."""
    return bool(settings.account.name) and key_path(paths, settings).exists()


def account_key(paths: Paths, settings: Settings) -> tuple[str, Any]:
    """The configured name and its loaded key (``AccountError`` / ``IdentityError``)."""
    from hello_tui.signaling.identity import load_key

    name = settings.account.name
    if not name:
        raise AccountError("no account configured")
    return name, load_key(key_path(paths, settings))


def set_account_name(paths: Paths, settings: Settings, name: str) -> Settings:
    """Write ``[account] name`` (atomic ``save_config``); returns the new settings."""
    import msgspec

    from hello_tui.config import save_config

    account = msgspec.structs.replace(settings.account, name=name)
    updated = msgspec.structs.replace(settings, account=account)
    private_dir(paths.config_file.parent)
    save_config(updated, paths.config_file)
    return updated


def check_can_register(paths: Paths, settings: Settings) -> Path:
    """The key file a new account would use; refuses when the profile has one."""
    path = key_path(paths, settings)
    if settings.account.name:
        raise AccountError(
            f"this profile already has an account ({settings.account.name}); delete it first"
        )
    if path.exists():
        raise AccountError(f"{path}: an account key already exists; not overwriting it")
    return path


async def register(
    client: SignalingClient, paths: Paths, settings: Settings, name: str, invite: str = ""
) -> Registered:
    """Generate a key, save it (0600, never over an existing one), bind ``name``
    to it on the server, then write ``[account] name``. If the server refuses
    (or anything fails before it agreed), the fresh key is removed again."""
    from hello_tui.signaling.identity import fingerprint, generate_key, save_key
    from hello_tui.signaling.names import BadName, check_name

    try:  # the server enforces the same policy: say why before making a key
        name = check_name(name)
    except BadName as exc:
        raise AccountError(f"not a valid account name: {exc}") from None
    path = check_can_register(paths, settings)
    key = generate_key()
    private_dir(path.parent)
    save_key(path, key)
    try:
        await client.register(name, key, invite)
    except BaseException:
        # The server did not bind the name to this key: it is worthless, and
        # leaving it would make the next attempt refuse to overwrite it.
        path.unlink(missing_ok=True)
        raise
    updated = set_account_name(paths, settings, name)
    return Registered(updated, path, fingerprint(key))


def sign_out(paths: Paths, settings: Settings) -> Settings:
    """Clear ``[account] name``; the key stays (configure the name to sign in again)."""
    return set_account_name(paths, settings, "")


async def delete_account(client: SignalingClient, paths: Paths, settings: Settings) -> Settings:
    """On a client signed in as the account: delete it on the server, then
    remove the key file and clear ``[account] name``."""
    await client.delete_account()
    return forget(paths, settings)


def forget(paths: Paths, settings: Settings) -> Settings:
    """Remove the local key and clear the name (after the server deleted the account)."""
    key_path(paths, settings).unlink(missing_ok=True)
    return set_account_name(paths, settings, "")


# ---------------------------------------------------------------- devices
# Linking a new device from one already signed in (protocol v2; the flow and the
# threat model: docs/accounts-and-rooms.md "Your devices", docs/security.md).
# Labels ("laptop", the hostname by default) are this profile's own words for
# each device id, in ``<data_dir>/devices.toml``: the server never sees one in plain.
DEVICES_FILE = "devices.toml"
LINK_WAIT = 300.0  # the server's LINK_TTL


@dataclass(frozen=True, slots=True)
class PendingLink:
    code: str  # what the user types on the old device
    name: str
    key_file: Path
    device: str  # this device's id
    fingerprint: str


@dataclass(frozen=True, slots=True)
class LinkOffer:
    """A device asking to join, as the approving device checked it."""

    handle: str
    public_key: str
    device: str
    fingerprint: str
    label: str  # "" when it sent none
    tag: str


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    label: str  # "" when this profile has no label for it
    fingerprint: str
    added: int
    approved_by: str
    current: bool


def default_label() -> str:
    import socket

    from hello_tui.signaling.protocol import clean_display_name

    return clean_display_name(socket.gethostname()) or "device"


def labels(paths: Paths) -> dict[str, str]:
    """device id → label, as this profile knows them (a missing file: none)."""
    import tomllib

    try:
        data = tomllib.loads((paths.data_dir / DEVICES_FILE).read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    found = data.get("labels", {})
    return {k: v for k, v in found.items() if isinstance(v, str)}


def set_label(paths: Paths, device: str, label: str | None) -> None:
    """Name (or with ``None`` forget) a device, locked and written atomically (0600)."""
    import tomli_w

    from hello_tui.signaling.protocol import clean_display_name
    from hello_tui.util.atomic import atomic_write_text
    from hello_tui.util.locking import file_lock

    path = paths.data_dir / DEVICES_FILE
    private_dir(path.parent)
    with file_lock(path.with_name(path.name + ".lock")):
        known = labels(paths)
        if label is None:
            known.pop(device, None)
        else:
            known[device] = clean_display_name(label)
        atomic_write_text(path, tomli_w.dumps({"labels": known}))


async def request_link(
    client: SignalingClient, paths: Paths, settings: Settings, name: str, label: str = ""
) -> PendingLink:
    """On the new device: make and save a key (never over one), file a pending
    link for ``name`` with the server and return the code to show. If the
    server refuses, the fresh key is removed again."""
    import asyncio

    from hello_tui.signaling.identity import (
        fingerprint,
        generate_key,
        link_key,
        link_tag,
        new_link_code,
        parse_link_code,
        public_key_b64,
        save_key,
        seal_label,
    )
    from hello_tui.signaling.names import BadName, check_name
    from hello_tui.signaling.protocol import DeviceLink, clean_display_name, device_id

    try:
        name = check_name(name)
    except BadName as exc:
        raise AccountError(f"not a valid account name: {exc}") from None
    path = check_can_register(paths, settings)
    label = clean_display_name(label) or default_label()
    code = new_link_code()
    handle, secret = parse_link_code(code)
    key = generate_key()
    public = public_key_b64(key)
    box = await asyncio.to_thread(link_key, handle, secret, name)
    private_dir(path.parent)
    save_key(path, key)
    try:
        await client.request(
            DeviceLink(
                name=name,
                public_key=public,
                handle=handle,
                tag=link_tag(box, public, name),
                label=seal_label(box, label, public),
            )
        )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    set_label(paths, device_id(public), label)
    return PendingLink(code, name, path, device_id(public), fingerprint(key))


async def wait_linked(
    client: SignalingClient, paths: Paths, settings: Settings, pending: PendingLink,
    timeout: float = LINK_WAIT,
) -> Settings:  # fmt: skip
    """Wait for the approval, then write ``[account] name``. On timeout (or any
    failure) the key is removed: an unapproved key is worthless."""
    import asyncio

    from hello_tui.signaling.protocol import DeviceLinked

    try:
        async with asyncio.timeout(timeout):
            while True:
                event = await client.next_event()
                if isinstance(event, DeviceLinked) and event.device == pending.device:
                    break
    except TimeoutError:
        pending.key_file.unlink(missing_ok=True)
        raise AccountError(
            f"no device of {pending.name} approved this one within {timeout:g} s"
        ) from None
    except BaseException:
        pending.key_file.unlink(missing_ok=True)
        raise
    return set_account_name(paths, settings, pending.name)


async def publish_after_link(client: SignalingClient, paths: Paths, settings: Settings) -> None:
    """Once linked: sign in and publish this device's box key, so rooms made on
    the account's other devices are sealed to it from now on (best effort: the
    first room listing publishes it otherwise)."""
    from hello_tui.signaling.rooms_local import publish_box_key

    try:
        name, key = account_key(paths, settings)
        await client.login(name, key)
        await publish_box_key(client)
    except SignalingClientError:  # IdentityError and AccountError are ones too
        pass


async def fetch_link(client: SignalingClient, account: str, code: str) -> LinkOffer:
    """On a signed-in device: the device waiting with ``code``, checked against the
    code's secret (``AccountError`` when the code does not match what the server
    holds: a mistyped code, or a server showing another key)."""
    import asyncio

    from hello_tui.signaling.identity import (
        check_link_tag,
        fingerprint_of,
        link_key,
        open_label,
        parse_link_code,
    )
    from hello_tui.signaling.protocol import DeviceLinkGet, DeviceLinkRequest, device_id

    try:
        handle, secret = parse_link_code(code)
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    reply = await client.request(DeviceLinkGet(handle=handle))
    if not isinstance(reply, DeviceLinkRequest):
        raise AccountError(f"unexpected reply {type(reply).__name__} to device-link-get")
    box = await asyncio.to_thread(link_key, handle, secret, account)
    if not check_link_tag(box, reply.public_key, account, reply.tag):
        raise AccountError(
            "the code does not match the device waiting for it: check the code "
            "(nothing was approved)"
        )
    label = open_label(box, reply.label, reply.public_key) if reply.label else ""
    return LinkOffer(handle, reply.public_key, device_id(reply.public_key),
                     fingerprint_of(reply.public_key), label, reply.tag)  # fmt: skip


async def approve_link(client: SignalingClient, paths: Paths, key: Any, offer: LinkOffer) -> None:
    """Sign the approval of ``offer`` with this device's key (on a client signed
    in with it) and send it; remember the new device's label."""
    from hello_tui.signaling.identity import b64url_encode
    from hello_tui.signaling.protocol import DeviceApprove, device_approval_payload

    if not client.name:
        raise AccountError("sign in before approving a device")
    payload = device_approval_payload(client.name, offer.public_key, offer.handle, offer.tag)
    signature = b64url_encode(key.sign(payload))
    await client.request(
        DeviceApprove(handle=offer.handle, public_key=offer.public_key, signature=signature)
    )
    if offer.label:
        set_label(paths, offer.device, offer.label)


async def list_devices(client: SignalingClient, paths: Paths) -> list[Device]:
    """The account's devices (on a signed-in client), with this profile's labels."""
    from hello_tui.signaling.identity import fingerprint_of
    from hello_tui.signaling.protocol import DeviceList, Devices

    reply = await client.request(DeviceList())
    if not isinstance(reply, Devices):
        raise AccountError(f"unexpected reply {type(reply).__name__} to device-list")
    known = labels(paths)
    return [
        Device(
            id=d.id,
            label=known.get(d.id, ""),
            fingerprint=fingerprint_of(d.public_key),
            added=d.added,
            approved_by=d.approved_by,
            current=d.current,
        )
        for d in reply.devices
    ]


def pick_device(devices: list[Device], which: str) -> Device:
    """The device ``which`` names: its id, a unique id prefix (4+), or its label."""
    exact = [d for d in devices if which in (d.id, d.label)]
    if not exact and len(which) >= 4:
        exact = [d for d in devices if d.id.startswith(which)]
    if len(exact) == 1:
        return exact[0]
    if not exact:
        raise AccountError(f"no device {which!r} on this account (see 'account devices')")
    raise AccountError(f"{which!r} names {len(exact)} devices: give its id")


async def revoke_device(client: SignalingClient, paths: Paths, which: str) -> Device:
    """Revoke a device by id, id prefix or label; forget its label."""
    from hello_tui.signaling.protocol import DeviceRevoke

    device = pick_device(await list_devices(client, paths), which)
    await client.request(DeviceRevoke(device=device.id))
    set_label(paths, device.id, None)
    return device
