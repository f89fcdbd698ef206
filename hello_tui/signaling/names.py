"""The account-name policy, shared by the server (which enforces it) and the client
(which can say why before asking). Pure: imports nothing from the client.

A name is shown to other people (a caller's name on the callee's screen), so it
must be printable text that looks like what it is:

- NFKC-normalised (``ｆｕｌｌ`` → ``full``, ``ﬁ`` → ``fi``);
- no control (Cc), format (Cf: bidi overrides and isolates, zero-width spaces and
  joiners, BOM), line/paragraph separator, private-use, surrogate or unassigned
  code point, nor any other default-ignorable one (Hangul fillers, variation
  selectors): nothing invisible, nothing that reorders or hides text;
- single spaces between words, none at the ends, no other blank;
- at most :data:`MAX_COMBINING` combining marks in a row (no "Zalgo" towers);
- 1 to :data:`MAX_NAME_CHARS` characters and :data:`MAX_NAME_BYTES` UTF-8 bytes.

Look-alikes: :func:`fold` maps a name to its UTS #39 confusable skeleton,
case-insensitively, so ``MUM@example.org``, ``mum@еxample.org`` (Cyrillic е) and
``rnum@example.org`` fold to the same string. The server keys accounts by that
fold: a look-alike of an existing name *is* that name, and is refused as taken.
The skeleton table is Unicode's ``confusables.txt`` (UTS #39 17.0.0), shipped as
package data under the Unicode License v3 (``data/LICENSE-Unicode.txt``).
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable
from typing import Final

MAX_NAME_CHARS: Final = 80
MAX_NAME_BYTES: Final = 254  # the protocol's cap on any name field
MAX_COMBINING: Final = 4

# General categories never allowed: control, format, surrogate, private use,
# unassigned (in this Python's Unicode), line and paragraph separators.
_BANNED_CATEGORIES: Final = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

# Default_Ignorable_Code_Point (DerivedCoreProperties.txt) outside the categories
# above: invisible letters and marks (Hangul fillers, variation selectors, ...).
_IGNORABLE: Final = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip

_KIND = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (bidi, zero-width)",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    "Cn": "an unassigned code point",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


class BadName(ValueError):
    """The name breaks the policy; the message says why, in one line."""


def ignorable(char: str) -> bool:
    """A default-ignorable code point: drawn as nothing."""
    cp = ord(char)
    if cp < 0x00AD:  # the first one: every ASCII name takes this path
        return False
    return any(lo <= cp <= hi for lo, hi in _IGNORABLE)


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def check_name(name: str) -> str:
    """The name as it will be shown (NFKC), or :class:`BadName` saying why not."""
    if len(name) > 4 * MAX_NAME_BYTES:  # do not normalise megabytes to refuse them
        raise BadName(f"a name has at most {MAX_NAME_CHARS} characters")
    text = unicodedata.normalize("NFKC", name)
    if not text:
        raise BadName("empty name")
    if len(text) > MAX_NAME_CHARS or len(text.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise BadName(f"a name has at most {MAX_NAME_CHARS} characters")
    combining = 0
    for index, char in enumerate(text):
        category = unicodedata.category(char)
        if category in _BANNED_CATEGORIES:
            raise BadName(f"{_describe(char)} is {_KIND[category]}: not allowed in a name")
        if ignorable(char):
            raise BadName(f"{_describe(char)} is an invisible character: not allowed in a name")
        if category == "Zs":
            if char != " ":
                raise BadName(f"{_describe(char)} is an unusual space: use a plain space")
            if index == 0 or index == len(text) - 1:
                raise BadName("a name cannot start or end with a space")
            if text[index - 1] == " ":
                raise BadName("a name cannot have two spaces in a row")
        if category in ("Mn", "Me"):
            combining += 1
            if combining > MAX_COMBINING:
                raise BadName(f"more than {MAX_COMBINING} combining marks in a row")
        else:
            combining = 0
    return text


def valid_name(name: str) -> bool:
    try:
        check_name(name)
    except BadName:
        return False
    return True


def _table_text() -> str:
    from importlib import resources  # only when a name is first folded: --help stays light

    data = resources.files("hello_tui.signaling") / "data" / "confusables.txt"
    return data.read_text("utf-8-sig")


def _parse(lines: Iterable[str]) -> dict[str, str]:
    """confusables.txt lines: source code point → prototype (its skeleton)."""
    table: dict[str, str] = {}
    for line in lines:
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 2 or not fields[0].strip():
            continue
        source = chr(int(fields[0], 16))
        table[source] = "".join(chr(int(cp, 16)) for cp in fields[1].split())
    return table


@functools.cache
def _prototypes() -> dict[str, str]:
    """The whole table (~6,300 entries: tens of ms to parse)."""
    return _parse(_table_text().splitlines())


# The table's entries whose source is an ASCII code point, as confusables.txt
# 17.0.0 has them (tests/signaling/test_names.py checks them against the file):
# all an ASCII string's skeleton reads. Every name a call signs or checks goes
# through fold(); parsing the whole file took 40-150 ms at a client's first call
# (its offer's signature, the callee's pin lookup), between dialling and ringing.
ASCII_PROTOTYPES: Final = {
    "`": "'", '"': "''", "|": "l", "1": "l", "I": "l", "0": "O", "%": "\u00ba/\u2080", "m": "rn",
}  # fmt: skip


def skeleton(text: str) -> str:
    """UTS #39 skeleton: NFD, default-ignorables removed, each character replaced
    by its prototype, NFD again. Equal skeletons: confusable strings. Not for display."""
    # NFD keeps ASCII as it is and no ASCII character is ignorable: an ASCII
    # string maps through the ASCII sources alone (a non-ASCII prototype they
    # produce is met by the full table in the next round of fold()).
    table = ASCII_PROTOTYPES if text.isascii() else _prototypes()
    nfd = unicodedata.normalize("NFD", text)
    mapped = "".join(table.get(c, c) for c in nfd if not ignorable(c))
    return unicodedata.normalize("NFD", mapped)


@functools.lru_cache(maxsize=4096)
def fold(name: str) -> str:
    """The form two names share when they look alike, in any case.

    NFKC, then the skeleton of the name *as written* (so capitals' look-alikes
    count: Cyrillic ``М`` is ``M``), then upper case → skeleton → case fold →
    skeleton until nothing changes (``0`` → ``O`` → ``o``; ``I`` → ``l`` so
    ``alice``, ``ALICE`` and ``aIice`` meet). Latin names are case-insensitive;
    a letter whose capital and small forms look like two different Latin
    letters (Greek ``Η``/``η``) keeps its case apart, as it looks different.
    """
    # Cached: the server folds the callee's name on every call and the names
    # in use are few; an uncached fold costs ~15 µs (six skeletons).
    text = skeleton(unicodedata.normalize("NFKC", name).strip())
    for _ in range(6):  # a fixed point within two or three rounds
        folded = skeleton(skeleton(text.upper()).casefold())
        if folded == text:
            break
        text = folded
    return text


def normalize_name(name: str) -> str:
    """One key per look, as the server compares names (:func:`fold`), so a
    look-alike meets the same pin and the same identity proof."""
    return fold(name.strip())


def confusable(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` would be the same account."""
    return fold(a) == fold(b)


__all__ = [
    "MAX_COMBINING",
    "MAX_NAME_BYTES",
    "MAX_NAME_CHARS",
    "BadName",
    "check_name",
    "confusable",
    "fold",
    "ignorable",
    "normalize_name",
    "skeleton",
    "valid_name",
]
