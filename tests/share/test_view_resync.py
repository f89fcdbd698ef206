"""A viewer that dropped frames keeps asking for a snapshot until one lands.

The case CI met under load: the snapshot answering the viewer's ask arrived
while its emulation budget was still spent, was dropped in turn, and — the
ask being rate-limited to one a second — nothing asked again, so the view
stayed stuck. A fake channel and clock; the retry runs on the real loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hello_tui.share.session import ShareSession
from hello_tui.share.wire import (
    SCREEN_BYTES,
    SCREEN_SNAPSHOT,
    Control,
    encode_control,
    encode_screen,
)


class FakeChannel:
    readyState = "open"

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.handlers: dict[str, Any] = {}

    def on(self, event: str, handler: Any) -> None:
        self.handlers[event] = handler

    def send(self, data: Any) -> None:
        self.sent.append(data)

    def deliver(self, data: Any) -> None:
        self.handlers["message"](data)

    def asks(self) -> int:
        return sum(1 for d in self.sent if isinstance(d, str) and "share-sync" in d)


async def test_a_dropped_snapshot_is_asked_for_again() -> None:
    now = [100.0]
    viewer = ShareSession(
        on_change=lambda _c: None, on_notice=lambda _n: None, clock=lambda: now[0]
    )
    channel = FakeChannel()
    viewer.attach(channel)
    channel.deliver(encode_control(Control("share-start", 80, 24, "t")))
    viewer._view.spend(10.0)  # budget spent: everything is dropped for a while
    channel.deliver(encode_screen(SCREEN_BYTES, b"flood"))
    assert channel.asks() == 1
    channel.deliver(encode_screen(SCREEN_SNAPSHOT, b"\x1bcfirst"))  # dropped: still over budget
    assert channel.asks() == 1  # within the second: not sent at once...
    await asyncio.sleep(1.3)
    assert channel.asks() == 2  # ...but at its end
    now[0] += 60.0  # the budget refills
    channel.deliver(encode_screen(SCREEN_BYTES, b"stale"))  # still unsynced: dropped, asks
    assert channel.asks() == 3
    channel.deliver(encode_screen(SCREEN_SNAPSHOT, b"\x1bcresynced"))
    assert viewer.snapshot("remote")[1].text().startswith("resynced")
    await asyncio.sleep(1.3)
    assert channel.asks() == 3  # synced: no more asks
    await viewer.close()
