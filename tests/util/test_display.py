"""printable(): untrusted text on a terminal line shows its control characters
instead of obeying them (issue 10, item 3)."""

from __future__ import annotations

import contextlib
import io
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hello_tui.cli.call_cmd import Printer
from hello_tui.util.display import printable, safe


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Alice Martin", "Alice Martin"),
        ("[/] [@click=app.quit]x", "[/] [@click=app.quit]x"),  # not markup here: plain text
        ("Mum\nIncoming call from Your Bank", "Mum␊Incoming call from Your Bank"),
        ("\x1b[2J\x1b]0;title\x07", "␛[2J␛]0;title␇"),
        ("a\r\nb\tc\x7f", "a␍␊b␉c␡"),
        ("\x9bc", "\ufffdc"),  # C1 CSI
        ("\u202eevil\u2066x\u2069", "\ufffdevil\ufffdx\ufffd"),
        ("z\u200bw\u200dj\ufeff\u2028", "z\ufffdw\ufffdj\ufffd\ufffd"),
        ("\u3164", "\ufffd"),  # Hangul filler
        ("e" + "\u0301" * 20, "e" + "\u0301" * 4),
        ("李小龍 Zoë", "李小龍 Zoë"),
    ],
)
def test_printable(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert safe(shown) or "\ufffd" in shown


def test_printable_cuts_long_text() -> None:
    assert printable("x" * 50, 10) == "x" * 9 + "…"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_nothing_hidden_survives(text: str) -> None:
    shown = printable(text)
    for char in shown:
        assert unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    assert printable(shown) == shown


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_a_human_line_is_one_line(text: str) -> None:
    """``answer``'s "Incoming call from …" line, whatever the caller's name."""
    from hello_tui.call import events as ev

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        Printer(as_json=False, live=False).event(ev.Incoming(call_id="c1", caller=text))
    out = buffer.getvalue()
    assert out.count("\n") == 1 and out.endswith("\n")
    assert "\x1b" not in out and "\r" not in out
    assert out == f"Incoming call from {printable(text) or 'an anonymous caller'}\n"
