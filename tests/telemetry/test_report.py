"""The report is built from the very samples the call emitted, and carries
nothing that names anyone (P6). Real calls through the real server."""

from __future__ import annotations

import asyncio
import json
import string

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hello_tui.call import events as ev
from hello_tui.quality.summary import percentile, summarize
from hello_tui.signaling import protocol as p
from hello_tui.signaling.roomcrypt import encrypt_name, new_room_key, room_url
from hello_tui.telemetry import report as r
from tests.call.conftest import T
from tests.telemetry.conftest import TelServer

SECRET = "0123456789abcdef0123456789abcdef"


async def _talk(tel_server: TelServer, samples: int, *, room: bool = False) -> tuple:
    """A call (or a room) between two real phones, hung up after ``samples`` samples."""
    env = tel_server.env
    alice = await env.phone("alice-zqx", quality_interval=0.25)
    bob = await env.phone("bob-zqx", quality_interval=0.25)
    if room:
        key = new_room_key()
        created = await alice.client.room_create(encrypt_name(key, "zqx secret room"))
        url = room_url(created.url, key)
        a = alice.join(url)
        await a.wait_for(ev.Waiting, T)
        b = bob.join(url)
    else:
        a = alice.dial("bob-zqx")
        b = await bob.next_incoming(T)
        await b.accept()
    n = 0
    async with asyncio.timeout(T):
        async for event in a.events():
            if isinstance(event, ev.Quality) and event.sample.rtt_ms is not None:
                n += 1
                if n >= samples:
                    break
    await a.hangup()
    await b.wait_ended(T)
    return a, b


async def test_report_values_equal_the_samples(tel_server: TelServer) -> None:
    call, _ = await _talk(tel_server, 3)
    quality = [e.sample for e in call.event_log if isinstance(e, ev.Quality)]
    assert quality == call.quality_samples and len(quality) >= 3
    assert call.event_log[-1] is call.ended  # no sample after Ended
    ended = call.ended
    assert ended.outcome == "completed" and ended.stage == "connected"
    # Ended's summary is summarize() over exactly those samples.
    assert ended.quality == summarize(
        quality, outcome="completed", reason=ended.reason, duration_s=ended.duration
    )
    report = r.report_for_call(call, SECRET)
    assert report is not None
    sent = msgspec.json.decode(p.encode_body(report), type=p.CallReport)  # as the server reads it
    q = sent.quality
    rtt = [s.rtt_ms for s in quality if s.rtt_ms is not None]
    jitter = [s.jitter_ms for s in quality if s.jitter_ms is not None]
    loss = [s.fraction_lost for s in quality]
    mos = [s.mos for s in quality if s.mos is not None]
    assert q.samples == len(quality)
    assert (q.rtt_ms_p50, q.rtt_ms_p95) == (percentile(rtt, 50), percentile(rtt, 95))
    assert q.rtt_ms_p50 in rtt and q.rtt_ms_p95 in rtt  # values a sample carried
    assert (q.jitter_ms_p50, q.jitter_ms_p95) == (percentile(jitter, 50), percentile(jitter, 95))
    assert (q.fraction_lost_p50, q.fraction_lost_p95) == (
        percentile(loss, 50),
        percentile(loss, 95),
    )
    assert q.mos_mean == sum(mos) / len(mos) and q.mos_min == min(mos)
    assert q.packets_received == quality[-1].packets_received
    assert q.packets_lost == quality[-1].packets_lost
    assert q.codec == quality[-1].codec == "opus/48000/2"
    assert q.candidate_type == quality[-1].candidate_type == "host"
    assert sent.network_type == quality[-1].network_type == "loopback"
    assert sent.duration_s == ended.duration
    assert sent.outcome == "completed" and sent.reason == "hangup" and sent.stage == "connected"
    connected = next(e for e in call.event_log if isinstance(e, ev.Connected))
    assert sent.setup_ms == connected.setup_ms
    assert sent.direction == "outgoing" and not sent.room


@pytest.mark.parametrize("room", [False, True])
async def test_no_names_tokens_ids_sdp_or_addresses(tel_server: TelServer, room: bool) -> None:
    a, b = await _talk(tel_server, 1, room=room)
    for call in (a, b):
        text = p.encode_body(r.report_for_call(call, SECRET)).decode()
        forbidden = [
            "alice-zqx", "bob-zqx", "zqx", "secret room", call.call_id, call.sas, "127.0.0.1",
            "v=0", "a=fingerprint", "candidate:", "IN IP4", SECRET,
        ]  # fmt: skip
        if call.room_token:
            forbidden.append(call.room_token)
        for value in forbidden:
            assert value and value not in text, (value, text)
        assert json.loads(text)["room"] is room


names = st.text(string.ascii_letters + "@.-_ ", min_size=6, max_size=40).map(lambda s: "Qz" + s)


@settings(max_examples=200, deadline=None)
@given(name=names, call_id=st.text(string.ascii_letters + string.digits, min_size=16))
def test_property_no_field_carries_a_name(name: str, call_id: str) -> None:
    # Whatever the call's id, message or peer, the report has none of it.
    ended = ev.Ended(call_id=call_id, reason="error", duration=1.5, stage="connected",
                     message=f"could not reach {name} at {name}@example.org", outcome="dropped",
                     quality=summarize([], outcome="dropped", reason="error"))  # fmt: skip
    body = p.encode_body(
        r.build_call_report(
            ended,
            direction="incoming",
            room=False,
            started=1.8e9,
            setup_ms=None,
            install_secret=SECRET,
        )
    ).decode()
    assert name not in body and call_id not in body and "example.org" not in body


def test_outcomes() -> None:
    assert ev.call_outcome("hangup", "connected") == "completed"
    assert ev.call_outcome("closed", "connected") == "completed"
    assert ev.call_outcome("media-fail", "connected") == "dropped"
    assert ev.call_outcome("unreachable", "connected") == "dropped"
    assert ev.call_outcome("busy", "ringing") == "not-answered"
    assert ev.call_outcome("timeout", "ringing") == "not-answered"
    assert ev.call_outcome("media-fail", "connecting") == "failed"
    assert ev.call_outcome("unreachable", "dialing") == "failed"


def test_failed_call_reports_its_stage() -> None:
    ended = ev.Ended(reason="media-fail", duration=0.0, stage="connecting",
                     outcome="failed", quality=summarize([], outcome="failed"))  # fmt: skip
    report = r.build_call_report(ended, direction="outgoing", room=True, started=1.8e9,
                                 setup_ms=None, install_secret=SECRET)  # fmt: skip
    assert (report.outcome, report.stage, report.quality.samples) == ("failed", "connecting", 0)


def test_daily_id_changes_every_day_and_hides_the_secret() -> None:
    day1, day2 = r.daily_id(SECRET, "2026-11-26"), r.daily_id(SECRET, "2026-11-27")
    assert day1 != day2 and len(day1) == 32 and SECRET not in day1
    assert day1 == r.daily_id(SECRET, "2026-11-26")
    assert r.hour_of(0) == "1970-01-01T00"


def test_os_family_and_feedback_parsing() -> None:
    assert [r.os_family(x) for x in ("Linux", "Darwin", "Windows", "FreeBSD", "SunOS")] == [
        "linux", "macos", "windows", "bsd", "other",
    ]  # fmt: skip
    assert r.parse_feedback("happy") == ("happy", [])
    assert r.parse_feedback("sad:audio-quality,disconnected") == (
        "sad", ["audio-quality", "disconnected"],
    )  # fmt: skip
    for bad in ("meh", "sad:noise"):
        try:
            r.parse_feedback(bad)
        except ValueError:
            continue
        raise AssertionError(bad)


def test_crash_report_hides_the_home_directory() -> None:
    from pathlib import Path

    try:
        raise RuntimeError(f"cannot open {Path.home() / 'secret.txt'}")
    except RuntimeError as exc:
        crash = r.build_crash_report(exc, command="call")
    assert str(Path.home()) not in crash.traceback and "~/secret.txt" in crash.traceback
    assert crash.error == "RuntimeError" and crash.command == "call"


async def test_sharing_is_reported_as_that_and_how_long_only(tel_server: TelServer) -> None:
    env = tel_server.env
    alice = await env.phone("alice-zqx")
    bob = await env.phone("bob-zqx")
    a = alice.dial("bob-zqx")
    b = await bob.next_incoming(T)
    await b.accept()
    await a.wait_for(ev.Connected, T)
    await a.share.start(["sh", "-c", "echo zqx-screen-text; read x"], title="zqx-title")
    await b.wait_for(ev.ShareStarted, T)
    await a.share.stop()
    await b.wait_for(ev.ShareStopped, T)
    await a.hangup()
    await b.wait_ended(T)
    for call in (a, b):  # the sharer and the viewer alike
        report = r.report_for_call(call, SECRET)
        assert report is not None and report.v == 2
        assert report.shared_s is not None and 0 <= report.shared_s <= report.duration_s + 1
        text = p.encode_body(report).decode()
        for value in ("zqx", "sh -c", "read x", "title", "cols", "rows", "side"):
            assert value not in text, (value, text)
        assert list(json.loads(text))[-1] == "shared_s"  # one field more than version 1


def test_a_call_without_sharing_is_a_version_1_body() -> None:
    ended = ev.Ended(reason="hangup", duration=3.0, stage="connected", outcome="completed",
                     quality=summarize([], outcome="completed"))  # fmt: skip
    plain = r.build_call_report(ended, direction="outgoing", room=False, started=1.8e9,
                                setup_ms=None, install_secret=SECRET)  # fmt: skip
    data = json.loads(p.encode_body(plain))
    assert data["v"] == 1 and "shared_s" not in data  # what a version 1 server accepts
    shared = r.build_call_report(ended, direction="outgoing", room=False, started=1.8e9,
                                 setup_ms=None, install_secret=SECRET, shared_s=2.04)  # fmt: skip
    data = json.loads(p.encode_body(shared))
    assert (data["v"], data["shared_s"]) == (2, 2.0)
    data["v"] = 1  # shared_s in a version 1 body: refused
    with pytest.raises(msgspec.ValidationError, match="shared_s needs v 2"):
        msgspec.json.decode(json.dumps(data), type=p.CallReport)
