"""Random identifiers: their size, their alphabet, and never a leading dash."""

from __future__ import annotations

import re

import pytest

from hello_tui.server import ids
from hello_tui.server.ids import new_id

BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


@pytest.mark.parametrize(("nbytes", "chars"), [(16, 22), (8, 11), (32, 43), (1, 2)])
def test_size_and_alphabet(nbytes: int, chars: int) -> None:
    value = new_id(nbytes)
    assert len(value) == chars and BASE64URL.match(value)


def test_default_is_128_bits() -> None:
    assert len(new_id()) == 22  # 16 bytes as unpadded base64url


def test_a_leading_dash_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    draws = iter([b"\xf8\x00\x00", b"\xfb\xff\xff", b"\x00\x10\x83"])  # "-…", "-…", "ABCD"
    asked: list[int] = []

    def random(nbytes: int) -> bytes:
        asked.append(nbytes)
        return next(draws)

    monkeypatch.setattr(ids, "_random", random)
    assert new_id(3) == "ABCD"
    assert asked == [3, 3, 3]


def test_ids_differ_across_a_fork() -> None:
    import os

    new_id()  # the pool is filled here
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child != new_id()


def test_never_starts_with_a_dash_over_many_draws() -> None:
    values = {new_id(1) for _ in range(2000)}  # 1 byte: a dash every 64 draws or so
    assert len(values) > 64 and not any(v.startswith("-") for v in values)
