"""Promise P3: contacts never leave the device.

Every contacts operation runs in a real process with a Python audit hook
that records any socket creation or connection; the test asserts none
happened (and that the hook does catch a socket, so the test can fail).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import json, sys
    events = []
    def hook(event, args):
        if event.startswith("socket.") or event in ("http.client.connect", "urllib.Request"):
            events.append(event)
    sys.addaudithook(hook)
    from hello_tui.cli.main import main
    codes = []
    for args in json.loads(sys.argv[1]):
        codes.append(main(args))
    if sys.argv[2] == "canary":
        import socket
        socket.socket().close()
    print(json.dumps({"codes": codes, "events": events}))
    """
)


def _run(commands: list[list[str]], canary: bool = False) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(commands), "canary" if canary else "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_no_socket_is_opened_by_any_contacts_command(tmp_path: Path) -> None:
    vcf = tmp_path / "a.vcf"
    vcf.write_text(
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Ada\r\nEMAIL:ada@example.org\r\n"
        "PHOTO:http://127.0.0.1:9/ada.jpg\r\nEND:VCARD\r\n"
    )
    commands = [
        ["contacts", "add", "Alice", "--email", "alice@example.org"],
        ["contacts", "import", str(vcf)],
        ["contacts", "list", "--json"],
        ["contacts", "list", "ali"],
        ["contacts", "edit", "Alice", "--add-email", "a2@example.org"],
        ["contacts", "block", "Ada"],
        ["contacts", "export", str(tmp_path / "out.vcf")],
        ["contacts", "rm", "Alice"],
    ]
    result = _run(commands)
    assert result["codes"] == [0] * len(commands)
    assert result["events"] == []
    # The remote PHOTO URI was not fetched, and the export holds no photo for Ada.
    assert "PHOTO" not in (tmp_path / "out.vcf").read_text()


def test_the_audit_hook_does_see_sockets() -> None:
    result = _run([["contacts", "list"]], canary=True)
    assert "socket.__new__" in result["events"]
