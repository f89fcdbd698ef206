"""``hello-tui account register|login|show|delete``: the optional account.

An account is a name on the server bound to an Ed25519 key kept in this
profile's data directory; signing in is signing a challenge (no password).
This module is imported when the parser is built, so at module level it uses
only the stdlib; the network and crypto libraries load inside the handlers.
The helpers here (server URL, key path, connecting) are shared with
``room_cmd``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hello_tui.cli.errors import CliError

if TYPE_CHECKING:
    from hello_tui.cli.context import Context
    from hello_tui.signaling.client import SignalingClient

T = TypeVar("T")

# Friendlier words for the server's error codes a user can do something about.
_HINTS = {
    "name-taken": "that account name is already taken",
    "invite-required": "this server is invite-only: pass --invite CODE",
    "invite-invalid": "the invite code is invalid or already used",
    "bad-signature": "the server did not accept this device's key for that account",
    "unknown-room": "no such room (it may have expired or been deleted)",
    "room-expired": "the room has expired",
    "auth-required": "this needs an account: run 'hello-tui account register NAME'",
    "rate-limited": "the server is rate-limiting this client; try again shortly",
}


# ---------------------------------------------------------------- shared helpers
def server_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        metavar="URL",
        help="server to use (overrides [server] url; ws://, wss://, http:// or https://)",
    )


def context(args: argparse.Namespace) -> Context:
    from hello_tui.cli.context import Context

    return Context(args)


def server_url(ctx: Context, args: argparse.Namespace) -> str:
    """The server to talk to: ``--server``, else ``[server] url``; never a guess."""
    url = getattr(args, "server", None) or ctx.settings.server.url
    if not url:
        raise CliError(
            f"no server configured: set [server] url in {ctx.paths.config_file} or pass "
            "--server URL (accounts and rooms need a server that outlives this command: "
            "start one with 'hello-tui serve')"
        )
    return str(url)


def key_path(ctx: Context) -> Path:
    """``[account] key_file`` (relative to the data directory), else ``account.key``."""
    configured = ctx.settings.account.key_file
    if not configured:
        return ctx.paths.data_dir / "account.key"
    path = Path(configured).expanduser()
    return path if path.is_absolute() else ctx.paths.data_dir / path


def run_client(
    ctx: Context, url: str, body: Callable[[SignalingClient], Awaitable[T]], *, login: bool
) -> T:
    """Connect (no auto-reconnect: a command is short-lived), optionally sign
    in as the profile's account, run ``body``, close. Server refusals become
    one-line errors with a hint."""
    import asyncio

    from hello_tui.signaling.client import SignalingClient
    from hello_tui.signaling.errors import SignalingError

    async def main() -> T:
        async with SignalingClient(
            connect_timeout=ctx.settings.server.connect_timeout, reconnect=None
        ) as client:
            await client.connect(url)
            if login:
                name, key = account_key(ctx)
                await client.login(name, key)
            return await body(client)

    try:
        return asyncio.run(main())
    except SignalingError as exc:
        hint = _HINTS.get(exc.code)
        raise CliError(f"{hint} ({exc.code})" if hint else str(exc)) from None


def account_key(ctx: Context) -> tuple[str, Any]:
    """The configured account name and its loaded key, or a clear error."""
    from hello_tui.signaling.identity import load_key

    name = ctx.settings.account.name
    if not name:
        raise CliError("no account configured: run 'hello-tui account register NAME'")
    return name, load_key(key_path(ctx))


def has_account(ctx: Context) -> bool:
    return bool(ctx.settings.account.name) and key_path(ctx).exists()


def _set_account_name(ctx: Context, name: str) -> None:
    import msgspec

    from hello_tui.config import save_config

    settings = ctx.settings
    account = msgspec.structs.replace(settings.account, name=name)
    save_config(msgspec.structs.replace(settings, account=account), ctx.paths.config_file)


# ---------------------------------------------------------------- arguments
def args_register(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the account name others will call you by")
    p.add_argument("--invite", default="", metavar="CODE", help="invite code (invite-only servers)")
    server_option(p)


def args_login(p: argparse.ArgumentParser) -> None:
    server_option(p)


def args_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def args_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    server_option(p)


# ---------------------------------------------------------------- handlers
def cmd_register(args: argparse.Namespace) -> int:
    from hello_tui.signaling.identity import fingerprint, generate_key, save_key

    ctx = context(args)
    path = key_path(ctx)
    if ctx.settings.account.name:
        raise CliError(
            f"this profile already has an account ({ctx.settings.account.name}); "
            "delete it first or use another --profile"
        )
    if path.exists():
        raise CliError(f"{path}: an account key already exists; not overwriting it")
    url = server_url(ctx, args)
    key = generate_key()
    save_key(path, key)
    try:
        run_client(ctx, url, lambda c: c.register(args.name, key, args.invite), login=False)
    except BaseException:
        # The server did not bind the name to this key: it is worthless, and
        # leaving it would make the next attempt refuse to overwrite it.
        path.unlink(missing_ok=True)
        raise
    _set_account_name(ctx, args.name)
    print(f"registered {args.name}")
    print(f"key file: {path} (keep it: it is the only way to sign in as {args.name})")
    print(f"fingerprint: {fingerprint(key)}")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    ctx = context(args)
    name, _ = account_key(ctx)
    url = server_url(ctx, args)

    async def noop(client: SignalingClient) -> str | None:
        return client.name

    signed_in = run_client(ctx, url, noop, login=True)
    print(f"signed in as {signed_in or name}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from hello_tui.signaling.identity import fingerprint, load_key, public_key_b64

    ctx = context(args)
    path = key_path(ctx)
    name = ctx.settings.account.name or None
    info: dict[str, Any] = {
        "name": name,
        "key_file": str(path),
        "key_exists": path.exists(),
        "public_key": None,
        "fingerprint": None,
        "server": ctx.settings.server.url or None,
    }
    if path.exists():
        key = load_key(path)
        info["public_key"] = public_key_b64(key)
        info["fingerprint"] = fingerprint(key)
    if args.json:
        from hello_tui.cli.output import print_json

        print_json(info)
        return 0
    if name is None and not path.exists():
        print("no account: anonymous use (create one with 'hello-tui account register NAME')")
        return 0
    rows = [
        ("name", name or "(none)"),
        ("key file", str(path) + ("" if path.exists() else " (missing)")),
        ("fingerprint", info["fingerprint"] or "-"),
        ("public key", info["public_key"] or "-"),
        ("server", info["server"] or "(not configured)"),
    ]
    for label, value in rows:
        print(f"{label:<12} {value}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    ctx = context(args)
    name, _ = account_key(ctx)
    url = server_url(ctx, args)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(f"refusing to delete account {name} without --yes")
        answer = input(f"Delete account {name} and everything the server holds for it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CliError(f"account {name} not deleted")
    run_client(ctx, url, lambda c: c.delete_account(), login=True)
    key_path(ctx).unlink(missing_ok=True)
    _set_account_name(ctx, "")
    print(f"deleted account {name}")
    return 0
