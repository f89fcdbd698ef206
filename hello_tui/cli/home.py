"""``hello-tui`` with no command.

On a terminal (stdin and stdout both TTYs) it opens the Textual app
(``hello_tui.tui``) on the configured server, or the embedded default. Without
a TTY (scripts, pipes, tests) it prints where things live and what to try,
and exits 0 at once.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from hello_tui import __version__
from hello_tui.cli.context import Context
from hello_tui.config.settings import Settings


def cmd_home(args: argparse.Namespace) -> int:
    ctx = Context(args)
    settings = ctx.settings  # a broken config is reported here, before anything else
    if sys.stdout.isatty() and sys.stdin.isatty():
        from hello_tui.tui.app import run

        return run(ctx.paths, settings, echo=bool(getattr(args, "echo", False)))
    return summary(ctx, settings)


def summary(ctx: Context, settings: object) -> int:
    """The text summary printed without a TTY."""
    assert isinstance(settings, Settings)
    with ctx.contacts() as store:
        n = store.count()
    with ctx.history() as history:
        calls = history.count()
    profile = f" (profile {ctx.paths.profile})" if ctx.paths.profile else ""
    print(f"hello-tui {__version__}{profile}")
    print(
        f"  config:   {ctx.paths.config_file}"
        f"{'' if ctx.paths.config_file.exists() else '  (defaults)'}"
    )
    print(f"  contacts: {n} in {ctx.contacts_path} ({settings.contacts.backend}, on this device)")
    print(f"  history:  {calls} call{'s' if calls != 1 else ''}")
    print()
    if shutil.which("hello-tui") is None:
        print("(hello-tui is not on your PATH: use ./dev.sh run ARGS or .venv/bin/hello-tui ARGS)")
    print("Try:")
    print("  hello-tui call echo                 # hear yourself through an embedded server")
    print("  hello-tui call echo --audio-in sine:440 --audio-out file:echo.wav --duration 3")
    print("  hello-tui contacts add 'Alice Martin' --email alice@example.org")
    print("  hello-tui contacts import contacts.vcf")
    print("  hello-tui contacts list")
    print("  hello-tui --help")
    return 0
