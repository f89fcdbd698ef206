"""Pilot's keys without Textual's wait for an idle CPU.

``Pilot.press`` waits twice per key (``Pilot.pause()`` once) until the
process looks idle (under 5 % of a core over 1/50 s, textual/_wait.py), else
for ``max_sleep`` = 1 s. With a live call in the test process (both peers, the
server, audio) it never looks idle, so every key cost 2 s.

In tests/tui (the autouse ``quick_pilot`` fixture) that wait is replaced by what
it stands in for: the app has handled what the key caused. :func:`settle` lets
the posted key land, then waits until the app and every widget of the current
screen have processed their queued messages (each finishing the handler it is
in), again while any of them has more queued (a key forwarded to a widget, a
pushed screen's mount), up to ``ROUNDS``. The CPU-idle wait follows as before,
capped at ``IDLE_CAP`` after a key; ``pause()`` keeps Textual's full wait (its
callers read what is drawn; few run during a call). Tests that read what a key
leads to over the network still wait for it with ``wait_until``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from textual import app as textual_app
from textual import pilot as textual_pilot
from textual._context import active_app
from textual._wait import SLEEP_GRANULARITY
from textual._wait import wait_for_idle as cpu_idle
from textual.pilot import Pilot

ROUNDS = 20  # drain rounds per wait (a key's cascade takes two or three)
IDLE_CAP = 0.05  # s: the CPU-idle wait's bound here (Textual's is 1 s)


def _pumps(app: Any) -> list[Any]:
    try:
        screen = app.screen
    except Exception:  # no screen yet, or the app is closing
        return [app]
    return [app, *screen.walk_children(with_self=True)]


def _quiet(app: Any) -> bool:
    return all(p._message_queue.empty() and p._pending_message is None for p in _pumps(app))


async def settle(app: Any) -> None:
    """Until the app and the current screen's widgets have nothing queued."""
    pilot = Pilot(app)
    for _ in range(ROUNDS):
        for _ in range(3):  # a key posted with run_coroutine_threadsafe lands in two
            await asyncio.sleep(0)
        if not await pilot._wait_for_screen():
            return  # the app raised: run_test re-raises it
        if _quiet(app):
            return


async def wait_for_idle(min_sleep: float = SLEEP_GRANULARITY, max_sleep: float = 1.0) -> None:
    """For ``Pilot.press``: settle the app, then a brief CPU-idle wait."""
    app = active_app.get(None)
    if app is not None and app.is_running:
        await settle(app)
    await cpu_idle(min(min_sleep, IDLE_CAP), min(max_sleep, IDLE_CAP))


async def wait_for_idle_settled(
    min_sleep: float = SLEEP_GRANULARITY, max_sleep: float = 1.0
) -> None:
    """For ``Pilot.pause()``/``exit``: settle the app, then Textual's own CPU-idle wait,
    unbounded as before (what a test reads after ``pause()`` is drawn: snapshots, toasts)."""
    app = active_app.get(None)
    if app is not None and app.is_running:
        await settle(app)
    await cpu_idle(min_sleep, max_sleep)


def install(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use these waits in ``Pilot.press`` (App._press_keys) and ``Pilot.pause`` for one test."""
    monkeypatch.setattr(textual_app, "wait_for_idle", wait_for_idle)
    monkeypatch.setattr(textual_pilot, "wait_for_idle", wait_for_idle_settled)
