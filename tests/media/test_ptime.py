"""10 ms packets from the send path in C (``[audio] ptime_ms = 10``, ``HELLO_TUI_PTIME_MS``):
each processed 10 ms block goes out as its own Opus packet (timestamps 480 apart), the
bytes those of libopus and RtpAudioWriter at 10 ms for the same samples, the stream
unbroken when Python (20 ms frames) takes it back mid-frame and C takes it again; in a
real call the far end decodes it, learns 480 and conceals nothing.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket, RtpPacket

from hello_tui.call import events as ev
from hello_tui.media import aiortc_adapter as ad
from hello_tui.media import capture_native, devices, native_send
from hello_tui.media.audio_format import make_frame
from hello_tui.media.audio_processing import ProcessingConfig
from hello_tui.media.levels import rms_dbfs
from hello_tui.media.opus_decoder import _frame_samples
from hello_tui.media.tracks import GatedTrack, MeteredTrack
from tests.call import conftest as call_fixtures
from tests.call.conftest import MIC, RATE, Env, T, dominant_hz, read_wav
from tests.media import test_native_send as ns
from tests.pulse import PulseDaemon

start_env = call_fixtures.start_env
env = call_fixtures.env
pulse_devices = call_fixtures.pulse_devices
chunk_microphone = ns.chunk_microphone

pytestmark = pytest.mark.skipif(
    not native_send.available() or not capture_native.available(),
    reason="the AEC3 shim (with capture_path.cpp and send_path.cpp) is not built",
)

SHORT = native_send.SHORT_SAMPLES  # 480
FRAME = ns.FRAME  # 960
PT, SSRC = ns.PT, ns.SSRC


def halves(n: int) -> list[np.ndarray]:
    """``n`` 10 ms blocks: tone_frames' 20 ms frames (tone, silence, full scale) cut in two."""
    return [half for frame in ns.tone_frames((n + 1) // 2) for half in np.split(frame, 2)][:n]


def ntp_at(i: int) -> int:
    return (3_900_000_000 << 32) + i * 42_949_673  # 10 ms apart


def reference(
    pieces: list[np.ndarray], seq: int, ts: int, writer: ad.RtpAudioWriter
) -> list[bytes]:
    """What libopus (one fresh encoder, the adapter's settings) and RtpAudioWriter make of
    ``pieces`` (each one packet, of its own length): the Python path's bytes at any size."""
    encoder, out = ad.SpeechOpusEncoder(), []
    for i, pcm in enumerate(pieces):
        payload = encoder.codec.encode(pcm)
        level = ad.audio_level_dbov(make_frame(pcm, 0))
        abs_time = (ntp_at(i) >> 14) & 0xFFFFFF
        out.append(writer.serialize(PT, 1, seq, ts, SSRC, payload, abs_time, level))
        seq, ts = (seq + 1) & 0xFFFF, (ts + len(pcm)) & 0xFFFF_FFFF
    return out


def test_a_packet_is_480_or_960_samples() -> None:
    encoder = ad.SpeechOpusEncoder()
    with pytest.raises(ValueError, match="480 or 960"):
        ns.c_send(encoder, samples=720)
    for samples in (SHORT, FRAME):
        send = ns.c_send(encoder, samples=samples)
        try:
            assert send.samples == samples
            with pytest.raises(ValueError, match=f"of {samples} samples"):
                send.packet(np.zeros(FRAME + SHORT - samples, dtype=np.int16), ntp_at(0))
        finally:
            send.close()


@pytest.mark.parametrize("ids", [(1, 2, 3), (0, 0, 0), (14, 13, 12)], ids=str)
def test_c_at_10_ms_is_libopus_and_the_writer_at_10_ms_byte_for_byte(
    ids: tuple[int, int, int],
) -> None:
    """80 blocks of 10 ms across the sequence number's and the timestamp's wrap: C's
    packets are the reference's (timestamps 480 apart, one packet a block)."""
    mid_id, abs_id, level_id = ids
    writer = ad.RtpAudioWriter(mid_id, b"0" if mid_id else b"", abs_id, level_id)
    blocks = halves(80)
    seq, ts = 65_500, 0xFFFF_FFFF - 10 * SHORT
    expected = reference(blocks, seq, ts, writer)
    send = ns.c_send(ad.SpeechOpusEncoder(), samples=SHORT)
    try:
        send.set_rtp(PT, SSRC, seq, ts, *writer.native_ids)
        got = [send.packet(b, ntp_at(i)) for i, b in enumerate(blocks)]
        state = send.state()
    finally:
        send.close()
    assert got == expected
    parsed = [RtpPacket.parse(p) for p in got]
    assert {(b.timestamp - a.timestamp) & 0xFFFF_FFFF for a, b in itertools.pairwise(parsed)} == {
        SHORT
    }
    assert {_frame_samples(p.payload[0]) for p in parsed} == {SHORT}
    assert (state.seq, state.timestamp) == ((seq + 80) & 0xFFFF, (ts + 80 * SHORT) & 0xFFFF_FFFF)
    assert state.frames == state.packets == 80


def test_python_at_20_ms_then_c_at_10_then_python_again_mid_frame() -> None:
    """Python encodes 10 frames of 20 ms, C the next 15 blocks of 10 ms (7.5 frames) with
    the same libopus state, Python the rest in 20 ms frames from the sample C stopped
    at, as the adapter hands back (encoder.next_pts += samples x packets): the stream is
    the reference for those pieces, sequence numbers and timestamps unbroken."""
    writer = ad.RtpAudioWriter(1, b"0", 2, 3)
    signal = np.concatenate(ns.tone_frames(40))
    pieces = [signal[i * FRAME : (i + 1) * FRAME] for i in range(10)]
    at = 10 * FRAME
    pieces += [signal[at + i * SHORT : at + (i + 1) * SHORT] for i in range(15)]
    at += 15 * SHORT
    while at + FRAME <= len(signal):
        pieces.append(signal[at : at + FRAME])
        at += FRAME
    expected = reference(pieces, 100, 5000, writer)
    encoder, got = ad.SpeechOpusEncoder(), []
    origin, seq = 5000, 100
    send: Any = None
    for i, pcm in enumerate(pieces):
        if i == 10:  # hand over to C at 10 ms
            send = ns.c_send(encoder, samples=SHORT)
            send.set_rtp(PT, SSRC, seq, origin + encoder.next_pts, *writer.native_ids)
        if 10 <= i < 25:
            got.append(send.packet(pcm, ntp_at(i)))
            if i == 24:  # and back, mid-frame
                state = send.state()
                send.close()
                seq = state.seq
                encoder.next_pts += send.samples * state.frames
                assert (origin + encoder.next_pts) & 0xFFFF_FFFF == state.timestamp
            continue
        frame = make_frame(pcm, 0)
        (payload,), ts = encoder.encode(frame)
        level = ad.audio_level_dbov(frame)
        got.append(
            writer.serialize(
                PT, 1, seq, (origin + ts) & 0xFFFF_FFFF, SSRC, payload,
                (ntp_at(i) >> 14) & 0xFFFFFF, level,
            )
        )  # fmt: skip
        seq = (seq + 1) & 0xFFFF
    assert got == expected
    assert encoder.next_pts == at


def test_the_knob_overrides_the_setting_and_anything_else_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ad.PTIME_KNOB, raising=False)
    assert ad.send_ptime_ms(ad.AudioTuning()) == 10
    assert ad.send_ptime_ms(ad.AudioTuning(ptime_ms=10)) == 10
    monkeypatch.setenv(ad.PTIME_KNOB, "10")
    assert ad.send_ptime_ms(ad.AudioTuning()) == 10
    monkeypatch.setenv(ad.PTIME_KNOB, "20")
    assert ad.send_ptime_ms(ad.AudioTuning(ptime_ms=10)) == 20
    monkeypatch.setenv(ad.PTIME_KNOB, "5")
    assert ad.send_ptime_ms(ad.AudioTuning(ptime_ms=10)) == 10


# ----------------------------------------------------------------- a live stream, switched


def covered(plain: list[bytes]) -> int:
    """Samples the packets received so far carry, from the first one's timestamp."""
    if not plain:
        return 0
    first, last = RtpPacket.parse(plain[0]), RtpPacket.parse(plain[-1])
    return ((last.timestamp - first.timestamp) & 0xFFFF_FFFF) + _frame_samples(last.payload[0])


def check_reference(
    plain: list[bytes], parsed: list[RtpPacket], signal: np.ndarray, writer: ad.RtpAudioWriter
) -> list[int]:
    """Each packet is the reference's (one libopus state from the first packet on) for the
    samples of ``signal`` its timestamp and duration cover; all of them, unbroken: the
    packets' sizes."""
    encoder = ad.SpeechOpusEncoder()
    ts0, sizes = parsed[0].timestamp, []
    for i, got in enumerate(parsed):
        if i:
            assert got.sequence_number == (parsed[i - 1].sequence_number + 1) & 0xFFFF
        size = _frame_samples(got.payload[0])
        sizes.append(size)
        at = (got.timestamp - ts0) & 0xFFFF_FFFF
        assert at == sum(sizes[:-1])  # unbroken: each packet starts where the last ended
        pcm = signal[at : at + size]
        want = writer.serialize(
            got.payload_type, 1, got.sequence_number, got.timestamp, got.ssrc,
            encoder.codec.encode(pcm), got.extensions.abs_send_time,
            ad.audio_level_dbov(make_frame(pcm, 0)),
        )  # fmt: skip
        assert plain[i] == want, f"packet {i} ({size} samples)"
    assert sum(sizes) == len(signal)
    return sizes


async def test_a_10_ms_stream_switched_between_python_and_c_is_the_reference(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two adapted peers on loopback, ptime 10; the microphone's 10 ms blocks fed one
    at a time through the real C capture. C sends each block as it comes; muting hands
    the stream back to Python (20 ms frames of zeros), so does a long stretch, at
    whatever block it ends: every packet the far end gets is the reference's for the
    samples its timestamp and duration cover (one libopus state throughout), C's 480
    samples and Python's 960, sequence numbers and timestamps unbroken."""
    monkeypatch.setenv(native_send.KNOB, "1")
    monkeypatch.setenv(ad.PTIME_KNOB, "10")
    monkeypatch.setattr(ad, "NATIVE_CHECK_EVERY", 5)
    monkeypatch.setattr(ad, "NATIVE_MAX_STRETCH", 61)  # odd: a stretch ends mid-frame
    monkeypatch.setattr(ad, "NATIVE_TICK_S", 0.03)
    source, binding = chunk_microphone
    gate = GatedTrack(source)
    a, b = await ns.connected_peers(MeteredTrack(gate), monkeypatch)
    try:
        far = ns.FarEnd(b)
        await ns.until(lambda: source.started)
        sender = a.getSenders()[0]
        native = ad.native_sender(sender)
        assert native is not None
        blocks = iter(halves(1200))
        sent: list[np.ndarray] = []  # each block as it should go out (muted: zeros)
        t = time.monotonic()

        async def feed(n: int) -> None:
            for _ in range(n):
                pcm = next(blocks)
                sent.append(np.zeros(SHORT, dtype=np.int16) if gate.muted else pcm)
                binding.chunk(pcm, t + len(sent) * 0.01)
                # C sends each block (480) as it comes; Python a frame per two blocks.
                await ns.until(lambda: len(sent) * SHORT - covered(far.plain) < FRAME)

        async def aligned() -> None:
            """Nothing half-sent: a mute never falls inside a Python frame."""
            if native.send is None and len(sent) * SHORT != covered(far.plain):
                await feed(1)  # (Python holds half a frame; C sends each block at once)
            await ns.until(lambda: len(sent) * SHORT == covered(far.plain))

        async def until_c_sends() -> None:
            while native.send is None:
                await feed(1)

        await feed(60)  # Python first
        await until_c_sends()
        await feed(8 if len(sent) % 2 else 7)  # an odd count in all: when C hands back,
        # Python's next frame starts mid-frame (at an odd block)
        await aligned()
        gate.muted = True  # C stops at once: Python's zeros from the next block
        await feed(31)
        await aligned()
        gate.muted = False
        await feed(30)
        await until_c_sends()
        await feed(301)  # long stretches: C hands back after 61 packets, and takes it again
        await aligned()
        await ns.until(lambda: len(far.srs) >= 2)
        ext_map = vars(sender)["_RTCRtpSender__rtp_header_extensions_map"]
        writer = ad.RtpAudioWriter.for_map(ext_map, vars(sender)["_RTCRtpSender__mid"])
        assert writer is not None
    finally:
        await a.close()
        await b.close()

    parsed = [RtpPacket.parse(p, ext_map) for p in far.plain]
    sizes = check_reference(far.plain, parsed, np.concatenate(sent), writer)
    assert sizes.count(SHORT) > 300 and sizes.count(FRAME) > 40, sizes
    # C handed back after an odd count of blocks (the mute): Python went on mid-frame.
    starts = [sum(sizes[:i]) for i, s in enumerate(sizes) if s == FRAME]
    runs = [(k, len(list(g))) for k, g in itertools.groupby(sizes)]
    assert any(s % FRAME for s in starts), runs
    assert native.ends.get("stopped", 0) >= 1 and native.ends.get("long", 0) >= 2, native.ends
    assert source.frames_sent == len(sent) // 2 and source.dropped == 0
    ns.check_srs(far, parsed)


def loss_report(ssrc: int, fraction_lost: int) -> RtcpRrPacket:
    """The far end's receiver report on stream ``ssrc`` (``fraction_lost`` / 256 lost)."""
    info = RtcpReceiverInfo(ssrc=ssrc, fraction_lost=fraction_lost, packets_lost=0,
                            highest_sequence=0, jitter=0, lsr=0, dlsr=0)  # fmt: skip
    return RtcpRrPacket(ssrc=0x4242, reports=[info])


async def test_a_lossy_report_sends_20_ms_packets_from_then_on(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At ptime 10, a far-end report of 2 % loss on our stream changes nothing; one of
    10 % (over NATIVE_SHORT_MAX_LOSS) ends the stretch at its next look, and C takes the
    stream again at 20 ms for good: the stream is the reference throughout."""
    monkeypatch.setenv(native_send.KNOB, "1")
    monkeypatch.setenv(ad.PTIME_KNOB, "10")
    monkeypatch.setattr(ad, "NATIVE_CHECK_EVERY", 5)
    monkeypatch.setattr(ad, "NATIVE_TICK_S", 0.03)
    source, binding = chunk_microphone
    a, b = await ns.connected_peers(MeteredTrack(GatedTrack(source)), monkeypatch)
    try:
        far = ns.FarEnd(b)
        await ns.until(lambda: source.started)
        sender = a.getSenders()[0]
        native = ad.native_sender(sender)
        assert native is not None
        blocks = iter(halves(800))
        sent: list[np.ndarray] = []
        t = time.monotonic()

        async def feed(n: int) -> None:
            for _ in range(n):
                sent.append(next(blocks))
                binding.chunk(sent[-1], t + len(sent) * 0.01)
                await ns.until(lambda: len(sent) * SHORT - covered(far.plain) < FRAME)

        while native.send is None:
            await feed(1)
        assert native.send.samples == SHORT
        await sender._handle_rtcp_packet(loss_report(sender._ssrc, 5))  # 2 %
        await sender._handle_rtcp_packet(loss_report(sender._ssrc + 1, 200))  # not ours
        await feed(30)
        assert native.short_ok and native.stretches == 1 and not native.ends
        await sender._handle_rtcp_packet(loss_report(sender._ssrc, 26))  # 10 %
        assert not native.short_ok
        while native.ends.get("lossy") != 1 or native.send is None:
            await feed(1)
        assert native.send.samples == FRAME
        await feed(100)
        if len(sent) % 2:
            await feed(1)
        await ns.until(lambda: len(sent) * SHORT == covered(far.plain))
        ext_map = vars(sender)["_RTCRtpSender__rtp_header_extensions_map"]
        writer = ad.RtpAudioWriter.for_map(ext_map, vars(sender)["_RTCRtpSender__mid"])
        assert writer is not None
    finally:
        await a.close()
        await b.close()
    parsed = [RtpPacket.parse(p, ext_map) for p in far.plain]
    sizes = check_reference(far.plain, parsed, np.concatenate(sent), writer)
    last_short = max(i for i, size in enumerate(sizes) if size == SHORT)
    assert sizes.count(SHORT) > 30 and set(sizes[last_short + 1 :]) == {FRAME}
    assert len(sizes) - last_short > 50
    assert native.stretches == 2 and native.ends == {"lossy": 1}


# ----------------------------------------------------------------- a real call


async def test_in_a_real_call_at_10_ms_the_far_end_learns_480_and_conceals_nothing(
    env: Env, pulse_devices: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two phones through the real server, the caller's ``ptime_ms`` 10 (its call
    options, as from the config); the caller's microphone a pulse null sink's monitor
    with a 440 Hz tone, its read callback in C. The capture thread sends 10 ms packets
    (timestamps 480 apart); the callee's jitter buffer learns 480, conceals nothing,
    and its recording is the tone at its level."""
    ns.pulse_call_env(monkeypatch)
    monkeypatch.delenv(ad.PTIME_KNOB, raising=False)
    played, _ = devices.open_stream("output", MIC, ns.Tone(440), samplerate=RATE, blocksize=480)
    played.start()
    try:
        alice = await env.phone(
            "alice", ptime_ms=10,
            audio_processing=ProcessingConfig(aec=False, noise_suppression=False, auto_gain=False),
        )  # fmt: skip
        bob = await env.phone("bob")
        b_wav = env.wav("bob.wav")
        call = alice.dial("bob", audio_in=f"device:{MIC}.monitor", audio_out="null:")
        incoming = await bob.next_incoming(T)
        await incoming.accept(
            replace(incoming.options, audio_in="sine:880", audio_out=f"file:{b_wav}")
        )
        await call.wait_for(ev.MediaFlowing, T)
        await incoming.wait_for(ev.MediaFlowing, T)
        assert call.pc is not None and incoming.pc is not None
        native = ad.native_sender(call.pc.getSenders()[0])
        assert native is not None
        far = ns.FarEnd(incoming.pc)
        await ns.until(lambda: native.frames_in_c() > 200)
        await ns.until(lambda: len(far.plain) > 200)
        jitter = incoming.pc.getReceivers()[0]._RTCRtpReceiver__jitter_buffer
        assert isinstance(jitter, ad.SpeechJitterBuffer)
        learnt, stats = jitter._frame, replace(jitter.stats)
        back = ad.native_sender(incoming.pc.getSenders()[0])
        await call.hangup()
        await incoming.wait_ended(T)
    finally:
        played.close()
    packets = [RtpPacket.parse(p) for p in far.plain]
    in_c = [b for a, b in itertools.pairwise(packets) if _frame_samples(b.payload[0]) == SHORT]
    assert len(in_c) > 150
    assert all(
        (b.timestamp - a.timestamp) & 0xFFFF_FFFF == SHORT
        for a, b in itertools.pairwise(packets)
        if _frame_samples(a.payload[0]) == SHORT
    )
    assert learnt == SHORT
    assert stats.concealed == 0 and stats.gaps == 0, stats
    assert back is None or back.frames_in_c() == 0  # the callee's sine: Python, 20 ms
    heard = read_wav(b_wav)[RATE // 2 :]
    assert abs(dominant_hz(heard) - 440) < 5
    assert -17 < rms_dbfs(heard) < -10  # played at 0.3 of full scale: -13.5 dBFS
