"""``calls._settle``: a call's reads are started together and each one awaited,
so an error in one still leaves none pending; a cancelled caller closes the rest."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hello_tui.server.calls import _settle


async def test_every_step_is_awaited_and_the_first_error_raised() -> None:
    done: list[str] = []

    async def ok(name: str) -> str:
        await asyncio.sleep(0)
        done.append(name)
        return name

    async def broken(name: str) -> Any:
        done.append(name)
        raise ConnectionError(name)

    assert await _settle(ok("a"), ok("b")) == ["a", "b"]
    done.clear()
    with pytest.raises(ConnectionError, match="first"):
        await _settle(ok("a"), broken("first"), broken("second"), ok("z"))
    assert done == ["a", "first", "second", "z"]  # none left un-awaited


async def test_cancelled_closes_what_it_did_not_reach() -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.Event().wait()

    async def never() -> None:  # pragma: no cover - closed, never run
        raise AssertionError("ran")

    rest = never()
    task = asyncio.ensure_future(_settle(stuck(), rest))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rest.cr_frame is None  # closed: no "never awaited" warning
