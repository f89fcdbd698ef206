"""The shared terminal's screen: snapshots, the plain-flood cut and the fast draw
are exact (compared with pyte itself on random terminal traffic)."""

from __future__ import annotations

import random

import pyte
import pytest

from hello_tui.share.terminal import Terminal, utf8_cut

PIECES = [
    b"hello ", b"\r\n", b"\n", b"\x1b[31mred\x1b[0m", b"\x1b[1;44mX", b"\x1b[5;10H",
    "été".encode(), b"\x1b[2J", b"\x1b[38;5;200mpink", b"\x1b[38;2;1;2;3mrgb", "漢字".encode(),
    b"\x1b[K", b"\t", b"\x1b[?25l", b"\x1b[4h", b"\x1b[4l", b"\x1b[3;8r", b"\x1b[r", b"x" * 85,
    b"\x1b[?7l", b"\x1b[?7h", b"\x1b(0lqk\x1b(B", b"\x1b[?6h", b"\x1b[?6l", b"\x1b[93;104m",
]  # fmt: skip


def _traffic(rng: random.Random, n: int) -> bytes:
    return b"".join(rng.choice(PIECES) for _ in range(n))


def _same(a: Terminal, b: pyte.Screen | Terminal) -> None:
    """Same text, cursor and attributes of every visible character (pyte keeps
    the attributes of some blank cells it never shows: not compared)."""
    screen = b.screen if isinstance(b, Terminal) else b
    assert (a.screen.cursor.x, a.screen.cursor.y) == (screen.cursor.x, screen.cursor.y)
    assert a.screen.cursor.attrs == screen.cursor.attrs
    for y in range(a.rows):
        for x in range(a.cols):
            cell = a.screen.buffer[y][x]
            if cell.data.strip():
                assert cell == screen.buffer[y][x], (x, y)


@pytest.mark.parametrize("seed", range(40))
def test_a_snapshot_then_the_same_bytes_give_the_same_screen(seed: int) -> None:
    rng = random.Random(seed)
    sharer = Terminal(40, 10)
    sharer.feed(_traffic(rng, 60))
    viewer = Terminal(40, 10)
    viewer.feed(b"junk the viewer had \x1b[7m before")
    viewer.reset()
    viewer.feed(sharer.snapshot())
    assert viewer.text() == sharer.text()
    _same(sharer, viewer)
    more = _traffic(rng, 20)  # and they stay in step afterwards
    sharer.feed(more)
    viewer.feed(more)
    assert viewer.text() == sharer.text()
    _same(sharer, viewer)


@pytest.mark.parametrize("seed", range(60))
def test_the_plain_flood_cut_changes_nothing_on_screen(seed: int) -> None:
    rng = random.Random(seed)
    whole, cut = Terminal(30, 6), Terminal(30, 6)
    before = _traffic(rng, 10)
    whole.feed(before)
    cut.feed(before)
    lines = [b"y\r\n", b"abc", b"x" * 50, b"\r\n\r\n", b"\n", b"\t"]
    flood = b"".join(rng.choice(lines) for _ in range(rng.randint(0, 80)))
    flood += rng.choice([b"", b"\x1b[31mz", b"\x1b[H!", b"\x1b[2;1Hover"])
    whole.feed(flood)
    prefix, skip = cut.plain_cut(flood)
    cut.feed(prefix + flood[skip:])
    assert cut.text() == whole.text()
    _same(whole, cut)


def test_a_long_flood_is_cut_to_its_last_screenful() -> None:
    term = Terminal(80, 24)
    flood = b"".join(b"line %d\r\n" % i for i in range(100_000))
    prefix, skip = term.plain_cut(flood)
    assert len(flood) - skip < 30 * 24 and prefix == b"\x1b[24;1H"
    term.feed(prefix + flood[skip:])
    assert term.text().split("\n")[-2:] == ["line 99999", ""]  # the cursor on the last row


def test_no_cut_mid_sequence_or_with_margins() -> None:
    flood = b"y\r\n" * 200
    term = Terminal(80, 24)
    term.feed(b"\x1b[3")  # the parser is inside a sequence: flood[0] belongs to it
    assert term.plain_cut(flood) == (b"", 0)
    term = Terminal(80, 24)
    term.feed(b"\x1b[2;20r")  # a scroll region: lines above and below it stay
    assert term.plain_cut(flood) == (b"", 0)


@pytest.mark.parametrize("seed", range(60))
def test_the_fast_draw_is_pytes_draw(seed: int) -> None:
    rng = random.Random(seed)
    ours, theirs = Terminal(30, 6), pyte.Screen(30, 6)
    data = _traffic(rng, 50)
    ours.feed(data)
    pyte.ByteStream(theirs).feed(data)
    for y in range(6):
        assert [ours.screen.buffer[y][x] for x in range(30)] == [
            theirs.buffer[y][x] for x in range(30)
        ]
    assert (ours.screen.cursor.x, ours.screen.cursor.y) == (theirs.cursor.x, theirs.cursor.y)


def test_text_survives_a_lone_wide_character_tail() -> None:
    term = Terminal(10, 2)
    term.feed("漢".encode() + b"\x1b[1;1Hx")  # overwrites the head: a tail cell stays
    assert term.text().splitlines()[0] == "x"


@pytest.mark.parametrize(
    ("data", "n"),
    [(b"", 0), (b"abc", 3), ("é".encode(), 2), ("é".encode()[:1], 0), (b"a" + "漢".encode()[:2], 1),
     (b"a" + "😀".encode()[:3], 1), (b"a" + "😀".encode(), 5), (b"\x80\x80\x80\x80\x80", 5)],
)  # fmt: skip
def test_utf8_cut(data: bytes, n: int) -> None:
    assert utf8_cut(data) == n


def test_size_bounds() -> None:
    with pytest.raises(ValueError):
        Terminal(0, 24)
    with pytest.raises(ValueError):
        Terminal(80, 10_000)


def test_a_snapshot_too_long_keeps_the_text_without_colours() -> None:
    term = Terminal(120, 40)
    for y in range(40):
        term.feed(b"".join(b"\x1b[38;2;%d;%d;%dm#" % (x, y, x + y) for x in range(119)) + b"\r\n")
    full = term.snapshot()
    plain = term.snapshot(limit=len(full) - 1)
    assert len(plain) < len(full) // 5
    viewer = Terminal(120, 40)
    viewer.feed(plain)
    assert viewer.text() == term.text() and viewer.cursor == term.cursor
    assert viewer.screen.buffer[0][0].fg == "default"
