"""``hello-tui room create|list|rename|delete``: conversation URLs.

The room's name is encrypted here with a fresh key that only ever lives in
the URL's ``#k=`` fragment and in this profile's ``rooms.toml`` (token → key):
the server stores and lists ciphertext it cannot read. The rooms file and the
operations are ``hello_tui.signaling.rooms_local`` (shared with the TUI).
Module level stays stdlib-only (the parser imports it); the work happens
inside the handlers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hello_tui.cli.account_cmd import (
    context,
    has_account,
    run_client,
    server_option,
    server_url,
)
from hello_tui.cli.errors import CliError
from hello_tui.cli.output import json_flag

if TYPE_CHECKING:
    from hello_tui.cli.context import Context
    from hello_tui.signaling.client import SignalingClient


# ---------------------------------------------------------------- local keys
# The rooms file and the room operations are the core's
# ``hello_tui.signaling.rooms_local`` (the TUI's rooms screen uses them too).
def rooms_file(ctx: Context) -> Path:
    from hello_tui.signaling.rooms_local import rooms_file

    return rooms_file(ctx.paths.data_dir)


def _room_ref(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "room",
        metavar="TOKEN|URL",
        help="the room's token or full URL (put -- before a token starting with '-')",
    )


def _context_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--description",
        metavar="TEXT",
        help="what the room is about, one line (encrypted like the name; at most 200 characters)",
    )
    p.add_argument(
        "--link",
        metavar="URL",
        help="an http(s) link shown to those who join, as text (encrypted like the name)",
    )


def _context(args: argparse.Namespace) -> Any:
    """The room context the flags give (None: neither flag), checked before connecting."""
    from hello_tui.signaling.roomcrypt import RoomContext, check_context

    if args.description is None and args.link is None:
        return None
    context = RoomContext(args.description or "", args.link or "")
    check_context(context)
    return context


# ---------------------------------------------------------------- arguments
def args_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default="", help="room name (encrypted; may be empty)")
    p.add_argument("--ttl", type=int, metavar="SECONDS", help="expire after SECONDS (min 60)")
    _context_options(p)
    p.add_argument(
        "--knock",
        action="store_true",
        help="knock to enter: visitors wait until you let them in (join, answer, TUI)",
    )
    p.add_argument(
        "--qr",
        action="store_true",
        help="also draw the URL as a QR code (for a phone to scan); with --json: a 'qr' "
        "field, the code's lines",
    )
    json_flag(p)
    server_option(p)


def args_list(p: argparse.ArgumentParser) -> None:
    json_flag(p)
    server_option(p)


def args_rename(p: argparse.ArgumentParser) -> None:
    _room_ref(p)
    p.add_argument("name", help="the new name (encrypted with the room's key)")
    _context_options(p)  # given: replaces the room's description and link (both)
    p.add_argument(
        "--knock",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="switch knock to enter on (--knock) or off (--no-knock); unset: kept",
    )
    server_option(p)


def args_delete(p: argparse.ArgumentParser) -> None:
    _room_ref(p)
    server_option(p)


# ---------------------------------------------------------------- handlers
def cmd_create(args: argparse.Namespace) -> int:
    from hello_tui.signaling import rooms_local
    from hello_tui.signaling.roomcrypt import check_name

    ctx = context(args)
    if args.ttl is not None and not 60 <= args.ttl <= 366 * 24 * 3600:
        raise CliError("--ttl must be between 60 seconds and 366 days")
    url = server_url(ctx, args)
    check_name(args.name)
    room_context = _context(args)
    path = rooms_file(ctx)

    async def create(client: SignalingClient) -> rooms_local.Room:
        return await rooms_local.create_room(
            client, path, url, args.name, args.ttl, room_context, knock=args.knock
        )

    room = run_client(ctx, url, create, login=has_account(ctx))
    if args.json:
        from hello_tui.cli.output import iso, print_json

        print_json(
            {
                "token": room.token,
                "name": args.name,
                "url": room.url,
                "expires": room.expires,
                "expires_iso": iso(room.expires),
                "description": room.description,
                "link": room.context_url,
                "knock": room.knock,
                **({"qr": _qr(room.url)} if args.qr else {}),
            }
        )
    else:
        print(room.url)
        if args.qr:
            print("\n".join(_qr(room.url)))
    return 0


def _qr(url: str | None) -> list[str]:
    """The URL as a QR code in half blocks (light modules drawn: dark terminals)."""
    from hello_tui.util.qr import qr_lines

    return qr_lines(url) if url else []


def cmd_list(args: argparse.Namespace) -> int:
    from hello_tui.signaling import rooms_local

    ctx = context(args)
    url = server_url(ctx, args)
    path = rooms_file(ctx)

    async def listing(client: SignalingClient) -> list[rooms_local.Room]:
        return await rooms_local.list_rooms(client, path, url)

    rooms = run_client(ctx, url, listing, login=has_account(ctx))
    out: list[dict[str, Any]] = [
        {
            "token": room.token,
            "name": room.name,
            "url": room.url,
            "expires": room.expires,
            "participants": room.participants,
            "description": room.description,
            "link": room.context_url,
            "knock": room.knock,
        }
        for room in rooms
    ]
    from hello_tui.cli.output import iso, print_json, print_table
    from hello_tui.util.timestamps import local_time

    if args.json:
        print_json([{**r, "expires_iso": iso(r["expires"])} for r in out])
        return 0
    if not out:
        print("no rooms")
        return 0
    print_table(
        ["TOKEN", "EXPIRES", "PEOPLE", "NAME"],
        [
            [
                r["token"],
                local_time(r["expires"]),
                str(r["participants"]),
                "(name unknown: no key on this device)" if r["name"] is None else r["name"],
            ]
            for r in out
        ],
    )
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    from hello_tui.signaling import rooms_local
    from hello_tui.signaling.roomcrypt import check_name

    ctx = context(args)
    path = rooms_file(ctx)
    token, key = rooms_local.resolve(path, args.room)
    if key is None:
        raise CliError(
            f"no key for room {token} on this device: pass the full URL with its #k=... part"
        )
    url = server_url(ctx, args)
    check_name(args.name)
    room_context = _context(args)
    run_client(
        ctx,
        url,
        lambda c: rooms_local.rename_room(
            c, path, token, key, args.name, room_context, knock=args.knock
        ),
        login=has_account(ctx),
    )
    print(f"renamed room {token}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from hello_tui.signaling import rooms_local
    from hello_tui.signaling.roomcrypt import parse_room_url

    ctx = context(args)
    token, _ = parse_room_url(args.room)
    url = server_url(ctx, args)
    path = rooms_file(ctx)
    run_client(ctx, url, lambda c: rooms_local.delete_room(c, path, token), login=has_account(ctx))
    print(f"deleted room {token}")
    return 0
