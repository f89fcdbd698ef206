"""``hello-tui history`` and ``hello-tui history clear``."""

from __future__ import annotations

import argparse

from hello_tui.call.wording import mmss, outcome_words
from hello_tui.cli.context import Context
from hello_tui.cli.output import iso, print_json, print_table
from hello_tui.util.timestamps import local_time


def cmd_list(args: argparse.Namespace) -> int:
    with Context(args).history() as history:
        records = history.list(limit=args.limit)
    if args.json:
        print_json([{**r.to_dict(), "start": iso(r.start)} for r in records])
        return 0
    if not records:
        print("No calls yet.")
        return 0
    arrow = {"outgoing": "→", "incoming": "←"}
    print_table(
        ["WHEN", "", "WHO", "DURATION", "OUTCOME"],
        [
            [
                local_time(r.start),
                arrow[r.direction],
                r.peer,
                mmss(r.duration),
                outcome_words(r.outcome),
            ]
            for r in records
        ],
    )
    return 0


def cmd_clear(args: argparse.Namespace) -> int:
    with Context(args).history() as history:
        n = history.clear()
    print(f"Forgot {n} call{'s' if n != 1 else ''}.")
    return 0
