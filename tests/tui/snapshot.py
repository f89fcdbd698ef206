"""SVG snapshots without a plugin: ``app.export_screenshot()`` compared with a
committed file under ``tests/tui/snapshots/``.

pytest-textual-snapshot 1.1.0 pins syrupy 4.8.0, which needs pytest < 9 (this
project runs pytest 9), so the same idea is done here in a few lines.
``HELLO_TUI_UPDATE_SNAPSHOTS=1 pytest tests/tui`` rewrites the files; a
mismatch leaves the new rendering next to the test's tmp dir for review.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

SNAPSHOTS = Path(__file__).parent / "snapshots"


def normalize(svg: str) -> str:
    # Rich derives the CSS class prefix from a hash of the content: keep it (it is
    # deterministic), but drop trailing spaces so editors cannot break a snapshot.
    return "\n".join(line.rstrip() for line in svg.splitlines()) + "\n"


def assert_snapshot(app: Any, name: str, tmp_path: Path) -> None:
    svg = normalize(app.export_screenshot(title=name))
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("HELLO_TUI_UPDATE_SNAPSHOTS") == "1" or not path.exists():
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        path.write_text(svg, encoding="utf-8")
        if os.environ.get("HELLO_TUI_UPDATE_SNAPSHOTS") != "1":
            raise AssertionError(f"{path} did not exist: written, review and commit it")
        return
    expected = path.read_text(encoding="utf-8")
    if svg != expected:
        actual = tmp_path / f"{name}.actual.svg"
        actual.write_text(svg, encoding="utf-8")
        diff = _first_difference(expected, svg)
        raise AssertionError(f"snapshot {name} differs ({diff}); new rendering: {actual}")


def _first_difference(a: str, b: str) -> str:
    texts = [re.findall(r">([^<>]*)</text>", s) for s in (a, b)]
    for i, (x, y) in enumerate(zip(*texts, strict=False)):
        if x != y:
            return f"text {i}: {x!r} → {y!r}"
    return "styles or layout"
