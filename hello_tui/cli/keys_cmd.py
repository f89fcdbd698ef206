"""``hello-tui contacts keys|verify|trust``: the account keys seen on calls.

Trust on first use (:mod:`hello_tui.contacts.pins`): the first proven call
with an account pins its key; a later call with another key is "changed" and
warned about, never accepted silently. ``verify`` marks a pinned key verified
once the check code was compared aloud; ``trust`` accepts a changed key.
NAME is an account name, or a contact whose e-mail is one.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hello_tui.cli.context import Context
from hello_tui.cli.errors import CliError
from hello_tui.cli.output import iso, print_json, print_table
from hello_tui.contacts.pins import KeyPins, Pin, PinError, key_fingerprint
from hello_tui.util.display import printable


def _pins(args: argparse.Namespace) -> KeyPins:
    ctx = Context(args)
    ctx.paths.private_data_dir()
    return KeyPins.in_dir(ctx.paths.data_dir)


def _account(args: argparse.Namespace, pins: KeyPins) -> str:
    """The account NAME means: itself when pinned, else the pinned e-mail of the contact."""
    name: str = args.name.strip()
    if not name:
        raise CliError("NAME: an account name or a contact")
    if _get(pins, name) is not None:
        return name
    try:
        from hello_tui.cli.contacts_cmd import resolve

        with Context(args).contacts() as store:
            contact = resolve(store, name)
    except CliError:
        return name
    pinned = [e for e in contact.emails if _get(pins, e) is not None]
    if len(pinned) > 1:
        raise CliError(f"{printable(contact.name)} has keys for several accounts: name one")
    return pinned[0] if pinned else name


@contextmanager
def _pin_errors() -> Iterator[None]:
    """A :class:`PinError` (the pins file unreadable or unwritable) is a one-line CLI error."""
    try:
        yield
    except PinError as exc:
        raise CliError(str(exc)) from None


def _get(pins: KeyPins, name: str) -> Pin | None:
    with _pin_errors():
        return pins.get(name)


def _show(args: argparse.Namespace, pin: Pin, line: str) -> None:
    """What verify and trust print: the pin as JSON with ``--json``, else ``line``."""
    if args.json:
        print_json(pin_to_json(pin))
    else:
        print(line)


def pin_to_json(pin: Pin) -> dict[str, Any]:
    data = {"name": pin.name, "key": pin.key, "fingerprint": pin.fingerprint,
            "first_seen": int(pin.first_seen), "verified": pin.verified}  # fmt: skip
    if pin.pending:
        data["pending"] = pin.pending
        data["pending_fingerprint"] = key_fingerprint(pin.pending)
    if pin.devices:  # further devices of the account, linked from the pinned key
        data["devices"] = [{"key": k, "fingerprint": key_fingerprint(k)} for k in pin.devices]
    return data


def cmd_keys(args: argparse.Namespace) -> int:
    pins = _pins(args)
    with _pin_errors():
        every = pins.all()
    if args.json:
        print_json([pin_to_json(p) for p in every])
        return 0
    if not every:
        print("No account keys yet: the first call with an account remembers its key.")
        return 0
    rows = []
    for pin in every:
        state = "verified" if pin.verified else "known"
        if pin.devices:
            state += f" +{len(pin.devices)} linked device{'s' if len(pin.devices) > 1 else ''}"
        if pin.pending:
            state = f"CHANGED to {key_fingerprint(pin.pending)}"
        rows.append([printable(pin.name), pin.fingerprint, iso(pin.first_seen)[:10], state])
    print_table(["ACCOUNT", "KEY", "SINCE", ""], rows)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    pins = _pins(args)
    name = _account(args, pins)
    pin = _get(pins, name)
    if pin is None:
        raise CliError(f"no key is known for {printable(name)} yet: call them first")
    if pin.pending:
        raise CliError(
            f"{printable(name)}'s key changed since it was pinned: accept the new one first "
            f"('hello-tui contacts trust {printable(name)}'), then compare a check code again"
        )
    with _pin_errors():
        pin = pins.verify(name)
    _show(args, pin, f"{printable(pin.name)}: key {pin.fingerprint} marked verified")
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    pins = _pins(args)
    name = _account(args, pins)
    pin = _get(pins, name)
    if pin is None or not pin.pending:
        raise CliError(f"no changed key to accept for {printable(name)}")
    with _pin_errors():
        new = pins.trust(name)
    _show(
        args,
        new,
        f"{printable(new.name)}: now key {new.fingerprint} (was {pin.fingerprint}); "
        "not verified: compare a check code on the next call",
    )
    return 0
