"""Calls that recover, in process: the media watch, the bye frame, a call that
outlives its server (real peers, the real server app; docs/calls.md)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestServer

from hello_tui.call import events as ev
from hello_tui.call.chat import control_type
from hello_tui.call.media_watch import MediaWatch
from hello_tui.call.wording import end_words
from hello_tui.server.app import create_app
from hello_tui.server.settings import ServerSettings
from tests.call.conftest import FAST, Env, T


class Frames:
    """A frame counter the test moves (what a remote track's ``frames`` is)."""

    def __init__(self) -> None:
        self.n = 0
        self.flowing = True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(0.02)
            if self.flowing:
                self.n += 1


async def test_the_watch_says_stalled_resumed_then_lost() -> None:
    frames = Frames()
    feeder = asyncio.create_task(frames.run())
    said: list[tuple[str, float]] = []
    changed = asyncio.Event()

    def note(kind: str) -> object:
        return lambda value: (said.append((kind, value)), changed.set())

    watch = MediaWatch(lambda: frames.n, on_stall=note("stall"), on_resume=note("resume"),
                       on_lost=note("lost"), stall_after=0.5, lost_after=1.5)  # fmt: skip
    watch.start()
    try:
        await asyncio.sleep(0.6)  # flowing: nothing to say
        assert said == [] and watch.longest_gap == 0
        frames.flowing = False
        await asyncio.wait_for(changed.wait(), T)
        assert [k for k, _ in said] == ["stall"]
        changed.clear()
        frames.flowing = True
        await asyncio.wait_for(changed.wait(), T)
        assert [k for k, _ in said] == ["stall", "resume"]
        assert said[1][1] >= 0.5 and watch.longest_gap >= 0.5
        changed.clear()
        frames.flowing = False
        while not any(k == "lost" for k, _ in said):
            changed.clear()
            await asyncio.wait_for(changed.wait(), T)
        assert [k for k, _ in said] == ["stall", "resume", "stall", "lost"]
        assert said[-1][1] >= 1.5
    finally:
        watch.stop()
        feeder.cancel()


def test_the_bye_frame_is_a_control_frame_and_nothing_else_is() -> None:
    assert control_type('{"v": 1, "type": "bye"}') == "bye"
    others = ('{"v": 1, "type": "chat", "text": "bye"}', '{"v": 2, "type": "bye"}',
              '{"v": 1, "type": "shutdown"}', "bye", b'{"v":1,"type":"bye"}', "[]")  # fmt: skip
    for other in others:
        assert control_type(other) is None, other


def test_a_lost_connection_reads_as_one_sentence() -> None:
    words = end_words("media-fail", "connected", 75, peer="bob", direction="outgoing",
                      message="lost the connection to bob (network)")  # fmt: skip
    assert words == "Call with bob was cut off after 1:15: lost the connection to bob (network)"


@pytest.mark.parametrize("who_hangs_up", ["caller", "callee"])
async def test_a_call_outlives_its_server_and_hangs_up_over_the_data_channel(
    env: Env, who_hangs_up: str
) -> None:
    # Its own server, so that it can be killed mid-call.
    server = TestServer(create_app(ServerSettings(**FAST)), host="127.0.0.1", port=0)
    await server.start_server()
    env.url = str(server.make_url("/ws"))
    alice, bob = await env.phone("alice"), await env.phone("bob")
    call = alice.dial("bob", audio_in="sine:440")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.MediaFlowing, T)
    await incoming.wait_for(ev.MediaFlowing, T)
    await server.close()  # the server goes (these clients do not reconnect)
    lost = await call.wait_for(ev.ServerLost, T)
    assert lost.retrying is False
    await incoming.wait_for(ev.ServerLost, T)
    remote = call.media.remote
    assert remote is not None
    frames = remote.frames
    async with asyncio.timeout(T):  # audio still comes, peer to peer
        while remote.frames <= frames + 25:
            await asyncio.sleep(0.05)
    assert call.ended is None and incoming.ended is None
    hanging, other = (call, incoming) if who_hangs_up == "caller" else (incoming, call)
    mine = await hanging.hangup()
    theirs = await other.wait_ended(T)  # the bye crossed the data channel
    for ended in (mine, theirs):
        assert (ended.reason, ended.stage) == ("hangup", "connected")
        assert ended.message == "ended peer to peer: the server was unreachable"
    outcomes = [h.list()[0].outcome for h in env.histories]
    assert outcomes == ["answered", "answered"]


async def test_the_peers_session_closing_during_our_hang_up_is_no_news(env: Env) -> None:
    # What the echo call showed: our bye makes the peer leave, its server session
    # closes, and the server's call-ended "closed" reaches us mid-hang-up. Forced
    # here: the peer's connection goes exactly between our bye and our hangup request.
    alice, bob = await env.phone("alice"), await env.phone("bob")
    bob_client = env.clients[-1]
    call = alice.dial("bob", audio_in="sine:440")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.MediaFlowing, T)
    async with asyncio.timeout(T):  # the bye needs the data channel, which may open after media
        while not (call.chat.open and incoming.chat.open):
            await asyncio.sleep(0.01)
    say_bye = call._say_bye

    async def bye_then_the_peer_vanishes() -> None:
        await say_bye()
        # The bye travels on the data channel; let it land before bob's session
        # goes, or under load bob sees his own connection drop first.
        bob_ended = await incoming.wait_ended(T)
        assert bob_ended.reason == "hangup"  # the bye reached bob
        await bob_client.close()
        async with asyncio.timeout(T):  # the server's "closed" has been handled
            while not call._peer_closed_seen:
                await asyncio.sleep(0.01)

    call._say_bye = bye_then_the_peer_vanishes  # type: ignore[method-assign]
    ended = await call.hangup()
    assert (ended.reason, ended.stage, ended.message) == ("hangup", "connected", "")
    notices = [e.text for e in call.event_log if isinstance(e, ev.Notice) and e.source == "call"]
    assert notices == []
    assert (await incoming.wait_ended(T)).reason == "hangup"
