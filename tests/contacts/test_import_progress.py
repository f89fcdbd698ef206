"""A long import shows progress on a terminal, and only its summary line
otherwise (issue 11)."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from hello_tui.contacts.importer import import_file
from hello_tui.contacts.toml_store import TomlContactStore
from tests.conftest import Result

Cli = Callable[..., Result]


def _cards(path: Path, n: int) -> Path:
    path.write_text(
        "".join(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Person {i:05d}\r\n"
            f"EMAIL:p{i}@example.org\r\nEND:VCARD\r\n"
            for i in range(n)
        )
    )
    return path


def test_the_importer_reports_each_phase(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    store = TomlContactStore(tmp_path / "c.toml")
    report = import_file(store, _cards(tmp_path / "c.vcf", 50), progress=lambda *a: seen.append(a))
    assert report.added == 50
    reading = [s for s in seen if s[0] == "reading"]
    merging = [s for s in seen if s[0] == "merging"]
    assert reading[-1] == ("reading", 50, 50) and merging[-1] == ("merging", 50, 50)
    assert [d for _, d, _ in reading] == list(range(1, 51))  # in order, each card once
    assert seen.index(reading[-1]) < seen.index(merging[0])


def test_a_terminal_gets_a_progress_bar_a_pipe_gets_one_line(tmp_path: Path, cli: Cli) -> None:
    big = _cards(tmp_path / "big.vcf", 4000)  # over the 256 KiB threshold
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hello_tui", "contacts", "import", str(big)],
        stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, env=dict(os.environ),
    )  # fmt: skip
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        shown += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    assert proc.returncode == 0
    assert b"Reading big.vcf" in shown and b"4000/4000" in shown, shown[-500:]
    assert out.decode() == "imported big.vcf: 4000 added, 0 merged, 0 skipped\n"
    # Without a terminal: the summary only, nothing on stderr.
    r = cli("contacts", "import", str(_cards(tmp_path / "again.vcf", 4000)))
    assert r.code == 0 and r.err == "" and len(r.out.splitlines()) == 1
