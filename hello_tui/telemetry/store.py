"""What telemetry keeps on this device, under ``DATA_DIR/telemetry/``.

- ``state.json``: ``asked`` (the first-run question was answered) and
  ``install_secret`` (random; derives the daily id; never sent).
- ``queue.json``: bodies waiting to be sent (kind, endpoint, the exact body,
  attempts); at most :data:`QUEUE_MAX`, the oldest dropped.
- ``sent.json``: bodies that were sent (kind, endpoint, time, the exact
  body); the last :data:`SENT_MAX`.
- ``crashes/*.json``: local crash reports, each the exact body
  ``hello-tui privacy crashes send`` would send; at most :data:`CRASHES_MAX`.

Every write is atomic (``util.atomic``) and every read-modify-write holds an
inter-process lock (``util.locking``), so two hello-tui processes never lose
each other's entries. A file that does not decode is treated as empty and
replaced (these are caches of what was sent, not user data).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hello_tui.util.atomic import atomic_write_text
from hello_tui.util.locking import file_lock

QUEUE_MAX = 20  # bodies waiting; beyond, the oldest go
SENT_MAX = 100  # bodies kept for `hello-tui privacy`
CRASHES_MAX = 20
MAX_ATTEMPTS = 5  # a body that failed on this many runs is dropped


@dataclass(frozen=True, slots=True)
class Entry:
    """One body, queued or sent. ``body`` is the exact text on the wire."""

    kind: str  # "call" | "feedback" | "crash"
    url: str
    body: str
    at: float  # queued (queue) or sent (sent log), Unix time
    attempts: int = 0
    id: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "url": self.url, "at": self.at,
                "attempts": self.attempts, "body": self.body}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Entry:
        return cls(
            kind=str(data["kind"]),
            url=str(data["url"]),
            body=str(data["body"]),
            at=float(data.get("at", 0.0)),
            attempts=int(data.get("attempts", 0)),
            id=str(data.get("id", "")),
        )


class TelemetryStore:
    """The telemetry files of one profile."""

    def __init__(self, data_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.dir = Path(data_dir) / "telemetry"
        self.crash_dir = self.dir / "crashes"
        self._lock = self.dir / ".lock"
        self._clock = clock

    # ------------------------------------------------------------ json files
    def _read(self, name: str, default: Any) -> Any:
        try:
            return json.loads((self.dir / name).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return default

    def _write(self, name: str, value: Any) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write_text(self.dir / name, json.dumps(value, ensure_ascii=False, indent=1) + "\n")

    # ------------------------------------------------------------ state
    def state(self) -> dict[str, Any]:
        data = self._read("state.json", {})
        return data if isinstance(data, dict) else {}

    @property
    def asked(self) -> bool:
        return bool(self.state().get("asked"))

    def mark_asked(self) -> None:
        with file_lock(self._lock):
            state = self.state()
            state["asked"] = True
            self._write("state.json", state)

    def install_secret(self) -> str:
        """The random secret the daily id is derived from (created on first use)."""
        secret = self.state().get("install_secret")
        if isinstance(secret, str) and len(secret) == 32:
            return secret
        with file_lock(self._lock):
            state = self.state()
            secret = state.get("install_secret")
            if not (isinstance(secret, str) and len(secret) == 32):
                secret = secrets.token_hex(16)
                state["install_secret"] = secret
                self._write("state.json", state)
            return secret

    # ------------------------------------------------------------ queue
    def _entries(self, name: str) -> list[Entry]:
        data = self._read(name, [])
        entries = []
        for item in data if isinstance(data, list) else []:
            try:
                entries.append(Entry.from_json(item))
            except (KeyError, TypeError, ValueError):
                continue
        return entries

    def queued(self) -> list[Entry]:
        return self._entries("queue.json")

    def sent(self) -> list[Entry]:
        """What was sent, oldest first (at most :data:`SENT_MAX`)."""
        return self._entries("sent.json")

    def enqueue(self, kind: str, url: str, body: bytes | str) -> Entry:
        text = body.decode() if isinstance(body, bytes) else body
        entry = Entry(kind, url, text, self._clock(), 0, secrets.token_hex(8))
        with file_lock(self._lock):
            entries = [*self.queued(), entry][-QUEUE_MAX:]
            self._write("queue.json", [e.to_json() for e in entries])
        return entry

    def take_all(self) -> list[Entry]:
        """Remove and return every queued entry (the sender puts failures back)."""
        with file_lock(self._lock):
            entries = self.queued()
            if entries:
                self._write("queue.json", [])
            return entries

    def put_back(self, entries: list[Entry]) -> None:
        """Return entries that could not be sent, one attempt older; those that
        used :data:`MAX_ATTEMPTS` are dropped."""
        keep = [
            Entry(e.kind, e.url, e.body, e.at, e.attempts + 1, e.id)
            for e in entries
            if e.attempts + 1 < MAX_ATTEMPTS
        ]
        if not keep:
            return
        with file_lock(self._lock):
            merged = [*keep, *self.queued()][-QUEUE_MAX:]
            self._write("queue.json", [e.to_json() for e in merged])

    def clear_queue(self, kind: str | None = None) -> int:
        """Drop queued bodies (of ``kind`` only, if given); returns how many."""
        with file_lock(self._lock):
            entries = self.queued()
            keep = [e for e in entries if kind is not None and e.kind != kind]
            if len(keep) != len(entries):
                self._write("queue.json", [e.to_json() for e in keep])
            return len(entries) - len(keep)

    def record_sent(self, entry: Entry) -> None:
        done = Entry(entry.kind, entry.url, entry.body, self._clock(), entry.attempts, entry.id)
        with file_lock(self._lock):
            entries = [*self.sent(), done][-SENT_MAX:]
            self._write("sent.json", [e.to_json() for e in entries])

    # ------------------------------------------------------------ crashes
    def save_crash(self, body: bytes) -> Path:
        self.crash_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock()))
        path = self.crash_dir / f"crash-{stamp}-{secrets.token_hex(3)}.json"
        atomic_write_text(path, body.decode() + "\n")
        for old in self.crashes()[:-CRASHES_MAX]:
            old.unlink(missing_ok=True)
        return path

    def crashes(self) -> list[Path]:
        """Saved crash reports, oldest first."""
        try:
            return sorted(self.crash_dir.glob("crash-*.json"))
        except OSError:
            return []

    def clear_crashes(self) -> int:
        paths = self.crashes()
        for path in paths:
            path.unlink(missing_ok=True)
        return len(paths)
