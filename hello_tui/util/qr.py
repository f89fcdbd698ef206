"""A QR code drawn in the terminal with half-block characters.

:func:`qr_matrix` is the code's modules (``segno``, error correction ``M``,
a 4-module quiet zone as the standard asks); :func:`qr_lines` draws two module
rows per text line: upper half block, lower half block, full block or space.
A phone's camera wants dark modules on a light ground, and most terminals draw
light text on a dark one: with ``invert`` (the default) the *light* modules
(and the quiet zone) are the blocks, so the code reads dark-on-light there.
"""

from __future__ import annotations

QUIET = 4  # modules of quiet zone around the code (ISO/IEC 18004)
_BLOCKS = {(False, False): " ", (True, False): "▀", (False, True): "▄", (True, True): "█"}


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


__all__ = ["matrix_of_lines", "qr_lines", "qr_matrix"]
