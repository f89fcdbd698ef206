"""Start the client's log for one CLI run (``-v``, ``--log-level``; see util/logs.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hello_tui.config.paths import resolve_paths
from hello_tui.util.logs import setup_logging


def start_logging(args: argparse.Namespace) -> Path | None:
    """Log to the profile's log file; echo on stderr with ``-v`` (never for the TUI)."""
    paths = resolve_paths(getattr(args, "config", None), getattr(args, "profile", None))
    verbose = getattr(args, "verbose", None) or 0
    tui = args._handler == "hello_tui.cli.home:cmd_home"
    return setup_logging(
        paths.log_file,
        verbose=verbose,
        log_level=getattr(args, "log_level", None),
        console=verbose > 0 and not tui,
    )
