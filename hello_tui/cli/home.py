"""``hello-tui`` with no command.

Until the call engine and the TUI land, this prints where things live and
what you can do; later it opens the Textual app on the embedded default.
"""

from __future__ import annotations

import argparse
import shutil

from hello_tui import __version__
from hello_tui.cli.context import Context


def cmd_home(args: argparse.Namespace) -> int:
    ctx = Context(args)
    settings = ctx.settings  # a broken config is reported here, before anything else
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
