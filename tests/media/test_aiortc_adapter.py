"""The aiortc adapter: version guard, the speech jitter buffer, Opus settings, a real call.

If an aiortc upgrade moves what the adapter relies on, these fail loudly:
the import guard, the private attributes it replaces, the encoder fields.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import re
from dataclasses import replace
from typing import Any

import aioice
import aiortc
import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs import get_capabilities
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtcrtpreceiver import RemoteStreamTrack
from aiortc.rtp import RtpPacket, compute_audio_level_dbov

from hello_tui.call import events as ev
from hello_tui.call.peer import new_peer_connection
from hello_tui.media import aiortc_adapter as ad
from hello_tui.media import opus_encoder
from hello_tui.media.audio_format import make_frame
from hello_tui.media.eager import EagerQueue
from tests.call import conftest as call_fixtures
from tests.call.conftest import RATE, Env, T, dominant_hz, read_wav

# The real-server fixtures of tests/call (a two-peer call through the real app).
start_env = call_fixtures.start_env
env = call_fixtures.env

FRAME = 960


class FakeClock:
    """Time for the buffer. ``auto``: a packet arrives when its audio is due
    (never earlier than the previous arrival), as on a clean network."""

    def __init__(self, auto: bool = True) -> None:
        self.now = 100.0
        self.auto = auto

    def __call__(self) -> float:
        return self.now


def packet(seq: int, ts: int | None = None, data: bytes | None = None) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq & 0xFFFF, timestamp=(ts or 0) & 0xFFFFFFFF)
    if ts is None:
        p.timestamp = (seq * FRAME) & 0xFFFFFFFF
    p.payload = data if data is not None else bytes([0x78, seq & 0xFF, 1, 2])
    p._data = p.payload  # type: ignore[attr-defined] # what the receiver sets (depayloaded)
    return p


def frames_of(frame: JitterFrame | None) -> list[JitterFrame]:
    if frame is None:
        return []
    return list(frame.parts) if isinstance(frame, ad.JitterBundle) else [frame]


def feed(buf: ad.SpeechJitterBuffer, pkt: RtpPacket) -> list[JitterFrame]:
    clock = buf._clock
    if isinstance(clock, FakeClock) and clock.auto:
        clock.now = max(clock.now, 100.0 + pkt.timestamp / RATE)
    pli, frame = buf.add(pkt)
    assert pli is False
    return frames_of(frame)


# ----------------------------------------------------------------- version guard


def test_version_guard_accepts_the_pinned_version_only() -> None:
    assert aiortc.__version__ in ad.SUPPORTED_AIORTC
    ad.check_version(aiortc.__version__)
    with pytest.raises(ad.AiortcVersionError, match=r"1\.17\.0"):
        ad.check_version("1.17.0")


@pytest.mark.parametrize(
    ("package", "version"), [(aiortc, "2.0.0"), (aioice, "0.99.0")], ids=["aiortc", "aioice"]
)
def test_importing_with_another_version_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, package: Any, version: str
) -> None:
    """The adapter reaches into both packages' internals: another version of
    either refuses to import, naming the package and the version found."""
    monkeypatch.setattr(package, "__version__", version)
    spec = importlib.util.spec_from_file_location("adapter_copy", ad.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ImportError, match=rf"{package.__name__} {re.escape(version)} is installed"):
        spec.loader.exec_module(module)


# ----------------------------------------------------------------- jitter buffer


def test_first_packet_is_released_at_once_and_order_is_kept() -> None:
    buf = ad.SpeechJitterBuffer(clock=FakeClock())
    out = []
    for seq in range(10):
        got = feed(buf, packet(seq))
        assert len(got) == 1  # no prefetch: each packet out as it arrives
        out += got
    assert [f.timestamp for f in out] == [s * FRAME for s in range(10)]
    assert len(buf) == 0


def test_reordered_packets_come_out_in_order() -> None:
    buf = ad.SpeechJitterBuffer(clock=FakeClock())
    out: list[JitterFrame] = []
    for seq in (0, 1, 3, 2, 4, 6, 5, 7):
        out += feed(buf, packet(seq))
    assert [f.timestamp // FRAME for f in out] == list(range(8))
    assert not any(isinstance(f, ad.ConcealFrame) for f in out)
    assert buf.stats.gaps == 0


def test_lost_packet_is_concealed_without_stalling() -> None:
    buf = ad.SpeechJitterBuffer(clock=FakeClock())
    assert buf.target_ms == 20
    for seq in (0, 1):
        feed(buf, packet(seq))
    # 2 is lost. 3 (20 ms beyond the gap, = the target): 2 may just be overtaken, wait;
    assert feed(buf, packet(3)) == []
    # 4: more than the target beyond the gap: recover 2 from 3's FEC, release 3 and 4.
    got = feed(buf, packet(4))
    assert [type(f) for f in got] == [ad.FecFrame, JitterFrame, JitterFrame]
    fec = got[0]
    assert isinstance(fec, ad.FecFrame) and fec.data == packet(3).payload
    assert fec.timestamp == 2 * FRAME and fec.samples == FRAME
    assert not fec.lbrr and buf.stats.recovered == 0  # this fake packet carries no FEC
    assert [f.timestamp for f in got[1:]] == [3 * FRAME, 4 * FRAME]
    # the lost packet arriving afterwards is dropped, not replayed
    assert feed(buf, packet(2)) == []
    assert buf.stats.late == 1 and buf.stats.concealed == 1
    assert [f.timestamp for f in feed(buf, packet(5))] == [5 * FRAME]


def test_wait_for_a_missing_packet_is_the_target_then_skip() -> None:
    tuning = ad.AudioTuning(min_depth_ms=60)
    buf = ad.SpeechJitterBuffer(tuning, clock=FakeClock())
    feed(buf, packet(0))
    assert feed(buf, packet(2)) == []  # 20 ms ahead of the gap: wait
    assert feed(buf, packet(3)) == []  # 40 ms: wait
    assert feed(buf, packet(4)) == []  # 60 ms = target: wait
    got = feed(buf, packet(5))  # 80 ms: conceal 1, release 2..5
    assert [f.timestamp // FRAME for f in got] == [1, 2, 3, 4, 5]
    assert isinstance(got[0], ad.ConcealFrame)


def test_a_two_packet_gap_is_concealed_then_recovered_from_fec() -> None:
    buf = ad.SpeechJitterBuffer(clock=FakeClock())
    feed(buf, packet(0))
    got = feed(buf, packet(3))  # 1 and 2 lost; 3 is 40 ms ahead of the gap: skip it
    assert [type(f) for f in got] == [ad.ConcealFrame, ad.FecFrame, JitterFrame]
    assert [f.timestamp // FRAME for f in got] == [1, 2, 3]
    assert got[1].data == got[2].data  # 2 comes from 3's FEC data
    off = ad.SpeechJitterBuffer(ad.AudioTuning(decode_fec=False), clock=FakeClock())
    feed(off, packet(0))
    assert [type(f) for f in feed(off, packet(3))] == [ad.ConcealFrame] * 2 + [JitterFrame]


def test_a_burst_loss_conceals_at_most_max_conceal_then_skips() -> None:
    buf = ad.SpeechJitterBuffer(clock=FakeClock())
    feed(buf, packet(0))
    got = feed(buf, packet(21))  # 20 packets (400 ms) lost
    conceal = [f for f in got if isinstance(f, ad.ConcealFrame)]
    assert len(conceal) == 5  # 100 ms
    assert got[-1].timestamp == 21 * FRAME


def test_a_sender_at_10_ms_then_20_is_followed_packet_by_packet() -> None:
    """Ours sends 10 ms packets while the send path is in C and 20 ms ones when Python
    takes the stream back: the buffer learns each duration from the packets released
    one after the other (per sequence step: a gap's span is not a packet's duration),
    and conceals a lost packet with a frame of the duration around it."""
    half = FRAME // 2
    ts = [i * half for i in range(10)] + [10 * half + i * FRAME for i in range(10)]
    lost = {3, 5, 14}
    buf = ad.SpeechJitterBuffer(ad.AudioTuning(decode_fec=False), clock=FakeClock())
    out: list[JitterFrame] = []
    learnt = {}
    for seq in range(20):
        if seq not in lost:
            out += feed(buf, packet(seq, ts=ts[seq]))
            learnt[seq] = buf._frame
    concealed = [(f.timestamp, f.samples) for f in out if isinstance(f, ad.ConcealFrame)]
    # 3 and 5 at 10 ms (two packets apart: after 3's gap, 4 must not read as 20 ms);
    # 14 at 20 ms.
    assert concealed == [(3 * half, half), (5 * half, half), (ts[14], FRAME)]
    assert [f.timestamp for f in out if not isinstance(f, ad.ConcealFrame)] == [
        t for i, t in enumerate(ts) if i not in lost
    ]
    assert learnt[2] == learnt[9] == half and learnt[11] == learnt[19] == FRAME


def test_sequence_and_timestamp_wrap() -> None:
    buf = ad.SpeechJitterBuffer(clock=FakeClock())
    out: list[JitterFrame] = []
    for i, seq in enumerate((65533, 65534, 65535, 0, 1)):
        out += feed(buf, packet(seq, ts=0xFFFFFFFF - 2 * FRAME + i * FRAME))
    assert len(out) == 5 and buf.stats.gaps == 0 and buf.stats.late == 0


def test_memory_is_bounded_under_chaos() -> None:
    rng = random.Random(7)
    clock = FakeClock(auto=False)
    buf = ad.SpeechJitterBuffer(clock=clock)
    released = 0
    for seq in range(5000):
        clock.now += 0.02 + rng.uniform(0, 0.3)
        if rng.random() < 0.3:
            continue  # lost
        s = seq + rng.randint(-40, 40)  # heavy reordering
        released += len(feed(buf, packet(s)))
        assert len(buf) <= buf.capacity
    assert released > 1000
    assert ad.AudioTuning().min_depth_ms <= buf.target_ms <= ad.AudioTuning().max_depth_ms


def test_target_depth_adapts_to_jitter() -> None:
    rng = random.Random(1)
    clock = FakeClock(auto=False)
    buf = ad.SpeechJitterBuffer(clock=clock)
    seq = 0

    def arrive(jitter_s: float, n: int) -> None:
        nonlocal seq
        for _ in range(n):
            clock.now = 100.0 + seq * 0.02 + rng.uniform(0, jitter_s)
            feed(buf, packet(seq))
            seq += 1

    arrive(0.002, 200)
    assert buf.target_ms == 20
    arrive(0.050, 200)  # up to 50 ms late
    assert 40 <= buf.target_ms <= 80
    grown = buf.target_ms
    arrive(0.5, 200)  # far beyond the ceiling
    assert buf.target_ms == 80
    arrive(0.002, 300)  # calm again: the window forgets
    assert buf.target_ms == 20 < grown


def test_concealment_decodes_to_a_full_frame_of_sound() -> None:
    """aiortc's own Opus decoder turns the one-byte frame into 20 ms of PLC."""
    encoder = ad.SpeechOpusEncoder()
    t = np.arange(FRAME * 30)
    tone = (np.sin(2 * np.pi * 440 * t / RATE) * 8000).astype(np.int16)
    packets = []
    for i in range(30):
        payloads, ts = encoder.encode(make_frame(tone[i * FRAME : (i + 1) * FRAME], i * FRAME))
        packets += [packet(i, ts=ts, data=p) for p in payloads]
    buf = ad.SpeechJitterBuffer(clock=FakeClock())
    decoder = OpusDecoder()
    decoded = []
    for p in packets:
        if p.sequence_number in (12, 20):
            continue
        for f in feed(buf, p):
            decoded += decoder.decode(f)
    assert buf.stats.concealed == 2
    assert len(decoded) == len(packets)  # the two lost frames are there, concealed
    assert all(f.samples == FRAME for f in decoded)
    levels = [np.abs(f.to_ndarray()).max() for f in decoded[10:]]
    assert min(levels) > 1000  # no silent hole where packets were lost


def test_expanding_queue_maps_bundle_timestamps_and_drops_plc_for_other_codecs() -> None:
    opus, pcmu = (
        next(c for c in get_capabilities("audio").codecs if c.mimeType.lower() == m)
        for m in ("audio/opus", "audio/pcmu")
    )
    q = ad._ExpandingQueue()
    bundle = ad.JitterBundle(
        [JitterFrame(b"a", 1000), ad.ConcealFrame(b"\x78", 1960), JitterFrame(b"b", 2920)]
    )
    bundle.timestamp = 0  # what aiortc's TimestampMapper does to the first
    q.put((opus, bundle))
    assert [(f.data, f.timestamp) for _, f in (q.get() for _ in range(3))] == [
        (b"a", 0),
        (b"\x78", 960),
        (b"b", 1920),
    ]
    q.put((pcmu, bundle))
    assert [f.data for _, f in (q.get() for _ in range(2))] == [b"a", b"b"]
    # aiortc's (FFmpeg's) decoder cannot use FEC: an FEC frame reaches it as concealment
    q.put((opus, ad.FecFrame(b"\x7b\x01\x02", 960, lbrr=True)))
    _, plc = q.get()
    assert (plc.data, plc.timestamp, type(plc)) == (b"\x78", 960, JitterFrame)
    q.put(None)
    assert q.get() is None


def test_inline_decoder_queue_decodes_opus_to_mono_on_the_track_queue() -> None:
    """Opus is decoded where it leaves the jitter buffer (no thread hop), to mono,
    concealment included; another codec still goes to aiortc's decoder thread."""
    opus, pcmu = (
        next(c for c in get_capabilities("audio").codecs if c.mimeType.lower() == m)
        for m in ("audio/opus", "audio/pcmu")
    )

    class Receiver:
        _track = RemoteStreamTrack(kind="audio")

    enc = ad.SpeechOpusEncoder(channels=2)
    tone = (np.sin(2 * np.pi * 440 * np.arange(FRAME * 10) / RATE) * 8000).astype(np.int16)
    stereo = np.repeat(tone, 2)
    encoded = []
    for i in range(10):
        frame = av.AudioFrame.from_ndarray(
            stereo[i * 2 * FRAME : (i + 1) * 2 * FRAME].reshape(1, -1),
            format="s16",
            layout="stereo",
        )
        frame.sample_rate, frame.pts = RATE, i * FRAME
        encoded += enc.encode(frame)[0]
    q = ad._InlineDecoderQueue(Receiver())  # type: ignore[arg-type]
    for i, payload in enumerate(encoded):
        q.put((opus, JitterFrame(payload, i * FRAME)))
    q.put((opus, ad.ConcealFrame(bytes([encoded[-1][0] & 0xFC]), len(encoded) * FRAME)))
    out = Receiver._track._queue
    frames = [out.get_nowait() for _ in range(out.qsize())]
    assert len(frames) == len(encoded) + 1 and q.empty()
    assert all(f.layout.name == "mono" and f.samples == FRAME for f in frames)
    assert np.abs(frames[5].to_ndarray()).max() > 4000  # the tone, not silence
    q.put((pcmu, JitterFrame(b"\xff" * 160, 0)))
    assert q.get_nowait()[0] is pcmu and out.empty()  # aiortc's thread decodes it


@pytest.mark.parametrize("amplitude", [0, 1, 300, 8000, 32767])
def test_audio_level_matches_aiortcs_rfc6465_level(amplitude: int) -> None:
    rng = np.random.default_rng(amplitude)
    pcm = (rng.uniform(-1, 1, FRAME) * amplitude).astype(np.int16)
    frame = make_frame(pcm, 0)
    assert ad.audio_level_dbov(frame) == compute_audio_level_dbov(frame)


# ----------------------------------------------------------------- installation


def _transceiver(pc: RTCPeerConnection) -> Any:
    return pc.addTransceiver("audio", direction="sendrecv")


async def test_adapter_replaces_the_internals_per_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HELLO_TUI_AIORTC_ADAPTER", raising=False)
    plain = RTCPeerConnection()
    adapted = ad.adapt_peer_connection(RTCPeerConnection())
    assert ad.adapt_peer_connection(adapted) is adapted  # idempotent
    try:
        t_plain, t_adapted = _transceiver(plain), _transceiver(adapted)
        rx = vars(t_adapted.receiver)
        assert isinstance(rx["_RTCRtpReceiver__jitter_buffer"], ad.SpeechJitterBuffer)
        assert isinstance(rx["_RTCRtpReceiver__decoder_queue"], ad._ExpandingQueue)
        assert "send" in vars(t_adapted.sender)  # the per-instance wrapper
        # the other connection is untouched: no global patch
        rx0 = vars(t_plain.receiver)
        assert not isinstance(rx0["_RTCRtpReceiver__jitter_buffer"], ad.SpeechJitterBuffer)
        assert "send" not in vars(t_plain.sender)
    finally:
        await plain.close()
        await adapted.close()
    pc = new_peer_connection([])
    assert ad.is_adapted(pc)
    await pc.close()
    monkeypatch.setenv("HELLO_TUI_AIORTC_ADAPTER", "0")
    pc = new_peer_connection([])
    assert not ad.is_adapted(pc)
    await pc.close()


def test_adapter_refuses_objects_without_the_expected_internals() -> None:
    class NotAReceiver:
        pass

    with pytest.raises(ad.AiortcAdapterError, match="jitter_buffer"):
        ad.adapt_receiver(NotAReceiver())  # type: ignore[arg-type]


def test_encoder_settings_are_applied() -> None:
    enc = ad.SpeechOpusEncoder(ad.AudioTuning(bitrate=24_000, complexity=5))
    tone = (np.sin(2 * np.pi * 440 * np.arange(FRAME * 100) / RATE) * 8000).astype(np.int16)
    sizes = []
    for i in range(100):
        payloads, _ = enc.encode(make_frame(tone[i * FRAME : (i + 1) * FRAME], i * FRAME))
        sizes += [len(p) for p in payloads]
    assert enc.codec.channels == 1
    assert enc.codec.get(opus_encoder.SET_BITRATE + 1) == 24_000
    assert enc.codec.get(opus_encoder.SET_COMPLEXITY + 1) == 5
    kbps = np.mean(sizes[20:]) * 8 * 50 / 1000
    assert 12 < kbps < 36, kbps


def test_encoder_timestamps_are_continuous_and_other_shapes_are_converted() -> None:
    tone = (np.sin(2 * np.pi * 440 * np.arange(FRAME * 20) / RATE) * 8000).astype(np.int16)
    enc = ad.SpeechOpusEncoder()
    stamps = []
    for i in range(20):
        pts = i * FRAME + (5 * FRAME if i >= 10 else 0)  # the source skipped 5 frames
        payloads, ts = enc.encode(make_frame(tone[i * FRAME : (i + 1) * FRAME], pts))
        if payloads:
            stamps.append(ts)
    assert stamps[0] == 0 and np.all(
        np.diff(stamps) == FRAME
    )  # no RTP timestamp jump for a skipped frame
    decoder = OpusDecoder()
    heard = np.concatenate(
        [f.to_ndarray().reshape(-1)[::2] for p in [enc.encode(make_frame(tone[:FRAME], 0))[0][0]]
         for f in decoder.decode(JitterFrame(p, 0))]
    )  # fmt: skip
    assert np.abs(heard).max() > 1000  # real audio
    stereo = ad.SpeechOpusEncoder(channels=2)  # a peer that asked for stereo: mono is converted
    out = [
        stereo.encode(make_frame(tone[i * FRAME : (i + 1) * FRAME], i * FRAME)) for i in range(3)
    ]
    assert [ts for _, ts in out] == [0, FRAME, 2 * FRAME]
    assert all(len(p) == 1 and p[0][0] & 0x4 for p, _ in out)  # TOC: a stereo packet each
    odd = ad.SpeechOpusEncoder()  # 15 ms frames: re-chunked to 20 ms packets
    packets = [odd.encode(make_frame(tone[i * 720 : (i + 1) * 720], i * 720)) for i in range(8)]
    assert [len(p) for p, _ in packets] == [0, 1, 1, 1, 0, 1, 1, 1]
    assert [ts for p, ts in packets if p] == [i * FRAME for i in range(6)]


# ----------------------------------------------------------------- a real call


async def test_a_call_with_the_adapter_carries_the_tone_at_speech_settings(env: Env) -> None:
    alice = await env.phone("alice")
    bob = await env.phone("bob")
    a_wav, b_wav = env.wav("alice.wav"), env.wav("bob.wav")
    call = alice.dial("bob", audio_in="sine:440", audio_out=f"file:{a_wav}")
    incoming = await bob.next_incoming(T)
    await incoming.accept(replace(incoming.options, audio_in="sine:880", audio_out=f"file:{b_wav}"))
    await call.wait_for(ev.MediaFlowing, T)
    await incoming.wait_for(ev.MediaFlowing, T)
    assert call.sink is not None and incoming.sink is not None and call.pc is not None
    async with asyncio.timeout(T):
        while call.sink.samples < 1.5 * RATE or incoming.sink.samples < 1.5 * RATE:
            await asyncio.sleep(0.05)
    sender = call.pc.getSenders()[0]
    encoder = vars(sender)["_RTCRtpSender__encoder"]
    receiver = call.pc.getReceivers()[0]
    jitter = vars(receiver)["_RTCRtpReceiver__jitter_buffer"]
    decoder_queue = vars(receiver)["_RTCRtpReceiver__decoder_queue"]
    track_queue = vars(receiver.track)["_queue"]
    path = ad.fast_path(sender.transport)
    assert path is not None
    fast_in, fast_out = path.fast_in, path.fast_out  # before the stats: they count on
    stats = await sender.getStats()
    out = next(s for s in stats.values() if s.type == "outbound-rtp")
    transport_stats = next(s for s in stats.values() if s.type == "transport")
    await call.hangup()
    await incoming.wait_ended(T)

    assert isinstance(encoder, ad.SpeechOpusEncoder)
    assert encoder.codec.channels == 1
    assert encoder.codec.get(opus_encoder.SET_BITRATE + 1) == 32_000
    kbps = out.bytesSent / out.packetsSent * 8 * 50 / 1000  # payload per 20 ms packet
    assert 16 < kbps < 48, kbps  # aiortc alone: ~70+ (96 kbit/s stereo)
    assert isinstance(jitter, ad.SpeechJitterBuffer) and jitter.stats.released > 50
    assert isinstance(decoder_queue, ad._InlineDecoderQueue) and decoder_queue._decoder is not None
    assert decoder_queue.qsize() == 0  # every frame was decoded inline, none left to the thread
    assert isinstance(track_queue, EagerQueue)  # the sink's task ran in the datagram callback
    assert "_next_encoded_frame" in vars(sender)  # encoded inline
    assert "_run_rtp" in vars(sender)  # packets written by the adapter's loop
    # media took the fast path both ways, and aiortc's transport stats still count it
    assert fast_in > 50 and fast_out > 50
    assert transport_stats.packetsReceived >= fast_in
    assert transport_stats.packetsSent >= fast_out
    a_rec, b_rec = read_wav(a_wav), read_wav(b_wav)
    assert abs(dominant_hz(a_rec[RATE // 4 :]) - 880) < 5
    assert abs(dominant_hz(b_rec[RATE // 4 :]) - 440) < 5


# ----------------------------------------------------------------- the per-packet fast path


async def test_run_eagerly_runs_a_coroutine_now_and_finishes_one_that_waits() -> None:
    done: list[str] = []

    async def quick() -> None:
        done.append("quick")

    ad.run_eagerly(quick())
    assert done == ["quick"]  # in the caller's stack, no task

    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        done.append("before")
        done.append(f"got {await gate}")
        await asyncio.sleep(0)  # a bare yield too
        done.append("after")

    ad.run_eagerly(waits())
    assert done == ["quick", "before"]  # ran up to the wait at once
    gate.set_result(7)
    async with asyncio.timeout(T):
        while "after" not in done:
            await asyncio.sleep(0.01)
    assert done == ["quick", "before", "got 7", "after"]

    failing: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    seen: list[BaseException] = []

    async def fails_later() -> None:
        try:
            await failing
        except ValueError as exc:
            seen.append(exc)  # the awaited future's error reaches the coroutine

    ad.run_eagerly(fails_later())
    failing.set_exception(ValueError("x"))
    async with asyncio.timeout(T):
        while not seen:
            await asyncio.sleep(0.01)


async def test_fast_path_is_installed_per_connection_and_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HELLO_TUI_FAST_RTP", raising=False)
    on = ad.adapt_peer_connection(RTCPeerConnection())
    monkeypatch.setenv("HELLO_TUI_FAST_RTP", "0")
    off = ad.adapt_peer_connection(RTCPeerConnection())
    try:
        for pc in (on, off):
            pc.addTransceiver("audio", direction="sendrecv")
            await pc.setLocalDescription(await pc.createOffer())  # creates the transports
        t_on, t_off = on.getTransceivers()[0], off.getTransceivers()[0]
        assert ad.fast_path(t_on.sender.transport) is not None
        assert "_send_rtp" in vars(t_on.sender.transport)
        assert ad.fast_path(t_off.sender.transport) is None
        assert "_send_rtp" not in vars(t_off.sender.transport)
    finally:
        await on.close()
        await off.close()


def test_fast_path_refuses_transports_without_the_expected_internals() -> None:
    class Bare:
        pass

    class Pc:
        def _RTCPeerConnection__createDtlsTransport(self) -> Any:
            dtls, ice = Bare(), Bare()
            ice._connection = Bare()  # type: ignore[attr-defined]
            dtls.transport = ice  # type: ignore[attr-defined]
            return dtls

    pc = ad.install_fast_path(Pc())  # type: ignore[arg-type]
    with pytest.raises(ad.AiortcAdapterError, match="_rx_srtp"):
        pc._RTCPeerConnection__createDtlsTransport()


@pytest.mark.parametrize(
    ("ids", "mid"),
    [
        ({"mid": 1, "abs": 2, "level": 3}, "0"),  # what aiortc offers for audio
        ({"mid": 4, "abs": 0, "level": 10}, "audio"),  # a browser's ids, no abs-send-time
        ({"mid": 0, "abs": 0, "level": 0}, None),  # nothing negotiated
        ({"mid": 9, "abs": 3, "level": 0}, "a-long-mid-value"),  # 16 bytes: still one-byte
    ],
)
def test_rtp_audio_writer_writes_aiortcs_bytes(ids: dict[str, int], mid: str | None) -> None:
    from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters
    from aiortc.rtp import HeaderExtensionsMap

    uris = {
        "mid": "urn:ietf:params:rtp-hdrext:sdes:mid",
        "abs": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
        "level": "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    }
    ext_map = HeaderExtensionsMap()
    ext_map.configure(
        RTCRtpSendParameters(
            headerExtensions=[
                RTCRtpHeaderExtensionParameters(id=i, uri=uris[k]) for k, i in ids.items() if i
            ]
        )
    )
    writer = ad.RtpAudioWriter.for_map(ext_map, mid)
    assert writer is not None
    for seq, level, payload in ((1, -30, b"\x78abc"), (65535, None, b"\xfc"), (7, 0, b"x" * 61)):
        packet = RtpPacket(111, 1, seq, 0xDEADBEEF, 0x1234_5678, payload)
        packet.extensions.mid = mid
        packet.extensions.abs_send_time = 0xABCDEF
        if level is not None:
            packet.extensions.audio_level = (False, -level)
        mine = writer.serialize(111, 1, seq, 0xDEADBEEF, 0x1234_5678, payload, 0xABCDEF, level)
        assert mine == packet.serialize(ext_map)
        assert RtpPacket.parse(mine, ext_map).payload == payload
    # two-byte headers (an id above 14): aiortc's own loop
    ext_map.configure(RTCRtpSendParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=15, uri=uris["level"])]))  # fmt: skip
    assert ad.RtpAudioWriter.for_map(ext_map, mid) is None


def test_ntp_now_is_aiortcs_clock() -> None:
    from aiortc import clock

    before, mine, after = clock.current_ntp_time(), ad._ntp_now(), clock.current_ntp_time()
    assert before - 2**22 <= mine <= after + 2**22  # within a millisecond (2**32 per second)
