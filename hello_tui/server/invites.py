"""One-time invite codes for an invite-only server, kept hashed in a file.

``hello-tui serve invite`` appends codes to ``<data dir>/invites`` and the
running server consumes them from the same file (under a lock, rewritten
atomically), so the CLI and the server need no other channel. Only SHA-256
digests are stored: the file never lets anyone recover a code. Each line is
``<hex digest> <expiry unix seconds>``. This module is stdlib + hello_tui.util
only, so the CLI can import it without aiohttp.

With several instances on Redis, ``hello-tui serve invite --redis URL`` puts
the digests in Redis instead (``{prefix}invite:{digest}``, expiring with the
code: :func:`mint_in_redis`), and an instance takes a code with one ``DEL``
(``RedisStore.consume_invite``), which succeeds for exactly one caller: a
code works once across every instance. An instance checks Redis first, then
its own file (codes minted there before Redis, or without ``--redis``).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path

from hello_tui.server.ids import new_id
from hello_tui.util.atomic import atomic_write_text
from hello_tui.util.locking import file_lock


def digest(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


class InviteBook:
    """Invite digests in a file (``path``) or, without one, in memory."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: dict[str, float] = {}

    def _read(self) -> dict[str, float]:
        if self.path is None:
            return dict(self._memory)
        entries: dict[str, float] = {}
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return entries
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2:
                try:
                    entries[parts[0]] = float(parts[1])
                except ValueError:
                    continue
        return entries

    def _write(self, entries: dict[str, float]) -> None:
        if self.path is None:
            self._memory = entries
            return
        atomic_write_text(self.path, "".join(f"{d} {int(u)}\n" for d, u in entries.items()))

    def create(self, count: int, ttl: float) -> list[str]:
        """Mint ``count`` fresh codes valid for ``ttl`` seconds; only digests are kept."""
        codes = [new_id() for _ in range(count)]
        until = time.time() + ttl
        self._mutate(lambda entries: entries.update({digest(c): until for c in codes}))
        return codes

    def consume(self, code: str) -> bool:
        """True once per valid code: it is removed as it is used."""
        wanted = digest(code)
        found: list[str] = []

        def take(entries: dict[str, float]) -> None:
            now = time.time()
            for d in [d for d, until in entries.items() if until <= now]:
                del entries[d]
            for d in entries:
                if hmac.compare_digest(d, wanted):
                    found.append(d)
            for d in found:
                del entries[d]

        self._mutate(take)
        return bool(found)

    def _mutate(self, change: Callable[[dict[str, float]], object]) -> None:
        if self.path is None:
            entries = self._read()
            change(entries)
            self._write(entries)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.path.with_name(self.path.name + ".lock"), timeout=5.0):
            entries = self._read()
            change(entries)
            self._write(entries)
