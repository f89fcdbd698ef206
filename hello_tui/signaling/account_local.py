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
