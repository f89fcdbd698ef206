"""The one-arena setting defers to the user's own (util/malloc_arenas.py); that it
takes effect in a real call is tests/call/test_lean_imports.py's."""

from __future__ import annotations

import pytest

from hello_tui.util.malloc_arenas import limit_malloc_arenas, user_arena_setting


@pytest.mark.parametrize(
    ("var", "value"),
    [("MALLOC_ARENA_MAX", "4"), ("GLIBC_TUNABLES", "glibc.malloc.arena_max=4")],
)
def test_the_users_arena_setting_wins(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str
) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    assert not user_arena_setting()
    monkeypatch.setenv(var, value)
    assert user_arena_setting()
    assert limit_malloc_arenas(1) is False  # left to glibc, which read it at start
