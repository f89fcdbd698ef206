"""The eager frame queue (media/eager.py): a waiting reader runs in the writer's
stack when written from a callback, asyncio's way from inside a task; cancel,
timeouts and bounds behave as asyncio.Queue's; the adapter gives remote audio
tracks one, and both switches turn it off."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection

from hello_tui.media import aiortc_adapter as ad
from hello_tui.media.eager import EagerQueue, frame_queue

T = 10.0


async def _reader(q: EagerQueue[int], log: list[str]) -> None:
    while True:
        item = await q.get()
        log.append(f"got {item} in {'task' if asyncio.current_task() else 'callback'}")


async def test_a_put_from_a_callback_runs_the_waiting_reader_at_once() -> None:
    q: EagerQueue[int] = EagerQueue()
    log: list[str] = []
    task = asyncio.create_task(_reader(q, log))
    await asyncio.sleep(0)  # the reader now waits
    done = asyncio.get_running_loop().create_future()

    def callback() -> None:  # as the datagram callback or the capture hand-off
        q.put_nowait(1)
        log.append("put returned")
        done.set_result(None)

    asyncio.get_running_loop().call_soon(callback)
    await asyncio.wait_for(done, T)
    assert log == ["got 1 in task", "put returned"]  # the reader ran inside put_nowait

    await q.put(2)  # from inside a task: the reader cannot run now; it runs soon
    assert log == ["got 1 in task", "put returned"]
    async with asyncio.timeout(T):
        while len(log) < 3:
            await asyncio.sleep(0)
    assert log[2] == "got 2 in task"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not q._waiters or all(w.done() for w in q._waiters)


async def test_a_waiting_get_can_time_out_and_be_cancelled_and_the_queue_still_works() -> None:
    q: EagerQueue[int] = EagerQueue()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await q.get()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert getter.cancelled()
    later = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_soon(q.put_nowait, 5)
    assert await asyncio.wait_for(later, T) == 5
    assert q.empty() and q.qsize() == 0


async def test_an_item_for_a_reader_cancelled_after_its_wake_goes_to_the_next() -> None:
    q: EagerQueue[int] = EagerQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    await q.put(9)  # inside a task: first is woken, resumes only later...
    first.cancel()  # ...and is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await asyncio.wait_for(second, T) == 9


async def test_bounds_as_asyncio_queue() -> None:
    q: EagerQueue[int] = EagerQueue(maxsize=2)
    q.put_nowait(1)
    q.put_nowait(2)
    assert q.full()
    with pytest.raises(asyncio.QueueFull):
        q.put_nowait(3)
    assert q.get_nowait() == 1 and not q.full()
    assert await q.get() == 2
    with pytest.raises(asyncio.QueueEmpty):
        q.get_nowait()


def test_the_switch_gives_asyncio_queues(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELLO_TUI_EAGER_WAKE", raising=False)
    assert isinstance(frame_queue(3), EagerQueue)
    monkeypatch.setenv("HELLO_TUI_EAGER_WAKE", "0")
    plain = frame_queue(3)
    assert isinstance(plain, asyncio.Queue) and plain.maxsize == 3


async def _remote_audio_track(monkeypatch: pytest.MonkeyPatch, eager: str) -> object:
    monkeypatch.setenv("HELLO_TUI_EAGER_WAKE", eager)
    a, b = (
        ad.adapt_peer_connection(RTCPeerConnection()),
        ad.adapt_peer_connection(RTCPeerConnection()),
    )
    tracks: list[object] = []
    b.on("track", tracks.append)  # a consumer's listener, registered after the adapter's
    try:
        a.addTransceiver("audio", direction="sendrecv")
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        assert len(tracks) == 1
        return vars(tracks[0])["_queue"]
    finally:
        await a.close()
        await b.close()


async def test_the_adapter_gives_remote_audio_tracks_an_eager_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert isinstance(await _remote_audio_track(monkeypatch, "1"), EagerQueue)
    assert isinstance(await _remote_audio_track(monkeypatch, "0"), asyncio.Queue)


def test_the_adapter_refuses_a_remote_track_without_aiortcs_queue() -> None:
    class Track:
        kind = "audio"

        def __init__(self) -> None:
            self._queue = [1]

    with pytest.raises(ad.AiortcAdapterError):
        ad.eager_track_queue(Track())
    bare = Track()
    del bare._queue
    with pytest.raises(ad.AiortcAdapterError):
        ad.eager_track_queue(bare)


async def test_a_device_source_stopped_from_a_callback_ends_its_reader_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The eager wake runs the reader inside stop(); a reader that stops the track
    on its way out (as aiortc's sender does) must find it already ended."""
    from aiortc.mediastreams import MediaStreamError

    from hello_tui.media import sources

    closed: list[object] = []

    class Card:
        latency = 0.02
        active = True

    monkeypatch.setattr(sources, "open_stream", lambda kind, name, cb, **kw: (Card(), None))
    monkeypatch.setattr(sources, "start_stream", lambda stream: None)
    monkeypatch.setattr(sources, "close_stream", lambda stream, started=True: closed.append(stream))
    source = sources.DeviceSource("device:test", "test")
    ended: list[str] = []

    async def sender() -> None:
        try:
            await source.recv()
        except MediaStreamError:
            ended.append(source.readyState)
            source.stop()  # aiortc's sender stops its track when its loop ends

    task = asyncio.create_task(sender())
    await asyncio.sleep(0.01)  # the reader waits on the (eager) queue
    done = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(lambda: (source.stop(), done.set_result(None)))
    await asyncio.wait_for(done, T)
    await asyncio.wait_for(task, T)
    assert ended == ["ended"] and len(closed) == 1  # closed once, not again from the reader
