"""Terminal sharing over the call's data channel: real aiortc peers through the
real server, real ptys running real programs (hello_tui/share/, docs/sharing.md)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Literal

import pytest

from hello_tui.call import events as ev
from hello_tui.call.call import Call
from hello_tui.share import session as share_session
from hello_tui.share.wire import (
    SCREEN_BYTES,
    SCREEN_SNAPSHOT,
    Control,
    ShareError,
    encode_control,
    encode_screen,
)
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from tests.arrivals import ArrivalSink
from tests.call.conftest import Env, T
from tests.call.test_chat_privacy import server_frames

__all__ = ["server_frames"]  # the fixture, shared with the chat privacy test


async def _connected_pair(env: Env) -> tuple[Call, Call]:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    call = alice.dial("bob")
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await call.wait_for(ev.Connected, T)
    await incoming.wait_for(ev.Connected, T)
    return call, incoming


async def _until(check: Callable[[], bool], what: str, timeout: float = T) -> None:
    """Poll ``check`` (a screen catching up) until true; fail after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while not check():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def _screen(call: Call, side: Literal["local", "remote"]) -> str:
    """The screen's text ("" while there is none yet), read without an event."""
    try:
        return call.share.snapshot(side)[1].text()
    except ShareError:
        return ""


async def _event(call: Call, kind: type, *, timeout: float = T, **fields: object) -> ev.CallEvent:
    async with asyncio.timeout(timeout):
        async for event in call.events():
            if isinstance(event, kind) and all(getattr(event, k) == v for k, v in fields.items()):
                return event
    raise AssertionError(f"the call ended without {kind.__name__} {fields}")


async def test_viewer_sees_the_sharers_screen_and_its_end(env: Env) -> None:
    sharer, viewer = await _connected_pair(env)
    script = "printf 'hello \\033[31mred\\033[0m world\\n\\303\\251t\\303\\251 done\\n'; read x"
    await sharer.share.start(["sh", "-c", script], cols=60, rows=10)
    started = await _event(viewer, ev.ShareStarted, side="remote")
    assert (started.cols, started.rows) == (60, 10)  # type: ignore[attr-defined]
    # Streamed (no snapshot yet: the share's last frame is one)
    await _until(lambda: "été done" in _screen(viewer, "remote"), "the output")
    shot = viewer.share_snapshot()  # theirs
    assert shot.side == "remote" and shot in viewer.event_log
    remote, local = shot.text, _screen(sharer, "local")
    assert remote.splitlines()[:2] == ["hello red world", "été done"]
    assert remote == local
    sharer.share.send_input("\r")  # read returns: the program ends by itself
    await _event(viewer, ev.ShareStopped, side="remote")
    await _event(sharer, ev.ShareStopped, side="local")
    assert viewer.share_snapshot().text == local  # the last screen stays readable
    assert viewer.share.last_remote is not None
    red = viewer.share.last_remote.screen.buffer[0][6]
    assert (red.data, red.fg) == ("r", "red")
    await sharer.hangup()


async def test_control_is_granted_revoked_and_ends_with_the_share(env: Env) -> None:
    sharer, viewer = await _connected_pair(env)
    await sharer.share.start(["cat"], cols=40, rows=8)  # cat echoes what is typed
    await _event(viewer, ev.ShareStarted, side="remote")
    # Read-only by default: the viewer cannot even try, and a frame sent anyway
    # (a hostile client) never reaches the pty.
    with pytest.raises(ShareError, match="not given you control"):
        viewer.share.send_input("typed without control\r")
    viewer.share.control = True  # pretend: the viewer believes it has control
    viewer.share.send_input("ungranted\r")
    await _until(lambda: sharer.share.input_refused == 1, "the refused input")
    # The sharer types: that does reach it.
    sharer.share.send_input("from the sharer\r")
    await _until(lambda: "from the sharer" in _screen(viewer, "remote"), "the sharer's line")
    assert "ungranted" not in _screen(sharer, "local")
    viewer.share.control = False

    sharer.share.grant()
    await _event(viewer, ev.ShareControl, side="remote", granted=True)
    viewer.share.send_input("granted line\r")
    await _until(lambda: "granted line" in _screen(viewer, "remote"), "the granted echo")

    sharer.share.revoke()
    await _event(viewer, ev.ShareControl, side="remote", granted=False)
    with pytest.raises(ShareError, match="not given you control"):
        viewer.share.send_input("after revoke\r")
    viewer.share.control = True  # hostile again: sent, refused by the sharer
    viewer.share.send_input("after revoke\r")
    await _until(lambda: sharer.share.input_refused == 2, "the second refused input")
    assert "after revoke" not in _screen(sharer, "local")

    sharer.share.grant()
    await _event(viewer, ev.ShareControl, side="remote", granted=True)
    await sharer.share.stop()
    await _event(sharer, ev.ShareControl, side="local", granted=False)  # ends with the share
    await _event(viewer, ev.ShareStopped, side="remote")
    assert not viewer.share.control and not sharer.share.granted
    await sharer.hangup()


async def test_the_call_ending_hangs_the_shared_program_up(env: Env) -> None:
    sharer, viewer = await _connected_pair(env)
    await sharer.share.start(["sleep", "600"])
    await _event(viewer, ev.ShareStarted, side="remote")
    pty = sharer.share._pty
    assert pty is not None and pty.pid
    sharer.share.grant()
    await viewer.hangup()
    await sharer.wait_ended(T)
    assert await asyncio.wait_for(pty.wait(), T) is not None  # hung up, not leaked
    kinds = [e.kind for e in sharer.event_log]
    assert kinds.index("share-stopped") < kinds.index("ended")
    assert not sharer.share.granted


async def test_a_10_mb_flood_ends_on_the_sharers_screen(
    env: Env, record_property: Callable[[str, object], None]
) -> None:
    """`yes | head -c 10000000`: the viewer ends on exactly the sharer's screen,
    a sliver of the 10 MB crosses, and audio keeps arriving on both sides (the
    longest gap is only recorded: bench/share.py holds the 100 ms bar)."""
    alice = await env.phone("alice", audio_in="sine:440")
    bob = await env.phone("bob", audio_in="sine:440")
    sharer = alice.dial("bob")
    sharer.media.sink = ArrivalSink()  # before the call task opens its media
    viewer = await bob.next_incoming(T)
    viewer.media.sink = ArrivalSink()
    await viewer.accept()
    for call in (sharer, viewer):
        await call.wait_for(ev.MediaFlowing, T)
    script = "yes 'flood line' | head -c 10000000; echo; echo END; exec cat"
    start = time.perf_counter()
    await sharer.share.start(["sh", "-c", script], cols=80, rows=24)
    # While still sharing (the share's last frame, a snapshot, would hide a
    # broken stream): the viewer catches up with the sharer's exact screen.
    await _until(lambda: "END" in _screen(sharer, "local"), "the end of the flood", 120)
    await _until(
        lambda: _screen(viewer, "remote") == _screen(sharer, "local"), "the viewer to catch up"
    )
    end = time.perf_counter()
    local = _screen(sharer, "local")
    lines = local.splitlines()
    assert lines[0] == "flood line" and "END" in lines, local
    assert sharer.share.bytes_sent < 100_000, sharer.share.bytes_sent  # of 10 MB written
    sinks = [c.sink for c in (sharer, viewer) if isinstance(c.sink, ArrivalSink)]
    assert len(sinks) == 2
    gaps = [s.longest_gap_ms(start, end) for s in sinks]
    record_property("flood_seconds", round(end - start, 2))
    record_property("audio_gap_ms", [round(g) for g in gaps])
    for sink in sinks:  # audio kept arriving during the flood (how evenly: the bench)
        assert [t for t in sink.arrivals if start < t < end], "no audio during the flood"
    await sharer.hangup()


async def test_nothing_shared_passes_through_the_server(
    env: Env, server_frames: list[bytes]
) -> None:
    """In a room (the later arrival shares) every frame the server relays is
    captured: neither the screen's text nor the title nor what was typed is in any."""
    secret = f"screen{secrets.token_hex(8)}"
    typed = f"typed{secrets.token_hex(8)}"
    title = f"title{secrets.token_hex(8)}"
    owner, guest = await env.phone(), await env.phone()
    key = new_room_key()
    created = await owner.client.room_create(encrypt_name(key, "share room"))
    url = room_url(created.url, key)
    viewer = owner.join(url)
    await viewer.wait_for(ev.Waiting, T)
    sharer = guest.join(url)
    await sharer.wait_for(ev.Connected, T)
    await sharer.share.start(["sh", "-c", f"echo {secret}; cat"], title=title)
    await _until(lambda: secret in _screen(viewer, "remote"), "the secret on the viewer")
    sharer.share.grant()
    await _until(lambda: viewer.share.control, "the grant")
    viewer.share.send_input(typed + "\r")
    await _until(lambda: typed in _screen(viewer, "remote"), "the typed echo")
    await sharer.hangup()
    await viewer.wait_ended(T)
    captured = b"\n".join(server_frames)
    assert b"webrtc-datachannel" in captured  # the capture saw the room's offer
    for word in (secret, typed, title):
        assert word.encode() not in captured


async def test_a_viewer_behind_gets_snapshots_of_the_latest_screen(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the send buffer deemed always full, the viewer gets only snapshots
    (never the backlog of bytes), and still ends on the sharer's exact screen;
    the output is coloured (no plain-text cut) and larger than a frame's work."""
    monkeypatch.setattr(share_session, "BUFFER_HIGH", -1)
    sharer, viewer = await _connected_pair(env)
    script = (
        "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); "
        "printf '\\033[3%dm%05d colour \\033[1mbold\\033[0m\\n' $((i % 8)) $i; done"
    )
    await sharer.share.start(["sh", "-c", script], cols=40, rows=12)
    await _event(sharer, ev.ShareStopped, side="local", timeout=120)
    await _event(viewer, ev.ShareStopped, side="remote")
    share = sharer.share
    assert share.frames_sent >= 1 and share.snapshots_sent == share.frames_sent
    remote, local = _screen(viewer, "remote"), _screen(sharer, "local")
    assert remote == local and "03000 colour bold" in local
    assert viewer.share.last_remote is not None and sharer.share.last_local is not None
    cell = viewer.share.last_remote.screen.buffer[10][0]
    assert cell == sharer.share.last_local.screen.buffer[10][0] and cell.fg != "default"
    await sharer.hangup()


async def test_a_hostile_sharer_is_bounded(env: Env) -> None:
    """Frames written straight onto the real channel (no ShareSession rules):
    malformed ones are dropped with a notice, and screen bytes beyond the
    viewer's budget are dropped until a snapshot, which it asks for."""
    hostile, viewer = await _connected_pair(env)
    channel = hostile.share._channel
    await _until(lambda: hostile.share.open, "the share channel")
    syncs: list[str] = []
    channel.on("message", lambda data: syncs.append(data) if "share-sync" in str(data) else None)
    channel.send(encode_control(Control("share-start", 80, 24, "\x1b]0;evil\x07title")))
    await _event(viewer, ev.ShareStarted, side="remote")
    channel.send(b"\x09junk")  # an unknown kind
    channel.send("{not json")
    # Scrolling lines: ~0.25 s of emulation each here, five times what one frame
    # may take, so the first is cut short and the rest wait for a snapshot
    # whatever the load. (Plain "x" costs ~17 ms: whether 40 of them overran the
    # budget depended on how fast they arrived, and under load they did not.)
    screenful = b"xy\r\n" * 50_000  # 200 kB, compresses to a few hundred bytes
    for _ in range(40):  # 8 MB of screen bytes at once
        channel.send(encode_screen(SCREEN_BYTES, screenful))
    await _until(lambda: viewer.share.frames_received >= 40, "the frames")
    assert viewer.share.frames_dropped >= 2 + 20  # the junk, and most of the screen bytes
    await _until(lambda: bool(syncs), "the viewer asking for a snapshot")
    notices = [e.text for e in viewer.event_log if isinstance(e, ev.Notice)]
    assert any(n.startswith("a share frame from the other side was dropped") for n in notices)
    started = next(e for e in viewer.event_log if isinstance(e, ev.ShareStarted))
    assert "\x1b" not in started.line()  # the title is shown escaped
    # Answer each ask as a sharer does: under load the first snapshot may come
    # while the viewer's budget is still spent, be dropped, and be asked again.
    snapshot = encode_screen(SCREEN_SNAPSHOT, b"\x1bcresynced")
    channel.on(
        "message", lambda data: channel.send(snapshot) if "share-sync" in str(data) else None
    )
    channel.send(snapshot)
    await _until(lambda: _screen(viewer, "remote").startswith("resynced"), "the snapshot")
    await hostile.hangup()
