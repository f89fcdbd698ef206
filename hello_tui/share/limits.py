"""A shared screen's bounds and the UTF-8 cut, without pyte.

What the call path needs of terminal sharing before anyone shares (the wire
bounds, the chunker): kept apart from :mod:`.terminal` so that a call that
never shares does not load pyte and wcwidth (~4.5 MiB, docs/media.md "Memory").
"""

from __future__ import annotations

__all__ = ["MAX_COLS", "MAX_ROWS", "utf8_cut"]

MAX_COLS, MAX_ROWS = 400, 200  # a screen's bounds, both ends (the other side is untrusted)


def utf8_cut(data: bytes) -> int:
    """The length of ``data``'s prefix that ends on a UTF-8 character boundary."""
    n = len(data)
    for back in range(1, min(4, n) + 1):
        byte = data[n - back]
        if byte < 0x80:
            return n
        if byte >= 0xC0:  # a lead byte: is its sequence complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return n if back >= need else n - back
    return n  # not UTF-8 (or a long run of continuation bytes): pass it on
