"""A QR code drawn in the terminal with half-block characters, and OSC 52.

:func:`qr_matrix` is the code's modules (``segno``, error correction ``M``,
a 4-module quiet zone as the standard asks); :func:`qr_lines` draws two module
rows per text line: upper half block, lower half block, full block or space.
A phone's camera wants dark modules on a light ground, and most terminals draw
light text on a dark one: with ``invert`` (the default) the *light* modules
(and the quiet zone) are the blocks, so the code reads dark-on-light there.

:func:`osc52` is the escape that asks the terminal to put text on the
clipboard (xterm, kitty, WezTerm, iTerm2, foot, tmux with set-clipboard...).
"""

from __future__ import annotations

import base64

QUIET = 4  # modules of quiet zone around the code (ISO/IEC 18004)
_BLOCKS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}
OSC52_MAX = 74_994  # bytes of base64 xterm accepts in one OSC 52 by default


def qr_matrix(text: str) -> list[list[bool]]:
    """The code's modules, True for dark, with the quiet zone."""
    import segno

    code = segno.make(text, error="m", micro=False)
    return [[bool(m) for m in row] for row in code.matrix_iter(scale=1, border=QUIET)]


def qr_lines(text: str, *, invert: bool = True) -> list[str]:
    """The code as text lines, two module rows a line. ``invert``: light modules
    drawn as blocks (for a light-on-dark terminal, so the code reads dark-on-light)."""
    matrix = qr_matrix(text)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    lines = []
    for top, bottom in zip(matrix[::2], matrix[1::2], strict=True):
        lines.append(
            "".join(_BLOCKS[(t != invert, b != invert)] for t, b in zip(top, bottom, strict=True))
        )
    return lines


def matrix_of_lines(lines: list[str], *, invert: bool = True) -> list[list[bool]]:
    """The modules back from :func:`qr_lines` (what the tests compare)."""
    rows: list[list[bool]] = []
    for line in lines:
        top = [ch in "▀█" for ch in line]
        bottom = [ch in "▄█" for ch in line]
        rows += [[m != invert for m in top], [m != invert for m in bottom]]
    return rows


def osc52(text: str) -> str | None:
    """The OSC 52 escape that copies ``text`` to the clipboard (None: too long)."""
    data = base64.b64encode(text.encode()).decode("ascii")
    return None if len(data) > OSC52_MAX else f"\x1b]52;c;{data}\x07"


__all__ = ["matrix_of_lines", "osc52", "qr_lines", "qr_matrix"]
