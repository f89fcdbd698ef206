"""Which key each account name had: trust on first use, kept on this device only.

A contact is linked to an account by its public key, not its name: names are
first come, first served on a server, and the server itself could lie. The
first call whose identity is *proven* (the peer signed its DTLS fingerprint
with the key the server announced: :mod:`hello_tui.call.identity_proof`) pins
that key to the account name. Later calls compare:

- ``new``: no pin yet; this call's key is pinned now;
- ``known``: the pinned key;
- ``verified``: the pinned key, and the user compared a check code with its
  owner once (``hello-tui contacts verify NAME``, or ``k`` on the call screen);
- ``linked``: another key of the same account, approved (directly or through a
  chain) by a pinned key: the approvals the server sent with the call are
  checked here (:func:`hello_tui.signaling.identity.approval_path`) and every
  key on the way is pinned too (``devices``); known from then on;
- ``changed``: another key. Never replaced silently: the new key is kept as
  ``pending`` until the user accepts it (``hello-tui contacts trust NAME``),
  which also clears ``verified``;
- ``unproven``: no valid signature under the announced key: never pinned.

File: ``known_keys.toml`` in the data directory (0600, written atomically
under ``known_keys.toml.lock``)::

    [keys."mum@example.org"]          # the name, normalised (NFKC, case-folded)
    name = "Mum@example.org"          # as it was first seen
    key = "base64url raw Ed25519 public key"
    first_seen = 1767225600           # Unix seconds
    verified = false
    pending = "base64url ..."         # a changed key seen on a proven call (optional)
    devices = ["base64url ...", ...]  # further keys linked from the pinned one (optional)

Core: no Textual, no network. Names here are untrusted text: shown escaped.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import tomli_w

from hello_tui.signaling.identity import approval_path
from hello_tui.signaling.names import normalize_name
from hello_tui.signaling.protocol import DeviceApproval
from hello_tui.util.atomic import atomic_write_text
from hello_tui.util.locking import file_lock

__all__ = [
    "FILE_NAME",
    "STATUSES",
    "KeyPins",
    "Pin",
    "PinError",
    "Status",
    "key_fingerprint",
]

FILE_NAME = "known_keys.toml"
Status = Literal["new", "known", "verified", "linked", "changed", "unproven"]
STATUSES: tuple[str, ...] = ("new", "known", "verified", "linked", "changed", "unproven")
# Names whose key is expected to change (the echo service gets a fresh key at
# every server start): never pinned, nothing to warn about.
UNPINNED = frozenset({"echo"})
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_DEVICES = 64  # linked keys kept per name (the newest)
_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


class PinError(ValueError):
    """No pin for that name, nothing pending, or an unreadable file (one line)."""


def key_fingerprint(key_b64: str) -> str:
    """A short name for a key, as ``hello-tui account`` shows one's own
    (``identity.fingerprint``): ``SHA256:`` + base64 of the hash of the raw key."""
    raw = base64.urlsafe_b64decode(key_b64 + "=" * (-len(key_b64) % 4))
    digest = hashlib.sha256(raw).digest()
    return "SHA256:" + base64.b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class Pin:
    name: str  # as first seen (shown escaped)
    key: str
    first_seen: float
    verified: bool = False
    pending: str = ""  # a changed key seen on a proven call, not accepted yet
    devices: tuple[str, ...] = ()  # further keys of the account, linked from ``key``

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)

    @property
    def keys(self) -> tuple[str, ...]:
        """Every key this name is known by: the pinned one and those linked to it."""
        return (self.key, *self.devices)


class KeyPins:
    """The pins of one profile (``data_dir/known_keys.toml``)."""

    def __init__(self, path: str | Path, *, clock: Any = time.time) -> None:
        self.path = Path(path)
        self._clock = clock

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> KeyPins:
        return cls(Path(data_dir) / FILE_NAME)

    @staticmethod
    def applies(name: str) -> bool:
        """Whether calls with ``name`` are checked against pins at all."""
        return bool(name) and normalize_name(name) not in UNPINNED

    # ------------------------------------------------------------ reading
    def _load(self) -> dict[str, Pin]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise PinError(f"{self.path}: cannot read: {exc.strerror}") from None
        if len(data) > MAX_FILE_BYTES:
            raise PinError(f"{self.path}: too large to be a key file")
        try:
            doc = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise PinError(f"{self.path}: not valid TOML ({exc}); not touching it") from None
        pins: dict[str, Pin] = {}
        table = doc.get("keys", {})
        for entry in table.values() if isinstance(table, dict) else ():
            pin = _pin_of(entry)
            if pin is not None:  # keyed by the name it was pinned for, as judged now
                pins[normalize_name(pin.name)] = pin
        return pins

    def _save(self, pins: dict[str, Pin]) -> None:
        doc: dict[str, Any] = {"version": 1, "keys": {}}
        for norm, pin in sorted(pins.items()):
            entry: dict[str, Any] = {
                "name": pin.name,
                "key": pin.key,
                "first_seen": int(pin.first_seen),
                "verified": pin.verified,
            }
            if pin.pending:
                entry["pending"] = pin.pending
            if pin.devices:
                entry["devices"] = list(pin.devices)
            doc["keys"][norm] = entry
        atomic_write_text(self.path, tomli_w.dumps(doc), mode=0o600)

    def _update(self, change: Any) -> Any:
        """Read, change, write under the lock; returns what ``change`` returned."""
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            pins = self._load()
            before = dict(pins)
            result = change(pins)
            if pins != before:  # a known key (most calls): no write, no fsync on the loop
                self._save(pins)
            return result

    def get(self, name: str) -> Pin | None:
        return self._load().get(normalize_name(name))

    def all(self) -> list[Pin]:
        return sorted(self._load().values(), key=lambda p: normalize_name(p.name))

    # ------------------------------------------------------------ judging
    def judge(self, name: str, key: str, chain: Sequence[DeviceApproval] = ()) -> Status:
        """What the pin says of ``key`` for ``name`` (and the approval ``chain``
        the server sent with it), without writing (ring time: the key is only
        the server's word yet)."""
        pin = self.get(name)
        if not key or not _KEY_RE.match(key):
            return "unproven"
        if pin is None:
            return "new"
        return _status(pin, key, _path(pin, name, key, chain))

    def record(self, name: str, key: str, chain: Sequence[DeviceApproval] = ()) -> Status:
        """A call proved ``name`` holds ``key``: pin it if new; a key linked to
        a pinned one by ``chain`` is pinned with every key on the way
        (``linked``); a changed key is kept as ``pending`` (never replacing the
        pin). Returns the status."""
        if not _KEY_RE.match(key or ""):
            return "unproven"
        norm = normalize_name(name)

        def change(pins: dict[str, Pin]) -> Status:
            pin = pins.get(norm)
            if pin is None:
                pins[norm] = Pin(name=name, key=key, first_seen=self._clock())
                return "new"
            path = _path(pin, name, key, chain)
            status = _status(pin, key, path)
            if status == "changed":
                pins[norm] = replace(pin, pending=key)
            elif path:  # linked: every key on the way, newest last
                new = [x.public_key for x in path if x.public_key not in pin.keys]
                devices = (*pin.devices, *dict.fromkeys(new))[-MAX_DEVICES:]
                pins[norm] = replace(pin, devices=devices, pending="")
            elif pin.pending:
                pins[norm] = replace(pin, pending="")
            return status

        result: Status = self._update(change)
        return result

    # ------------------------------------------------------------ the user decides
    def verify(self, name: str) -> Pin:
        """Mark the pinned key of ``name`` verified (a check code was compared)."""
        norm = normalize_name(name)

        def change(pins: dict[str, Pin]) -> Pin:
            pin = pins.get(norm)
            if pin is None:
                raise PinError(f"no key is known for {name!r} yet: call them first")
            pins[norm] = replace(pin, verified=True)
            return pins[norm]

        result: Pin = self._update(change)
        return result

    def trust(self, name: str, key: str | None = None) -> Pin:
        """Accept the changed key of ``name`` (the pending one, or ``key``): it
        replaces the pin, and ``verified`` is cleared."""
        norm = normalize_name(name)

        def change(pins: dict[str, Pin]) -> Pin:
            pin = pins.get(norm)
            new = key or (pin.pending if pin is not None else "")
            if not new or not _KEY_RE.match(new):
                raise PinError(f"no changed key to accept for {name!r}")
            if pin is not None and pin.key == new and not pin.pending:
                return pin
            shown = pin.name if pin is not None else name
            pins[norm] = Pin(name=shown, key=new, first_seen=self._clock())
            return pins[norm]

        result: Pin = self._update(change)
        return result

    def forget(self, name: str) -> bool:
        """Drop the pin of ``name`` (the next proven call pins afresh)."""
        norm = normalize_name(name)
        return bool(self._update(lambda pins: pins.pop(norm, None) is not None))


def _pin_of(entry: Any) -> Pin | None:
    """One entry of the file, or None when it is malformed (skipped, not fatal)."""
    if not isinstance(entry, dict):
        return None
    name, key = entry.get("name"), entry.get("key")
    if not isinstance(name, str) or not isinstance(key, str) or not _KEY_RE.match(key):
        return None
    first_seen = entry.get("first_seen", 0)
    pending = entry.get("pending", "")
    devices = entry.get("devices", [])
    return Pin(
        name=name[:254],
        key=key,
        first_seen=float(first_seen) if isinstance(first_seen, int | float) else 0.0,
        verified=entry.get("verified") is True,
        pending=pending if isinstance(pending, str) and _KEY_RE.match(pending) else "",
        devices=tuple(
            d
            for d in (devices if isinstance(devices, list) else [])[-MAX_DEVICES:]
            if isinstance(d, str) and _KEY_RE.match(d) and d != key
        ),
    )


def _path(
    pin: Pin, name: str, key: str, chain: Sequence[DeviceApproval]
) -> list[DeviceApproval] | None:
    """The verified approvals from ``key`` to the pin's keys, under the name as
    called now or as first seen (the approving device signed the name it signed
    in with; the server keeps no plain name to tell which)."""
    return approval_path((name, pin.name), key, chain, pin.keys)


def _status(pin: Pin, key: str, path: list[DeviceApproval] | None) -> Status:
    if path is None:
        return "changed"
    if path:
        return "linked"
    return "verified" if pin.verified else "known"
