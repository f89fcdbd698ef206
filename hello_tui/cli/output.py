"""Printing for humans (aligned columns) and scripts (JSON).

Human output passes every cell through :func:`printable`: names and notes come
from vCards and servers, and must not move the cursor or forge a line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hello_tui.util.display import printable


def json_flag(p: argparse.ArgumentParser) -> None:
    """The ``--json`` option of the commands that print data."""
    p.add_argument("--json", action="store_true", help="print JSON for scripts")


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def iso(ts: float) -> str:
    """RFC 3339 UTC timestamp, second precision."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns; the last column is not padded. Cells are untrusted."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [headers, *rows]:
        cells = [c.ljust(widths[i]) for i, c in enumerate(row[:-1])] + [row[-1]]
        print("  ".join(cells).rstrip())
