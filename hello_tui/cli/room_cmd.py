"""``hello-tui room create|list|rename|delete``: conversation URLs.

The room's name is encrypted here with a fresh key that only ever lives in
the URL's ``#k=`` fragment and in this profile's ``rooms.toml`` (token → key):
the server stores and lists ciphertext it cannot read. Module level stays
stdlib-only (the parser imports it); the work happens inside the handlers.
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

if TYPE_CHECKING:
    from hello_tui.cli.context import Context
    from hello_tui.signaling.client import SignalingClient


# ---------------------------------------------------------------- local keys
def rooms_file(ctx: Context) -> Path:
    return ctx.paths.data_dir / "rooms.toml"


def load_rooms(path: Path) -> dict[str, dict[str, Any]]:
    """token → {key, url}; a missing file is no rooms."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CliError(f"{path}: unreadable rooms file: {exc}") from None
    rooms = data.get("rooms", {})
    return {t: r for t, r in rooms.items() if isinstance(r, dict)}


def update_rooms(path: Path, token: str, entry: dict[str, Any] | None) -> None:
    """Set (or with ``None`` remove) one room, under a lock, written atomically."""
    import tomli_w

    from hello_tui.util.atomic import atomic_write_text
    from hello_tui.util.locking import file_lock

    with file_lock(path.with_name(path.name + ".lock")):
        rooms = load_rooms(path)
        if entry is None:
            if rooms.pop(token, None) is None:
                return
        else:
            rooms[token] = entry
        atomic_write_text(path, tomli_w.dumps({"rooms": rooms}))


def _key_of(entry: dict[str, Any] | None) -> bytes | None:
    from hello_tui.signaling.roomcrypt import RoomCryptError, decode_key

    if not entry or not isinstance(entry.get("key"), str):
        return None
    try:
        return decode_key(entry["key"])
    except RoomCryptError:
        return None


def _absolute(url: str, server: str) -> str:
    """The server's room URL, made absolute against the server's HTTP base."""
    from urllib.parse import urljoin, urlsplit, urlunsplit

    from hello_tui.signaling.client import ws_url

    if urlsplit(url).scheme:
        return url
    parts = urlsplit(ws_url(server))
    scheme = "https" if parts.scheme == "wss" else "http"
    base = urlunsplit((scheme, parts.netloc, parts.path.removesuffix("ws"), "", ""))
    return urljoin(base, url)


def _resolve(ctx: Context, ref: str) -> tuple[str, bytes | None]:
    """Token and key from TOKEN or URL; the key from the URL, else remembered."""
    from hello_tui.signaling.roomcrypt import parse_room_url

    token, key = parse_room_url(ref)
    if key is None:
        key = _key_of(load_rooms(rooms_file(ctx)).get(token))
    return token, key


def _room_ref(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "room",
        metavar="TOKEN|URL",
        help="the room's token or full URL (put -- before a token starting with '-')",
    )


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


# ---------------------------------------------------------------- arguments
def args_create(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", default="", help="room name (encrypted; may be empty)")
    p.add_argument("--ttl", type=int, metavar="SECONDS", help="expire after SECONDS (min 60)")
    _json_flag(p)
    server_option(p)


def args_list(p: argparse.ArgumentParser) -> None:
    _json_flag(p)
    server_option(p)


def args_rename(p: argparse.ArgumentParser) -> None:
    _room_ref(p)
    p.add_argument("name", help="the new name (encrypted with the room's key)")
    server_option(p)


def args_delete(p: argparse.ArgumentParser) -> None:
    _room_ref(p)
    server_option(p)


# ---------------------------------------------------------------- handlers
def cmd_create(args: argparse.Namespace) -> int:
    from hello_tui.signaling.roomcrypt import encode_key, encrypt_name, new_room_key, room_url

    ctx = context(args)
    if args.ttl is not None and not 60 <= args.ttl <= 366 * 24 * 3600:
        raise CliError("--ttl must be between 60 seconds and 366 days")
    url = server_url(ctx, args)
    key = new_room_key()
    ciphertext = encrypt_name(key, args.name)

    async def create(client: SignalingClient) -> Any:
        return await client.room_create(ciphertext, args.ttl)

    created = run_client(ctx, url, create, login=has_account(ctx))
    base = _absolute(created.url, url)
    full = room_url(base, key)
    update_rooms(rooms_file(ctx), created.room.token, {"key": encode_key(key), "url": base})
    if args.json:
        from hello_tui.cli.output import iso, print_json

        print_json(
            {
                "token": created.room.token,
                "name": args.name,
                "url": full,
                "expires": created.room.expires,
                "expires_iso": iso(created.room.expires),
            }
        )
    else:
        print(full)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from hello_tui.signaling.roomcrypt import RoomCryptError, decrypt_name, room_url

    ctx = context(args)
    url = server_url(ctx, args)

    async def listing(client: SignalingClient) -> Any:
        return await client.room_list()

    rooms = run_client(ctx, url, listing, login=has_account(ctx))
    local = load_rooms(rooms_file(ctx))
    out: list[dict[str, Any]] = []
    for room in rooms:
        entry = local.get(room.token)
        key = _key_of(entry)
        name: str | None = None
        full: str | None = None
        if key is not None:
            try:
                name = decrypt_name(key, room.name)
            except RoomCryptError:
                name = None
            if entry and isinstance(entry.get("url"), str):
                full = room_url(entry["url"], key)
        out.append(
            {
                "token": room.token,
                "name": name,
                "url": full,
                "expires": room.expires,
                "participants": room.participants,
            }
        )
    from hello_tui.cli.output import iso, local_time, print_json, print_table

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
    from hello_tui.signaling.roomcrypt import encode_key, encrypt_name

    ctx = context(args)
    token, key = _resolve(ctx, args.room)
    if key is None:
        raise CliError(
            f"no key for room {token} on this device: pass the full URL with its #k=... part"
        )
    url = server_url(ctx, args)
    ciphertext = encrypt_name(key, args.name)
    run_client(ctx, url, lambda c: c.room_rename(token, ciphertext), login=has_account(ctx))
    path = rooms_file(ctx)
    entry = load_rooms(path).get(token)
    if entry is None or _key_of(entry) != key:
        update_rooms(path, token, {**(entry or {}), "key": encode_key(key)})
    print(f"renamed room {token}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from hello_tui.signaling.roomcrypt import parse_room_url

    ctx = context(args)
    token, _ = parse_room_url(args.room)
    url = server_url(ctx, args)
    run_client(ctx, url, lambda c: c.room_delete(token), login=has_account(ctx))
    update_rooms(rooms_file(ctx), token, None)
    print(f"deleted room {token}")
    return 0
