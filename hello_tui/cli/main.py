"""``hello-tui`` entry point: one command table, argparse, lazy handlers.

Only the stdlib is imported here so ``hello-tui --help`` stays fast; each
handler module (and whatever heavy library it needs) is imported when its
command runs. Exit codes: 0 ok, 1 error (one line on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hello_tui import __version__
from hello_tui.cli.output import json_flag
from hello_tui.util.display import printable

PROG = "hello-tui"


@dataclass(frozen=True)
class Command:
    """One row of the command table: name, help, handler ``module:function``,
    a function adding its arguments, and optional sub-commands."""

    name: str
    help: str
    handler: str = ""
    # A function adding the command's arguments, or "module:function" naming one
    # in a light module (imported when the parser is built: keep it stdlib-only).
    args: Callable[[argparse.ArgumentParser], None] | str | None = None
    children: tuple[Command, ...] = field(default_factory=tuple)
    description: str = ""
    aliases: tuple[str, ...] = ()


def _ref(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "ref", metavar="CONTACT", help="id (or a unique prefix), e-mail, or a name matching one"
    )


def _contacts_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="?", default="", help="only contacts matching this text")
    p.add_argument("--no-blocked", action="store_true", help="leave blocked contacts out")
    p.add_argument("--limit", type=int, default=None, help="at most N contacts")
    json_flag(p)


def _contacts_show(p: argparse.ArgumentParser) -> None:
    _ref(p)
    json_flag(p)


def _contacts_destructive(p: argparse.ArgumentParser) -> None:
    _contacts_show(p)
    p.add_argument(
        "--yes", action="store_true", help="do not ask when the name only partly matches"
    )


def _contact_fields(p: argparse.ArgumentParser, *, editing: bool) -> None:
    if editing:
        p.add_argument("--name", help="new display name")
    p.add_argument(
        "--email",
        action="append",
        default=None,
        metavar="ADDRESS",
        help="e-mail address (repeat for several)" + ("; replaces all" if editing else ""),
    )
    p.add_argument(
        "--phone",
        action="append",
        default=None,
        metavar="NUMBER",
        help="phone number (repeat for several)" + ("; replaces all" if editing else ""),
    )
    if editing:
        p.add_argument("--add-email", action="append", default=[], metavar="ADDRESS")
        p.add_argument("--rm-email", action="append", default=[], metavar="ADDRESS")
        p.add_argument("--add-phone", action="append", default=[], metavar="NUMBER")
        p.add_argument("--rm-phone", action="append", default=[], metavar="NUMBER")
    p.add_argument("--photo", metavar="FILE", help="PNG or JPEG picture")
    if editing:
        p.add_argument("--no-photo", action="store_true", help="remove the photo")
    p.add_argument("--notes", help="free text")
    fav = p.add_mutually_exclusive_group()
    fav.add_argument(
        "--favourite",
        "--favorite",
        dest="favourite",
        action="store_true",
        default=None,
        help="list first",
    )
    if editing:
        fav.add_argument(
            "--no-favourite",
            "--no-favorite",
            dest="favourite",
            action="store_false",
            help="no longer a favourite",
        )
    json_flag(p)


def _contacts_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="display name")
    _contact_fields(p, editing=False)


def _contacts_edit(p: argparse.ArgumentParser) -> None:
    _ref(p)
    _contact_fields(p, editing=True)


def _contacts_import(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .vcf (vCard 3.0/4.0) or Google Contacts .csv file")
    p.add_argument("--format", choices=["vcard", "csv"], help="override the file-name guess")
    json_flag(p)


def _contacts_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="output file, or - for standard output")
    p.add_argument("--format", choices=["vcard", "csv"], help="override the file-name guess")
    p.add_argument(
        "--vcard-version", choices=["3.0", "4.0"], default="3.0", help="vCard version (3.0)"
    )


def _history_list(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=50, help="at most N calls (50)")
    json_flag(p)


_C = "hello_tui.cli.contacts_cmd"
_K = "hello_tui.cli.keys_cmd"
_T = "hello_tui.cli.ctl_cmd"


def _key_name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="an account name, or a contact with one")
    json_flag(p)


COMMANDS: tuple[Command, ...] = (
    Command(
        "contacts",
        "manage the local address book (never leaves this device)",
        children=(
            Command(
                "list",
                "list contacts, favourites first",
                f"{_C}:cmd_list",
                _contacts_list,
                aliases=("ls",),
            ),
            Command("show", "show one contact", f"{_C}:cmd_show", _contacts_show),
            Command("add", "add a contact", f"{_C}:cmd_add", _contacts_add),
            Command("edit", "change a contact", f"{_C}:cmd_edit", _contacts_edit),
            Command(
                "rm", "delete a contact", f"{_C}:cmd_rm", _contacts_destructive, aliases=("delete",)
            ),
            Command(
                "block", "refuse calls from a contact", f"{_C}:cmd_block", _contacts_destructive
            ),
            Command(
                "unblock", "accept calls from a contact again", f"{_C}:cmd_unblock", _contacts_show
            ),
            Command(
                "import",
                "import a vCard or Google Contacts CSV file",
                f"{_C}:cmd_import",
                _contacts_import,
            ),
            Command(
                "export", "export contacts to vCard or CSV", f"{_C}:cmd_export", _contacts_export
            ),
            Command(
                "keys",
                "the account keys seen on calls (trust on first use)",
                f"{_K}:cmd_keys",
                json_flag,
            ),
            Command(
                "verify",
                "mark an account's key verified (after comparing the check code aloud)",
                f"{_K}:cmd_verify",
                _key_name,
            ),
            Command(
                "trust",
                "accept an account's changed key (it replaces the remembered one)",
                f"{_K}:cmd_trust",
                _key_name,
            ),
        ),
    ),
    Command(
        "history",
        "show the local call history",
        "hello_tui.cli.history_cmd:cmd_list",
        _history_list,
        children=(
            Command(
                "clear", "forget every call in the history", "hello_tui.cli.history_cmd:cmd_clear"
            ),
        ),
    ),
    Command(
        "account",
        "optional account: let others call you by name",
        children=(
            Command(
                "register",
                "create an account bound to a new key on this device",
                "hello_tui.cli.account_cmd:cmd_register",
                "hello_tui.cli.account_cmd:args_register",
            ),
            Command(
                "login",
                "check that this device can sign in as the account",
                "hello_tui.cli.account_cmd:cmd_login",
                "hello_tui.cli.account_cmd:args_login",
            ),
            Command(
                "show",
                "show the account configured for this profile",
                "hello_tui.cli.account_cmd:cmd_show",
                "hello_tui.cli.account_cmd:args_show",
            ),
            Command(
                "delete",
                "delete the account and everything the server holds for it",
                "hello_tui.cli.account_cmd:cmd_delete",
                "hello_tui.cli.account_cmd:args_delete",
            ),
            Command(
                "link",
                "add this device to an account (approved on a device signed in to it)",
                "hello_tui.cli.account_cmd:cmd_link",
                "hello_tui.cli.account_cmd:args_link",
            ),
            Command(
                "approve",
                "let a new device sign in as the account (the code it shows)",
                "hello_tui.cli.account_cmd:cmd_approve",
                "hello_tui.cli.account_cmd:args_approve",
            ),
            Command(
                "devices",
                "list the devices that can sign in as the account",
                "hello_tui.cli.account_cmd:cmd_devices",
                "hello_tui.cli.account_cmd:args_devices",
            ),
            Command(
                "revoke",
                "stop a device from signing in as the account",
                "hello_tui.cli.account_cmd:cmd_revoke",
                "hello_tui.cli.account_cmd:args_revoke",
            ),
        ),
    ),
    Command(
        "room",
        "conversation URLs anyone can join",
        children=(
            Command(
                "create",
                "create a room and print its URL",
                "hello_tui.cli.room_cmd:cmd_create",
                "hello_tui.cli.room_cmd:args_create",
            ),
            Command(
                "list",
                "list your rooms",
                "hello_tui.cli.room_cmd:cmd_list",
                "hello_tui.cli.room_cmd:args_list",
                aliases=("ls",),
            ),
            Command(
                "rename",
                "rename a room",
                "hello_tui.cli.room_cmd:cmd_rename",
                "hello_tui.cli.room_cmd:args_rename",
            ),
            Command(
                "delete",
                "delete a room",
                "hello_tui.cli.room_cmd:cmd_delete",
                "hello_tui.cli.room_cmd:args_delete",
                aliases=("rm",),
            ),
        ),
    ),
    Command(
        "call",
        "place a call: an account, a contact, a room URL, or 'echo' (scripts: --json)",
        "hello_tui.cli.call_cmd:cmd_call",
        "hello_tui.cli.call_cmd:args_call",
    ),
    Command(
        "answer",
        "wait for calls and answer them without a TTY (--auto)",
        "hello_tui.cli.call_cmd:cmd_answer",
        "hello_tui.cli.call_cmd:args_answer",
    ),
    Command(
        "join",
        "join a conversation URL (a room) and talk to whoever is there",
        "hello_tui.cli.call_cmd:cmd_join",
        "hello_tui.cli.call_cmd:args_join",
    ),
    Command(
        "ctl",
        "steer a call another hello-tui process holds: chat, mute, hang up, follow its events",
        children=(
            Command(
                "list",
                "the running processes and their calls",
                f"{_T}:cmd_list",
                f"{_T}:args_list",
                aliases=("ls",),
            ),
            Command(
                "events",
                "print the event stream (JSON lines, like --json)",
                f"{_T}:cmd_events",
                f"{_T}:args_events",
            ),
            Command("chat", "send a chat message", f"{_T}:cmd_chat", f"{_T}:args_chat"),
            Command("mute", "mute the microphone", f"{_T}:cmd_mute", f"{_T}:args_plain"),
            Command("unmute", "unmute the microphone", f"{_T}:cmd_unmute", f"{_T}:args_plain"),
            Command("camera", "camera on or off", f"{_T}:cmd_camera", f"{_T}:args_camera"),
            Command("hangup", "hang up the call", f"{_T}:cmd_hangup", f"{_T}:args_plain"),
            Command(
                "send",
                "send one JSON command line (docs/calls.md)",
                f"{_T}:cmd_send",
                f"{_T}:args_send",
            ),
        ),
    ),
    Command(
        "serve",
        "run the rendezvous server",
        "hello_tui.cli.serve_cmd:cmd_serve",
        "hello_tui.cli.serve_cmd:add_arguments",
        children=(
            Command(
                "invite",
                "print one-time invite codes (for --invite-only servers)",
                "hello_tui.cli.serve_cmd:cmd_invite",
                "hello_tui.cli.serve_cmd:args_invite",
            ),
        ),
    ),
    Command(
        "privacy",
        "show exactly what telemetry sent; crash reports kept on this device",
        "hello_tui.cli.privacy_cmd:cmd_show",
        "hello_tui.cli.privacy_cmd:args_show",
        children=(
            Command(
                "crashes",
                "crash reports kept on this device (sent only if you say so)",
                "hello_tui.cli.privacy_cmd:cmd_crash_list",
                children=(
                    Command(
                        "list",
                        "print each saved report",
                        "hello_tui.cli.privacy_cmd:cmd_crash_list",
                    ),
                    Command(
                        "send",
                        "send the saved reports to the server, then delete them here",
                        "hello_tui.cli.privacy_cmd:cmd_crash_send",
                        "hello_tui.cli.privacy_cmd:args_crash_send",
                    ),
                    Command(
                        "clear",
                        "delete the saved reports",
                        "hello_tui.cli.privacy_cmd:cmd_crash_clear",
                    ),
                ),
            ),
        ),
    ),
    Command(
        "doctor",
        "check sound, camera, config, server, account and TURN; say what to fix",
        "hello_tui.cli.doctor_cmd:cmd_doctor",
        "hello_tui.cli.doctor_cmd:args_doctor",
    ),
    Command(
        "devices",
        "list audio and video devices as --audio-in / --audio-out / --video strings",
        "hello_tui.cli.devices_cmd:cmd_devices",
        json_flag,
    ),
    Command(
        "completion",
        'print a shell completion script: eval "$(hello-tui completion bash)"',
        "hello_tui.cli.completion:cmd_completion",
        "hello_tui.cli.completion:args_completion",
    ),
    Command(
        "config",
        "inspect and change the configuration",
        children=(
            Command(
                "show",
                "print the effective settings (defaults included)",
                "hello_tui.cli.config_cmd:cmd_show",
                json_flag,
            ),
            Command(
                "path",
                "print where the config file and data live",
                "hello_tui.cli.config_cmd:cmd_path",
                json_flag,
            ),
            Command(
                "check",
                "validate the config file (exit 1 if invalid)",
                "hello_tui.cli.config_cmd:cmd_check",
            ),
            Command(
                "set",
                "set SECTION.KEY to VALUE (comments and layout kept; validated first)",
                "hello_tui.cli.config_cmd:cmd_set",
                "hello_tui.cli.config_cmd:args_set",
            ),
            Command(
                "unset",
                "remove SECTION.KEY from the file (its default applies)",
                "hello_tui.cli.config_cmd:cmd_unset",
                "hello_tui.cli.config_cmd:args_unset",
            ),
        ),
    ),
)


def _global_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Accepted before or after the sub-command: `hello-tui --profile bob contacts ls`
    # and `hello-tui contacts ls --profile bob` both work.
    default = argparse.SUPPRESS if suppress else None
    p.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: $HELLO_TUI_CONFIG or the profile's)",
    )
    p.add_argument(
        "--profile",
        metavar="NAME",
        default=default,
        help="separate config and data (default: $HELLO_TUI_PROFILE)",
    )


def _log_options(p: argparse.ArgumentParser, *, suppress: bool) -> None:
    # Not on `serve`, which has a --log-level of its own for the server's log.
    default = argparse.SUPPRESS if suppress else None
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default,
        help="log more, and echo the log on stderr (-vv: debug)",
    )
    p.add_argument(
        "--log-level",
        metavar="LEVEL",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default=default,
        help="level of the log file (default INFO; 'hello-tui doctor' prints where it is)",
    )


def _add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], commands: Sequence[Command]
) -> None:
    for cmd in commands:
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description or cmd.help[0].upper() + cmd.help[1:] + ".",
            aliases=list(cmd.aliases),
        )
        _global_options(p, suppress=True)
        if not cmd.handler.startswith("hello_tui.cli.serve_cmd:"):
            _log_options(p, suppress=True)
        if isinstance(cmd.args, str):
            module, func = cmd.args.split(":")
            getattr(importlib.import_module(module), func)(p)
        elif cmd.args:
            cmd.args(p)
        p.set_defaults(_handler=cmd.handler, _parser=p)
        if cmd.children:
            children = p.add_subparsers(title="commands", metavar="COMMAND")
            _add_commands(children, cmd.children)


def build_parser() -> argparse.ArgumentParser:
    """The full parser (cheap: no handler module is imported)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Private audio-first calls from the terminal. Contacts stay on this device.",
        epilog="Run 'hello-tui COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--echo",
        action="store_true",
        help="open the app and start the echo test at once (hear yourself, see the quality panel)",
    )
    _global_options(parser, suppress=False)
    _log_options(parser, suppress=False)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_commands(sub, COMMANDS)
    parser.set_defaults(_handler="hello_tui.cli.home:cmd_home", _parser=parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # the command's own usage, not the top-level one (exit 2)
        args._parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not args._handler:  # a group like `hello-tui contacts` with no sub-command
        args._parser.print_help(sys.stderr)
        return 2
    from hello_tui.cli.errors import run_handler

    module, func = args._handler.split(":")
    # (The server's threads and imports are not what the client settings measure.)
    _process_settings(client=module != "hello_tui.cli.serve_cmd")

    def handle() -> int | None:
        if not module.startswith("hello_tui.cli.serve_cmd"):  # the server logs on its own
            from hello_tui.cli.logging_setup import start_logging

            start_logging(args)
        command: Callable[[argparse.Namespace], int | None]
        command = getattr(importlib.import_module(module), func)
        return command(args)

    try:
        return run_handler(handle)
    except Exception as exc:  # a bug: keep a local crash report, say where, exit 1
        return _crashed(args, exc, func.removeprefix("cmd_").replace("_", " "))


def _process_settings(*, client: bool = False) -> None:
    """Start-up settings that must precede the handler's imports (docs/media.md "Memory").

    OpenBLAS (numpy's) starts a pool of (cores - 1) threads at import; the
    only BLAS calls here are dot products of one 20 ms block, below its threading
    threshold, so the pool only idles (its stacks and buffers). The user's value wins.

    A ``client`` command (every one but ``serve``) also gets one glibc malloc arena,
    before any thread starts: the per-thread arenas of the device, warm-up and libpulse
    threads held ~7 MiB of a pulse ``device:`` call's peak (util/malloc_arenas.py;
    MALLOC_ARENA_MAX wins); and websockets' version module without importlib.metadata
    (signaling/websockets_version.py).
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if client:
        from hello_tui.signaling import websockets_version
        from hello_tui.util.malloc_arenas import limit_malloc_arenas

        limit_malloc_arenas(1)
        websockets_version.install()


def _crashed(args: argparse.Namespace, exc: Exception, command: str) -> int:
    """Save a crash report in the profile's data directory (sent only on a yes:
    ``hello-tui privacy crashes send``, or the question on the next interactive call)."""
    where = ""
    try:
        from hello_tui.config.paths import resolve_paths
        from hello_tui.signaling.protocol import encode_body
        from hello_tui.telemetry.report import build_crash_report
        from hello_tui.telemetry.store import TelemetryStore

        paths = resolve_paths(getattr(args, "config", None), getattr(args, "profile", None))
        body = encode_body(build_crash_report(exc, command=command))
        where = str(TelemetryStore(paths.data_dir).save_crash(body))
    except Exception:  # never let the crash report hide the crash
        where = ""
    line = printable(" ".join(f"{type(exc).__name__}: {exc}".split()))
    saved = (
        f"; a crash report was saved in {where} (nothing was sent; "
        "'hello-tui privacy crashes send' shares it)"
        if where
        else ""
    )
    print(f"hello-tui: internal error: {line}{saved}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
