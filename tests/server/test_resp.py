"""The store's hot connection in plain RESP (server/store/resp.py), against a
real redis-server: replies as redis-py gives them raw, errors in their slot,
replies split over many reads, and a dropped connection that comes back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis.exceptions import NoScriptError

from hello_tui.server.store.redis import RedisStore
from hello_tui.server.store.resp import HotConnection, ReplyError, pack, parse
from tests.services.redis import RedisServer, redis_server


@pytest.fixture
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as srv:
        yield srv


def test_pack_and_parse() -> None:
    assert pack(("SET", b"k", 3, 1.5)) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n3\r\n$3\r\n1.5\r\n"
    wire = b"+OK\r\n:-2\r\n$-1\r\n*2\r\n$0\r\n\r\n*1\r\n:7\r\n-ERR no\r\n"
    replies, pos = [], 0
    while pos < len(wire):
        reply, pos = parse(wire, pos)
        replies.append(reply)
    assert replies[:4] == [b"OK", -2, None, [b"", [7]]]
    assert isinstance(replies[4], ReplyError) and str(replies[4]) == "ERR no"


async def test_batches_against_redis(redis_srv: RedisServer) -> None:
    conn = HotConnection(redis_srv.url)
    big = bytes(range(256)) * 2000  # 512 KB: its reply spans many reads
    try:
        replies = await conn.execute(
            [("SET", "a", big), ("GET", "a"), ("ZADD", "z", "1.5", "m"), ("ZSCORE", "z", "m"),
             ("GET", "nothing"), ("INCR", "a"), ("ZRANGE", "z", 0, -1), ("EVALSHA", "0" * 40, 0)]
        )  # fmt: skip
        assert replies[:5] == [b"OK", big, 1, b"1.5", None]
        assert isinstance(replies[5], ReplyError)  # not an integer: in its slot, not raised
        assert replies[6] == [b"m"]
        assert isinstance(replies[7], ReplyError) and str(replies[7]).startswith("NOSCRIPT")
        await conn.close()  # dropped: the next batch connects again
        assert await conn.execute([("GET", "missing"), ("PING",)]) == [None, b"PONG"]
    finally:
        await conn.close()


async def test_store_turns_reply_errors_into_redis_py_exceptions(redis_srv: RedisServer) -> None:
    store = RedisStore(redis_srv.url)
    try:
        with pytest.raises(NoScriptError):
            await store._cmd("EVALSHA", "0" * 40, 0)
        # ...which is how a script is first loaded: by EVAL after the miss.
        assert int(await store.script("return 41 + 1", [])) == 42
    finally:
        await store.close()


async def test_subscriber_gets_every_payload_in_order(redis_srv: RedisServer) -> None:
    import asyncio

    from hello_tui.server.store.resp import Subscriber

    sub, pub = Subscriber(redis_srv.url), HotConnection(redis_srv.url)
    payloads = [b"%d\n" % n + b"x" * (n * 997 % 70_000) for n in range(200)]  # some span reads
    got: list[bytes] = []
    listening = asyncio.ensure_future(sub.listen("chan", got.append))
    try:
        async with asyncio.timeout(10):
            while (await pub.execute([("PUBSUB", "NUMSUB", "chan")]))[0][1] == 0:
                await asyncio.sleep(0.01)
            await pub.execute([("PUBLISH", "chan", data) for data in payloads])
            while len(got) < len(payloads):
                await asyncio.sleep(0.01)
        assert got == payloads
        await sub.close()  # the connection dropped: listen says so
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(listening, 10)
    finally:
        listening.cancel()
        await sub.close()
        await pub.close()


async def test_unix_socket_url_takes_the_resp_path() -> None:
    from hello_tui.server.store.base import redact_store_url
    from hello_tui.server.store.resp import supported

    with redis_server(unix=True) as srv:
        url = srv.unix_url
        assert supported(url) and not supported("rediss://h:6379/0")
        conn = HotConnection(url.replace("?db=0", "?db=3"))
        assert conn.socket_path == str(srv.socket) and conn.db == 3
        try:
            assert await conn.execute([("SET", "k", "v"), ("GET", "k")]) == [b"OK", b"v"]
        finally:
            await conn.close()
        store = RedisStore(url)
        try:
            assert store._resp is not None  # not redis-py's slower pipeline
            assert int(await store.script("return 40 + 2", [])) == 42
            assert await store._cmd("GET", "k") is None  # database 0, not 3
        finally:
            await store.close()
    assert redact_store_url("unix:///run/r.sock?db=0&password=hunter2") == "unix:///run/r.sock"
