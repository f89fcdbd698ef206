"""A call's reads (the caller's approval chain, the callee's account and
devices) leave in the batch that takes the pending-call quota, not in a round
trip of their own after it; a refused call leaves none of them pending. A
RedisStore on a real redis-server, its quotas shared (as with several
instances)."""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from hello_tui.server.errors import Refusal
from hello_tui.server.hub import Hub
from hello_tui.server.settings import ServerSettings
from hello_tui.server.store.redis import RedisStore
from hello_tui.signaling import protocol as p
from tests.services.redis import RedisServer, redis_server


@pytest.fixture(scope="module")
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


@pytest.fixture
async def store(redis_srv: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_srv.url, prefix=f"r{time.monotonic_ns()}:")
    yield store
    await store.close()


def _caller(pushed: list[p.Message]) -> Any:
    # What placing a call reads of the session: a signed-in caller (so its
    # approval chain is read too), its network and owner for the quotas.
    return SimpleNamespace(
        id="sess-caller", name="alice", account_key="acct-alice", public_key="kA",
        network="net-1", owner="a:acct-alice", push=pushed.append,
    )  # fmt: skip


def _count_batches(store: RedisStore) -> list[list[str]]:
    assert store._resp is not None
    batches: list[list[str]] = []
    submit = store._resp.submit

    def counting(batch: Any) -> None:
        batches.append([str(command[0]) for command, _ in batch])
        submit(batch)

    store._resp.submit = counting  # type: ignore[method-assign]
    return batches


async def test_the_reads_leave_with_the_quota(store: RedisStore) -> None:
    settings = ServerSettings(shared_secret=True, pending_calls_per_network=20)
    hub = Hub(settings, store)
    assert hub.quotas.shared  # the quotas are scripts on the hot connection
    assert await store._cmd("PING") == b"PONG"  # connected, scripts loaded
    batches = _count_batches(store)
    pushed: list[p.Message] = []
    await hub.calls.place(_caller(pushed), p.Call(to="bob", offer="v=0 SDP", ref=1))
    # Nobody called bob: the call ends unavailable once the reads are in.
    assert [type(m) for m in pushed] == [p.CallCreated, p.CallEnded]
    # The three reads with the network's quota; then the caller's quota. (Read
    # after the quotas, the reads took a round trip of their own: three batches.)
    assert batches == [["GET", "GET", "ZRANGEBYSCORE", "EVALSHA"], ["EVALSHA"]]


async def test_a_refused_call_leaves_no_read_pending(store: RedisStore) -> None:
    hub = Hub(ServerSettings(shared_secret=True, pending_calls_per_caller=1), store)
    pushed: list[p.Message] = []
    caller = _caller(pushed)
    hub.calls._ringing = _ringing  # type: ignore[method-assign]  # (no record to read)
    await hub.quotas.take_pending_call(caller.network, caller.owner, "call-other", _ringing)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(Refusal) as refused:
            await hub.calls.place(caller, p.Call(to="bob", offer="v=0 SDP", ref=1))
        code = refused.value.code
        del refused  # (its traceback holds the reads)
        gc.collect()
    assert code == "quota-exceeded"
    assert pushed == []  # no call-created for a refused call
    assert not [w for w in caught if "never awaited" in str(w.message)]


async def _ringing(call_id: str) -> bool:
    return True  # the other call still rings: the quota stays taken
