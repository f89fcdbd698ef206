"""Hangup decided on the call record this instance last wrote (no read first):
two RedisStores on one redis-server play two instances. A stale record may
choose the path, never the outcome: the compare-and-set in ``finish``
re-checks the state and that the one hanging up is still a party."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from hello_tui.server.errors import Refusal
from hello_tui.server.hub import Hub
from hello_tui.server.records import CallRecord
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.services.redis import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
async def stores(redis_srv: RedisServer) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    prefix = f"h{time.monotonic_ns()}:"
    here, there = RedisStore(redis_srv.url, prefix=prefix), RedisStore(redis_srv.url, prefix=prefix)
    yield here, there
    await here.close()
    await there.close()


def _connected(caller: str = "sess-caller", callee: str = "sess-callee") -> CallRecord:
    now = time.time()
    return CallRecord(call_id="call-0001", state="connected", caller=caller, callee=callee,
                      until=now + 60, caller_key="kA", callee_key="kB")  # fmt: skip


def _party(session_id: str) -> Any:
    # What hangup reads of the session on these paths: its id, and ok() on a ref.
    return SimpleNamespace(id=session_id, ok=lambda ref: None)


async def test_a_party_hangs_up_on_the_record_it_wrote_without_a_read(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    here, _ = stores
    hub = Hub(ServerSettings(), here)
    await here.put_call(_connected())  # remembered, as after `connected`

    async def no_read(call_id: str) -> CallRecord | None:
        raise AssertionError("read the record again")

    here.get_call = no_read  # type: ignore[method-assign]
    await hub.calls.hangup(_party("sess-caller"), p.Hangup(call_id="call-0001"))
    assert await here._cmd("GET", here._k("call", "call-0001")) is None


async def test_a_stale_record_never_lets_a_former_party_end_the_call(
    stores: tuple[RedisStore, RedisStore],
) -> None:
    here, there = stores
    hub = Hub(ServerSettings(), here)
    await here.put_call(_connected(caller="sess-zombie"))
    # The caller's device came back on another instance and took its place there.
    await there.update_call(
        "call-0001", lambda rec: msgspec.structs.replace(rec, caller="sess-back")
    )
    with pytest.raises(Refusal) as refused:
        await hub.calls.hangup(_party("sess-zombie"), p.Hangup(call_id="call-0001"))
    assert refused.value.code == "not-allowed"
    still = await there.get_call("call-0001")
    assert still is not None and still.caller == "sess-back"


async def test_a_call_ended_elsewhere_is_unknown(stores: tuple[RedisStore, RedisStore]) -> None:
    here, there = stores
    hub = Hub(ServerSettings(), here)
    await here.put_call(_connected())
    await there.update_call("call-0001", lambda rec: None)  # ended on the other instance
    with pytest.raises(Refusal) as refused:
        await hub.calls.hangup(_party("sess-caller"), p.Hangup(call_id="call-0001"))
    assert refused.value.code == "unknown-call"
