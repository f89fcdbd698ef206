"""Rooms this device made: the keys kept locally, and the room operations
both front ends (``hello-tui room …`` and the TUI's rooms screen) run.

The server stores and lists only encrypted names; the key that decrypts a
room's name lives in its URL fragment (``#k=``) and in this profile's
``<data_dir>/rooms.toml`` (token → key and the room's base URL, mode 0600,
written atomically under a lock)::

    [rooms.Zb3kQ9xW2mLpT7vR]
    key = "q1w2e3r4t5y6u7i8o9p0aA"
    url = "https://hello.example.org/r/Zb3kQ9xW2mLpT7vR"

Module level is stdlib-only (the CLI's parser imports its users for
``--help``); crypto, TOML writing and the client load inside the functions.
The async operations take a connected :class:`SignalingClient` (signed in
when the rooms should belong to an account) and raise its typed errors.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hello_tui.signaling.errors import SignalingClientError

if TYPE_CHECKING:
    from hello_tui.signaling.client import SignalingClient
    from hello_tui.signaling.protocol import RoomWaiting
    from hello_tui.signaling.roomcrypt import RoomContext

ROOMS_FILE = "rooms.toml"


class RoomsFileError(SignalingClientError):
    """The local rooms file cannot be read."""


@dataclass(frozen=True, slots=True)
class Room:
    """A room as listed: ``name`` and ``url`` are None without a local key."""

    token: str
    name: str | None
    url: str | None  # the full URL, with #k=
    expires: int
    participants: int = 0
    description: str = ""  # the room's context, decrypted ("" without one or a key)
    context_url: str = ""  # shown as text, never opened
    knock: bool = False  # visitors wait until the owner lets them in


@dataclass(frozen=True, slots=True)
class WaitingRoom:
    """Someone is in a room this account owns (``room-waiting``): the room's name
    and full URL when this device has its key (else None), and the visitor's
    display name as they gave it ("" when none): show it escaped."""

    token: str
    name: str | None
    url: str | None
    visitor: str


# ---------------------------------------------------------------- the local file
def rooms_file(data_dir: Path) -> Path:
    return Path(data_dir) / ROOMS_FILE


def load_rooms(path: Path) -> dict[str, dict[str, Any]]:
    """token → {key, url}; a missing file is no rooms."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RoomsFileError(f"{path}: unreadable rooms file: {exc}") from None
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


def key_of(entry: dict[str, Any] | None) -> bytes | None:
    """The room key of a rooms-file entry (None when missing or malformed)."""
    from hello_tui.signaling.roomcrypt import RoomCryptError, decode_key

    if not entry or not isinstance(entry.get("key"), str):
        return None
    try:
        return decode_key(entry["key"])
    except RoomCryptError:
        return None


def absolute_url(url: str, server: str) -> str:
    """The server's room URL, made absolute against the server's HTTP base."""
    from urllib.parse import urljoin, urlsplit, urlunsplit

    from hello_tui.signaling.client import ws_url

    if urlsplit(url).scheme:
        return url
    parts = urlsplit(ws_url(server))
    scheme = "https" if parts.scheme == "wss" else "http"
    base = urlunsplit((scheme, parts.netloc, parts.path.removesuffix("ws"), "", ""))
    return urljoin(base, url)


def resolve(path: Path, ref: str) -> tuple[str, bytes | None]:
    """Token and key from TOKEN or URL; the key from the URL, else remembered."""
    from hello_tui.signaling.roomcrypt import parse_room_url

    token, key = parse_room_url(ref)
    if key is None:
        key = key_of(load_rooms(path).get(token))
    return token, key


def describe(infos: list[Any], local: dict[str, dict[str, Any]]) -> list[Room]:
    """The server's ``RoomInfo`` list with names decrypted by the local keys."""
    from hello_tui.signaling.roomcrypt import (
        RoomContext,
        RoomCryptError,
        decrypt_context,
        decrypt_name,
        room_url,
    )

    out: list[Room] = []
    for info in infos:
        entry = local.get(info.token)
        key = key_of(entry)
        name: str | None = None
        full: str | None = None
        context = RoomContext()
        if key is not None:
            try:
                name = decrypt_name(key, info.name)
                context = decrypt_context(key, getattr(info, "context", ""))
            except RoomCryptError:
                pass
            if entry and isinstance(entry.get("url"), str):
                full = room_url(entry["url"], key)
        out.append(
            Room(
                info.token,
                name,
                full,
                info.expires,
                info.participants,
                context.description,
                context.url,
                bool(getattr(info, "knock", False)),
            )
        )
    return out


def waiting_room(path: Path, msg: RoomWaiting) -> WaitingRoom:
    """A ``room-waiting`` message as this device can show it (name decrypted with
    the remembered key; an unreadable rooms file or name leaves it None)."""
    from hello_tui.signaling.roomcrypt import RoomCryptError, decrypt_name, room_url

    try:
        entry = load_rooms(path).get(msg.token)
    except RoomsFileError:
        entry = None
    key = key_of(entry)
    name: str | None = None
    full: str | None = None
    if key is not None and entry is not None:
        with contextlib.suppress(RoomCryptError):
            name = decrypt_name(key, msg.name)
        if isinstance(entry.get("url"), str):
            full = room_url(entry["url"], key)
    return WaitingRoom(msg.token, name, full, msg.display_name)


# ---------------------------------------------------------------- operations
async def create_room(
    client: SignalingClient,
    path: Path,
    server: str,
    name: str,
    ttl: int | None = None,
    context: RoomContext | None = None,
    knock: bool = False,
) -> Room:
    """Encrypt ``name`` (and the optional context) with a fresh key, create the
    room (``knock``: visitors wait to be let in), remember the key."""
    from hello_tui.signaling.roomcrypt import (
        RoomContext,
        encode_key,
        encrypt_context,
        encrypt_name,
        new_room_key,
        room_url,
    )

    context = context or RoomContext()
    key = new_room_key()
    sealed = encrypt_context(key, context)
    created = await client.room_create(encrypt_name(key, name), ttl, sealed, knock=knock)
    base = absolute_url(created.url, server)
    update_rooms(path, created.room.token, {"key": encode_key(key), "url": base})
    with contextlib.suppress(SignalingClientError):  # the next listing seals what is missing
        await sync_room_keys(client, path, [created.room])
    return Room(
        created.room.token,
        name,
        room_url(base, key),
        created.room.expires,
        created.room.participants,
        context.description,
        context.url,
        created.room.knock,
    )


async def list_rooms(client: SignalingClient, path: Path, server: str = "") -> list[Room]:
    """The rooms the server lists for this session/account, names decrypted: keys
    sealed to this device are opened and remembered, and the keys this device
    holds are sealed to the account's other devices (``sync_room_keys``)."""
    infos = await client.room_list()
    with contextlib.suppress(SignalingClientError):
        await sync_room_keys(client, path, infos, server)
    return describe(infos, load_rooms(path))


# ---------------------------------------------------------------- keys on every device
async def publish_box_key(client: SignalingClient) -> list[tuple[str, str]]:
    """Make sure the server has this device's X25519 key; return (device id, box
    key) of every device of the account whose key its own device key signed
    (this one included). Nothing when anonymous or on a version-1 server."""
    from hello_tui.signaling.protocol import DeviceList, Devices
    from hello_tui.signaling.roomkeys import sign_box_key, verify_box_key

    identity = client.login_identity
    if identity is None or client.version < 2:
        return []
    name, key = identity
    reply = await client.request(DeviceList())
    if not isinstance(reply, Devices):
        return []
    box_key, signature = sign_box_key(key, name)
    out: list[tuple[str, str]] = []
    for device in reply.devices:
        if device.current:
            if device.box_key != box_key:
                await client.device_box_key(box_key, signature)
            out.append((device.id, box_key))
        elif device.box_key and verify_box_key(
            name, device.public_key, device.box_key, device.box_signature
        ):
            out.append((device.id, device.box_key))
    return out


async def sync_room_keys(
    client: SignalingClient, path: Path, infos: list[Any], server: str = ""
) -> None:
    """Open the room keys sealed to this device that ``rooms.toml`` lacks, and seal
    the keys it holds to the account's devices it has not sealed them to yet
    (remembered per room as ``boxed``)."""
    from hello_tui.signaling.protocol import RoomKeyBox
    from hello_tui.signaling.roomcrypt import encode_key
    from hello_tui.signaling.roomkeys import open_box, seal

    devices = await publish_box_key(client)
    identity = client.login_identity
    if not devices or identity is None:
        return
    local = load_rooms(path)
    for info in infos:
        entry = local.get(info.token)
        key = key_of(entry)
        if key is None and info.key_box:
            key = open_box(identity[1], info.key_box, info.token)
            if key is None:
                continue
            entry = {"key": encode_key(key)}
            if server:
                entry["url"] = absolute_url(f"r/{info.token}", server)
            update_rooms(path, info.token, entry)
        if key is None or entry is None:
            continue
        boxed = entry.get("boxed", [])
        boxed = boxed if isinstance(boxed, list) else []
        todo = [(d, box_key) for d, box_key in devices if d not in boxed]
        if not todo:
            continue
        boxes = [RoomKeyBox(device=d, box=seal(box_key, key, info.token)) for d, box_key in todo]
        await client.room_key_add(info.token, boxes)
        update_rooms(path, info.token, {**entry, "boxed": [*boxed, *(d for d, _ in todo)]})


async def rename_room(
    client: SignalingClient,
    path: Path,
    token: str,
    key: bytes,
    name: str,
    context: RoomContext | None = None,
    knock: bool | None = None,
) -> None:
    """Re-encrypt the name (and, when given, replace the context or switch
    knocking) with the room's key; remember the key if it was new."""
    from hello_tui.signaling.roomcrypt import encode_key, encrypt_context, encrypt_name

    sealed = None if context is None else encrypt_context(key, context)
    await client.room_rename(token, encrypt_name(key, name), sealed, knock=knock)
    entry = load_rooms(path).get(token)
    if entry is None or key_of(entry) != key:
        update_rooms(path, token, {**(entry or {}), "key": encode_key(key)})


async def delete_room(client: SignalingClient, path: Path, token: str) -> None:
    """Delete on the server, then forget the key."""
    await client.room_delete(token)
    update_rooms(path, token, None)
