"""``hello-tui account register|login|show|delete``: the optional account.

An account is a name on the server bound to an Ed25519 key kept in this
profile's data directory; signing in is signing a challenge (no password).
This module is imported when the parser is built, so at module level it uses
only the stdlib; the network and crypto libraries load inside the handlers.
The helpers here (server URL, connecting) are shared with ``room_cmd``; the
account logic itself (key path, register, sign out, delete) is the core's
``hello_tui.signaling.account_local``, which the TUI uses as well.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hello_tui.cli.errors import CliError
from hello_tui.cli.output import json_flag
from hello_tui.util.display import printable

if TYPE_CHECKING:
    from hello_tui.cli.context import Context
    from hello_tui.signaling.client import SignalingClient

T = TypeVar("T")

# The core's hints (``signaling.account_local.HINTS``), with the CLI's own flags
# and commands where the user can act on them.
_CLI_HINTS = {
    "invite-required": "this server is invite-only: pass --invite CODE",
    "auth-required": "this needs an account: run 'hello-tui account register NAME'",
}


# ---------------------------------------------------------------- shared helpers
def server_url_arg(text: str) -> str:
    """``--server``'s type: a malformed URL is a usage error (exit 2), not an
    unreachable server."""
    from hello_tui.signaling.urls import canonical_origin

    try:
        canonical_origin(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a server URL (expected ws://, wss://, http:// or https://HOST[:PORT])"
        ) from None
    return text.strip()


def server_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--server",
        metavar="URL",
        type=server_url_arg,
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


def _account_on_server(args: argparse.Namespace) -> tuple[Context, str, str]:
    """The context, the profile's account name and its server (login and delete)."""
    ctx = context(args)
    name, _ = account_key(ctx)
    return ctx, name, server_url(ctx, args)


def key_path(ctx: Context) -> Path:
    """``[account] key_file`` (relative to the data directory), else ``account.key``."""
    from hello_tui.signaling import account_local

    return account_local.key_path(ctx.paths, ctx.settings)


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
        from hello_tui.signaling.account_local import HINTS, explain

        raise CliError(explain(exc, {**HINTS, **_CLI_HINTS})) from None


def account_key(ctx: Context) -> tuple[str, Any]:
    """The configured account name and its loaded key, or a clear error."""
    from hello_tui.signaling import account_local

    if not ctx.settings.account.name:
        raise CliError("no account configured: run 'hello-tui account register NAME'")
    return account_local.account_key(ctx.paths, ctx.settings)


def has_account(ctx: Context) -> bool:
    from hello_tui.signaling import account_local

    return account_local.has_account(ctx.paths, ctx.settings)


# ---------------------------------------------------------------- arguments
def args_register(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the account name others will call you by")
    p.add_argument("--invite", default="", metavar="CODE", help="invite code (invite-only servers)")
    server_option(p)


def args_login(p: argparse.ArgumentParser) -> None:
    server_option(p)


def args_show(p: argparse.ArgumentParser) -> None:
    json_flag(p)


def args_delete(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    server_option(p)


# ---------------------------------------------------------------- handlers
def cmd_register(args: argparse.Namespace) -> int:
    from hello_tui.signaling import account_local

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

    async def register(client: SignalingClient) -> account_local.Registered:
        # Key made and saved here, removed again if the server refuses.
        return await account_local.register(client, ctx.paths, ctx.settings, args.name,
                                            args.invite)  # fmt: skip

    done = run_client(ctx, url, register, login=False)
    name = printable(done.settings.account.name)
    print(f"registered {name}")
    print(f"key file: {done.key_file} (keep it: it is the only way to sign in as {name})")
    print(f"fingerprint: {done.fingerprint}")
    if url != ctx.settings.server.url:
        # The account lives on that server: calls, answer and rooms go there now
        # (and it is the only server the key signs in to).
        from hello_tui.config.editor import set_key

        set_key(ctx.paths.config_file, "server.url", url)
        print(f"server: {url} (saved as [server] url in {ctx.paths.config_file})")
    return 0


def cmd_login(args: argparse.Namespace) -> int:
    ctx, name, url = _account_on_server(args)

    async def noop(client: SignalingClient) -> str | None:
        return client.name

    signed_in = run_client(ctx, url, noop, login=True)
    print(f"signed in as {printable(signed_in or name)}")
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
        print(f"{label:<12} {printable(value)}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    ctx, name, url = _account_on_server(args)
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError(f"refusing to delete account {name} without --yes")
        answer = input(f"Delete account {name} and everything the server holds for it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CliError(f"account {name} not deleted")
    from hello_tui.signaling import account_local

    run_client(ctx, url, lambda c: c.delete_account(), login=True)
    account_local.forget(ctx.paths, ctx.settings)
    print(f"deleted account {name}")
    return 0


# ---------------------------------------------------------------- devices
def args_link(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the account to add this device to")
    p.add_argument("--label", default="", help="this device's name (default: the hostname)")
    server_option(p)


def args_approve(p: argparse.ArgumentParser) -> None:
    p.add_argument("code", help="the code the new device shows (XXXX-XXXX-XXXX)")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    server_option(p)


def args_devices(p: argparse.ArgumentParser) -> None:
    json_flag(p)
    server_option(p)


def args_revoke(p: argparse.ArgumentParser) -> None:
    p.add_argument("device", metavar="NAME|ID", help="a device's label, id or id prefix")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    server_option(p)


def cmd_link(args: argparse.Namespace) -> int:
    """On the new device: make a key, file a pending link, show the code, wait."""
    from hello_tui.signaling import account_local

    ctx = context(args)
    if ctx.settings.account.name:
        raise CliError(f"this profile already has an account ({ctx.settings.account.name})")
    url = server_url(ctx, args)

    async def link(client: SignalingClient) -> Any:
        pending = await account_local.request_link(client, ctx.paths, ctx.settings,
                                                   args.name, args.label)  # fmt: skip
        minutes = account_local.LINK_WAIT / 60
        print(f"To add this device to {printable(pending.name)}, run on a device signed in to it:")
        print(f"  hello-tui account approve {pending.code}")
        print(f"This device: {pending.fingerprint} (the code expires in {minutes:g} minutes)")
        sys.stdout.flush()
        settings = await account_local.wait_linked(client, ctx.paths, ctx.settings, pending)
        await account_local.publish_after_link(client, ctx.paths, settings)
        return settings

    try:
        run_client(ctx, url, link, login=False)
    except account_local.AccountError as exc:
        raise CliError(str(exc)) from None
    if url != ctx.settings.server.url:
        from hello_tui.config.editor import set_key

        set_key(ctx.paths.config_file, "server.url", url)
    print(f"linked: this device signs in as {printable(args.name)}")
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """On a signed-in device: check the code, show who asks, sign the approval."""
    from hello_tui.signaling import account_local

    ctx, name, url = _account_on_server(args)
    _, key = account_key(ctx)

    async def approve(client: SignalingClient) -> account_local.LinkOffer:
        offer = await account_local.fetch_link(client, name, args.code)
        label = printable(offer.label or "(no label)")
        if not args.yes:
            if not sys.stdin.isatty():
                raise CliError(f"refusing to add device {label} without --yes")
            print(f"Device {label}, key {offer.fingerprint}")
            answer = input(f"Let it sign in as {printable(name)}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise CliError("not approved")
        await account_local.approve_link(client, ctx.paths, key, offer)
        return offer

    try:
        offer = run_client(ctx, url, approve, login=True)
    except account_local.AccountError as exc:
        raise CliError(str(exc)) from None
    label = printable(offer.label or offer.device)
    print(f"added device {label} ({offer.device}, {offer.fingerprint}) to {printable(name)}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from hello_tui.signaling import account_local

    ctx, name, url = _account_on_server(args)
    devices = run_client(ctx, url, lambda c: account_local.list_devices(c, ctx.paths), login=True)
    if args.json:
        from dataclasses import asdict

        from hello_tui.cli.output import print_json

        print_json({"account": name, "devices": [asdict(d) for d in devices]})
        return 0
    import time

    for d in devices:
        added = time.strftime("%Y-%m-%d", time.localtime(d.added))
        mark = " (this device)" if d.current else ""
        label = printable(d.label or "(no label here)")
        print(f"{d.id}  {label:<20} added {added}  {d.fingerprint}{mark}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from hello_tui.signaling import account_local

    ctx, name, url = _account_on_server(args)
    if not args.yes and not sys.stdin.isatty():
        raise CliError(f"refusing to revoke device {printable(args.device)} without --yes")
    if not args.yes:
        answer = input(f"Revoke device {printable(args.device)} of {printable(name)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CliError("not revoked")

    async def revoke(client: SignalingClient) -> account_local.Device:
        return await account_local.revoke_device(client, ctx.paths, args.device)

    try:
        device = run_client(ctx, url, revoke, login=True)
    except account_local.AccountError as exc:
        raise CliError(str(exc)) from None
    print(f"revoked device {printable(device.label or device.id)} ({device.id})")
    if device.current:  # this device's key no longer signs in: forget it here too
        account_local.forget(ctx.paths, ctx.settings)
        print("this device is signed out (its key was removed)")
    return 0
