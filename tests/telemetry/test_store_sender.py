"""The local queue and log, and sending: capped, atomic, retried within bounds,
and a down server loses nothing (it only waits for the next run)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from hello_tui.telemetry import store as st
from hello_tui.telemetry.sender import endpoint, flush
from hello_tui.telemetry.store import TelemetryStore
from tests.server.test_telemetry import body, report
from tests.telemetry.conftest import TelServer


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_endpoint() -> None:
    assert endpoint("ws://127.0.0.1:5000/ws", "call") == "http://127.0.0.1:5000/telemetry"
    assert endpoint("wss://h.example/hello/ws", "feedback") == "https://h.example/hello/feedback"
    assert endpoint("http://h:1", "crash") == "http://h:1/crash"


def test_queue_and_log_are_capped(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path)
    for i in range(st.QUEUE_MAX + 5):
        store.enqueue("call", "http://x/telemetry", f'{{"n":{i}}}')
    queued = store.queued()
    assert len(queued) == st.QUEUE_MAX and queued[0].body == '{"n":5}'  # oldest dropped
    for entry in store.take_all():
        store.record_sent(entry)
    for entry in store.queued():
        raise AssertionError(entry)
    for i in range(st.SENT_MAX):
        store.record_sent(st.Entry("call", "u", f"{i}", 0.0))
    assert len(store.sent()) == st.SENT_MAX
    json.loads((store.dir / "sent.json").read_text())  # one valid file, written whole


def test_retries_are_bounded(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path)
    store.enqueue("call", "http://x/telemetry", "{}")
    for attempt in range(1, st.MAX_ATTEMPTS):
        store.put_back(store.take_all())
        assert [e.attempts for e in store.queued()] == [attempt]
    store.put_back(store.take_all())
    assert store.queued() == []


def test_install_secret_is_stable_and_private(tmp_path: Path) -> None:
    store = TelemetryStore(tmp_path)
    secret = store.install_secret()
    assert secret == TelemetryStore(tmp_path).install_secret() and len(secret) == 32
    assert (store.dir / "state.json").stat().st_mode & 0o077 == 0


async def test_down_server_keeps_the_report_then_it_goes(
    tmp_path: Path, tel_server: TelServer
) -> None:
    store = TelemetryStore(tmp_path)
    data = body(report(1))
    store.enqueue("call", f"http://127.0.0.1:{_closed_port()}/telemetry", data)
    assert await flush(store) == {"sent": 0, "refused": 0, "failed": 1}
    (entry,) = store.queued()
    assert entry.attempts == 1 and entry.body == data.decode() and store.sent() == []

    # The next run: the server is back (same body, now to a live server).
    store.take_all()
    store.put_back([st.Entry("call", tel_server.base + "/telemetry", entry.body, entry.at, -1)])
    assert await flush(store) == {"sent": 1, "refused": 0, "failed": 0}
    assert store.queued() == []
    (sent,) = store.sent()
    assert tel_server.bodies() == [sent.body.encode()] == [data]  # byte for byte
    assert sum(tel_server.aggregator.calls["outcome"].values()) == 1


async def test_a_refused_body_is_dropped(tmp_path: Path, tel_server: TelServer) -> None:
    store = TelemetryStore(tmp_path)
    store.enqueue("call", tel_server.base + "/telemetry", '{"v": 1}')
    assert await flush(store) == {"sent": 0, "refused": 1, "failed": 0}
    assert store.queued() == [] and store.sent() == []
