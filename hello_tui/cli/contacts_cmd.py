"""``hello-tui contacts ...``: the address book from the command line."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hello_tui.cli.context import Context
from hello_tui.cli.errors import CliError
from hello_tui.cli.output import iso, print_json, print_table
from hello_tui.contacts.model import Contact, ContactNotFound, image_mime
from hello_tui.contacts.search import fold
from hello_tui.contacts.store import ContactStore
from hello_tui.util.display import printable

SHORT_ID = 8


PROGRESS_MIN_BYTES = 256 * 1024  # about a thousand cards: below that, no bar


def contact_to_json(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "emails": c.emails,
        "phones": c.phones,
        "notes": c.notes,
        "favourite": c.favourite,
        "blocked": c.blocked,
        "has_photo": c.photo is not None or c.photo_path is not None,
        "created": iso(c.created),
        "updated": iso(c.updated),
    }


class NoContact(CliError):
    """``ref`` names no contact (``call`` then takes it as an account name)."""


def resolve(store: ContactStore, ref: str) -> Contact:
    """Find the one contact ``ref`` names: an id or unique id prefix, an
    e-mail address, or a name/text matching exactly one contact."""
    return find(store, ref)[0]


def find(store: ContactStore, ref: str) -> tuple[Contact, bool]:
    """:func:`resolve`, and whether the match was fuzzy: only part of a name
    ("Zoë" for "Zoë Durand"), not an id, an e-mail or the whole name. The one
    rule for naming a contact, in ``contacts`` commands and ``call`` alike."""
    ref = ref.strip()
    try:
        return store.get(ref), False
    except ContactNotFound:
        pass
    if "@" in ref:
        found = store.find_by_email(ref)
        if found:
            return found, False
    if re.fullmatch(r"[0-9a-f]{4,31}", ref):
        by_prefix = [c for c in store.all() if c.id.startswith(ref)]
        if len(by_prefix) == 1:
            return by_prefix[0], False
    matches = store.search(ref, limit=50)
    exact = [c for c in matches if fold(c.name) == fold(ref)]
    if len(exact) == 1:
        return exact[0], False
    if len(matches) == 1:
        return matches[0], True
    if not matches:
        raise NoContact(f"no contact matches {ref!r}")
    names = ", ".join(f"{c.name} ({c.id[:SHORT_ID]})" for c in (exact or matches)[:5])
    more = "…" if len(exact or matches) > 5 else ""
    raise CliError(f"{ref!r} matches several contacts: {names}{more}; use an id")


def _read_photo(path: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise CliError(f"{path}: cannot read photo: {exc.strerror}") from None
    if image_mime(data) is None:
        raise CliError(f"{path}: photo must be a PNG or JPEG image")
    return data


def _flags(c: Contact) -> str:
    return ("★" if c.favourite else "") + ("⊘ blocked" if c.blocked else "")


def cmd_list(args: argparse.Namespace) -> int:
    with Context(args).contacts() as store:
        include_blocked = not args.no_blocked
        if args.query:
            contacts = store.search(
                args.query, limit=args.limit or 1_000_000, include_blocked=include_blocked
            )
        else:
            contacts = store.all(include_blocked=include_blocked)
            if args.limit is not None:
                contacts = contacts[: args.limit]
    if args.json:
        print_json([contact_to_json(c) for c in contacts])
        return 0
    if not contacts:
        print(
            "No contacts match."
            if args.query
            else "No contacts yet. Add one with "
            "'hello-tui contacts add NAME --email ADDRESS' or import a .vcf file."
        )
        return 0
    print_table(
        ["ID", "NAME", "E-MAIL", ""],
        [[c.id[:SHORT_ID], c.name, c.primary_email or "", _flags(c)] for c in contacts],
    )
    return 0


def _print_contact(c: Contact) -> None:
    # Every field may come from an imported vCard: shown, never obeyed (printable).
    flags = f"{'  ★ favourite' if c.favourite else ''}{'  ⊘ blocked' if c.blocked else ''}"
    print(f"{printable(c.name)}{flags}")
    print(f"  id:      {printable(c.id)}")
    for e in c.emails:
        print(f"  e-mail:  {printable(e)}")
    for p in c.phones:
        print(f"  phone:   {printable(p)}")
    if c.photo is not None or c.photo_path:
        print(f"  photo:   {printable(c.photo_path or 'stored')}")
    if c.notes:
        lines = c.notes.splitlines() or [""]
        print(f"  notes:   {printable(lines[0])}")
        for line in lines[1:]:
            print(f"           {printable(line)}")


def cmd_show(args: argparse.Namespace) -> int:
    with Context(args).contacts() as store:
        c = resolve(store, args.ref)
    if args.json:
        print_json(contact_to_json(c))
    else:
        _print_contact(c)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    contact = Contact(
        name=args.name.strip(),
        emails=[e.strip() for e in args.email or []],
        phones=[p.strip() for p in args.phone or []],
        notes=args.notes or "",
        favourite=bool(args.favourite),
        photo=_read_photo(args.photo) if args.photo else None,
    )
    with Context(args).contacts() as store, store.batch():
        for address in contact.emails:
            other = store.find_by_email(address)
            if other:
                raise CliError(
                    f"{address} already belongs to {other.name} ({other.id[:SHORT_ID]}); "
                    "use 'hello-tui contacts edit' to change it"
                )
        stored = store.add(contact)
    if args.json:
        print_json(contact_to_json(stored))
    else:
        print(f"Added {printable(stored.name)} ({stored.id[:SHORT_ID]}).")
    return 0


def _edit_list(
    current: list[str],
    replace: list[str] | None,
    add: list[str],
    remove: list[str],
    *,
    fold_case: bool,
) -> list[str]:
    def key(v: str) -> str:
        return v.strip().lower() if fold_case else v.strip()

    values = [v.strip() for v in replace] if replace is not None else list(current)
    gone = {key(v) for v in remove}
    missing = gone - {key(v) for v in values}
    if missing:
        raise CliError(f"not in the contact: {', '.join(sorted(missing))}")
    values = [v for v in values if key(v) not in gone]
    for v in add:
        if key(v) not in {key(x) for x in values}:
            values.append(v.strip())
    return values


def cmd_edit(args: argparse.Namespace) -> int:
    with Context(args).contacts() as store, store.batch():
        c = resolve(store, args.ref)
        changes: dict[str, Any] = {}
        if args.name is not None:
            changes["name"] = args.name.strip()
        emails = _edit_list(c.emails, args.email, args.add_email, args.rm_email, fold_case=True)
        for address in emails:
            other = store.find_by_email(address)
            if other and other.id != c.id:
                raise CliError(f"{address} already belongs to {other.name} ({other.id[:SHORT_ID]})")
        changes["emails"] = emails
        changes["phones"] = _edit_list(
            c.phones, args.phone, args.add_phone, args.rm_phone, fold_case=False
        )
        if args.photo:
            changes["photo"], changes["photo_path"] = _read_photo(args.photo), None
        elif args.no_photo:
            changes["photo"], changes["photo_path"] = None, None
        if args.notes is not None:
            changes["notes"] = args.notes
        if args.favourite is not None:
            changes["favourite"] = args.favourite
        stored = store.update(c.copy(**changes))
    if args.json:
        print_json(contact_to_json(stored))
    else:
        print(f"Updated {printable(stored.name)} ({stored.id[:SHORT_ID]}).")
    return 0


def confirm_fuzzy(contact: Contact, ref: str, action: str, yes: bool) -> None:
    """A destructive command on a partial name asks first (``--yes`` skips the
    question); without a terminal to ask on, it refuses."""
    if yes:
        return
    shown = f"{printable(contact.name)} ({contact.id[:SHORT_ID]})"
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError(
            f"{ref!r} only partly matches {shown}: not {action} without --yes "
            "(or name it by id, e-mail or full name)"
        )
    answer = input(f"{action.capitalize()} {shown}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError(f"{shown} not {action}")


def cmd_rm(args: argparse.Namespace) -> int:
    with Context(args).contacts() as store, store.batch():
        c, fuzzy = find(store, args.ref)
        if fuzzy:
            confirm_fuzzy(c, args.ref, "deleted", args.yes)
        store.delete(c.id)
    if args.json:
        print_json(contact_to_json(c))
    else:
        print(f"Deleted {printable(c.name)} ({c.id[:SHORT_ID]}).")
    return 0


def _set_blocked(args: argparse.Namespace, blocked: bool) -> int:
    with Context(args).contacts() as store, store.batch():
        found, fuzzy = find(store, args.ref)
        if fuzzy and blocked:
            confirm_fuzzy(found, args.ref, "blocked", args.yes)
        c = store.set_blocked(found.id, blocked)
    if args.json:
        print_json(contact_to_json(c))
    else:
        verb = "Blocked" if blocked else "Unblocked"
        print(f"{verb} {printable(c.name)} ({c.id[:SHORT_ID]}).")
    return 0


def cmd_block(args: argparse.Namespace) -> int:
    return _set_blocked(args, True)


def cmd_unblock(args: argparse.Namespace) -> int:
    return _set_blocked(args, False)


def cmd_import(args: argparse.Namespace) -> int:
    from hello_tui.contacts.importer import import_file

    path = Path(args.file).expanduser()
    with Context(args).contacts() as store, _import_progress(args, path) as progress:
        report = import_file(store, path, fmt=args.format, progress=progress)
    if args.json:
        print_json(report.to_dict())
        return 0
    print(printable(report.summary()))
    for skip in report.skipped:
        print(f"  skipped {printable(skip)}", file=sys.stderr)
    for warning in report.warnings:
        print(f"  warning: {printable(warning)}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _import_progress(args: argparse.Namespace, path: Path) -> Iterator[Any]:
    """A progress bar on a terminal (stderr), for files big enough to wait on;
    nothing otherwise: scripts get the one summary line."""
    try:
        big = path.stat().st_size > PROGRESS_MIN_BYTES
    except OSError:
        big = False  # import_file names the problem
    if args.json or not big or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(f"{phase.capitalize()} {path.name}", total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


def cmd_export(args: argparse.Namespace) -> int:
    from hello_tui.contacts.importer import export_file, export_text

    with Context(args).contacts() as store:
        if args.file == "-":
            sys.stdout.write(export_text(store, args.format or "vcard", args.vcard_version))
            return 0
        n = export_file(
            store, Path(args.file).expanduser(), fmt=args.format, vcard_version=args.vcard_version
        )
    print(f"Exported {n} contact{'s' if n != 1 else ''} to {args.file}.")
    return 0
