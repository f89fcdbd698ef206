"""A real call between two peers: tones each way, recorded, analysed."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from hello_tui.call import events as ev
from tests.call.conftest import RATE, Env, T, dominant_hz, read_wav


async def test_tones_cross_and_both_sides_see_the_same_code(env: Env) -> None:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    a_wav, b_wav = env.wav("alice.wav"), env.wav("bob.wav")
    call = alice.dial("bob", audio_in="sine:440", audio_out=f"file:{a_wav}")
    incoming = await bob.next_incoming(T)
    await call.wait_for(ev.Ringing, T)
    await incoming.accept(replace(incoming.options, audio_in="sine:880", audio_out=f"file:{b_wav}"))
    await call.wait_for(ev.Connected, T)
    await incoming.wait_for(ev.Connected, T)
    a_check = await call.wait_for(ev.CheckCode, T)
    b_check = await incoming.wait_for(ev.CheckCode, T)
    assert a_check.status == b_check.status == "verified"
    assert a_check.code == b_check.code == call.sas == incoming.sas
    assert len(a_check.code) == 7 and a_check.code[3] == " "
    flowing = await call.wait_for(ev.MediaFlowing, T)
    await incoming.wait_for(ev.MediaFlowing, T)
    # 1.5 s of media, timed by the received audio itself (no sleeps as sync).
    assert call.sink is not None and incoming.sink is not None
    async with asyncio.timeout(T):
        while call.sink.samples < 1.5 * RATE or incoming.sink.samples < 1.5 * RATE:
            await asyncio.sleep(0.05)
    ended = await call.hangup()
    assert ended.reason == "hangup" and ended.stage == "connected"
    b_end = await incoming.wait_ended(T)
    assert b_end.reason == "hangup"
    a_rec, b_rec = read_wav(a_wav), read_wav(b_wav)
    assert abs(dominant_hz(a_rec[RATE // 4 :]) - 880) < 5
    assert abs(dominant_hz(b_rec[RATE // 4 :]) - 440) < 5
    for recording in (a_rec, b_rec):  # about the 2 s call, give or take setup and teardown
        assert len(recording) / RATE == pytest.approx(2.2, abs=0.8)
    print(f"setup: dial → first remote frame {flowing.setup_ms} ms")
    kinds = [e.kind for e in call.event_log]
    assert kinds[:2] == ["dialing", "ringing"]
    assert kinds.index("connecting") < kinds.index("connected") < kinds.index("media-flowing")
    assert kinds[-1] == "ended"
    (a_hist,) = env.histories[0].list()
    assert (a_hist.direction, a_hist.peer, a_hist.outcome) == ("outgoing", "bob", "answered")
    assert a_hist.duration > 1.0
    (b_hist,) = env.histories[1].list()
    assert (b_hist.direction, b_hist.peer, b_hist.outcome) == ("incoming", "alice", "answered")
