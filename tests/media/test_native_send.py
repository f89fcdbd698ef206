"""The audio send path in C (media/send_path.cpp, media/native_send.py, the adapter's
``_NativeSender``): the packets are the Python path's, byte for byte; in a real call the
capture thread sends, the far end decodes the tone, the SRs stay right; any change
(mute, a new track, a relayed or changed pair, C giving up) hands the stream back
without a gap in sequence numbers or timestamps.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import aioice.ice
import numpy as np
import pylibsrtp
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RtcpSrPacket, RtpPacket

from hello_tui.call import events as ev
from hello_tui.call.peer import new_peer_connection
from hello_tui.media import aiortc_adapter as ad
from hello_tui.media import capture_native, devices, native_send, sources
from hello_tui.media.audio_format import make_frame
from hello_tui.media.audio_processing import ProcessingConfig
from hello_tui.media.levels import rms_dbfs
from hello_tui.media.sources import DeviceSource, open_audio_source
from hello_tui.media.tracks import GatedTrack, MeteredTrack
from tests.call import conftest as call_fixtures
from tests.call.conftest import MIC, RATE, Env, T, dominant_hz, read_wav
from tests.pulse import PulseDaemon

start_env = call_fixtures.start_env
env = call_fixtures.env
pulse_devices = call_fixtures.pulse_devices

pytestmark = pytest.mark.skipif(
    not native_send.available() or not capture_native.available(),
    reason="the AEC3 shim (with capture_path.cpp and send_path.cpp) is not built",
)

FRAME = 960


@pytest.fixture(autouse=True)
def twenty_ms_packets(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the 20 ms send path; 10 ms packets (the default since session 12)
    have their own: tests/media/test_ptime.py."""
    monkeypatch.setenv(ad.PTIME_KNOB, "20")


NTP_EPOCH_S = 2_208_988_800
SSRC = 0x1234_5678
PT = 111


def tone_frames(n: int, hz: float = 440.0, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(FRAME * n) / RATE
    sig = np.sin(2 * np.pi * hz * t) * 8000 + rng.normal(0, 300, len(t))
    frames = list(sig.astype(np.int16).reshape(n, FRAME))
    frames[3] = np.zeros(FRAME, dtype=np.int16)  # silence: level -127
    frames[4] = np.full(FRAME, 32767, dtype=np.int16)  # full scale: level 0
    return frames


def ntp_at(i: int) -> int:
    return (3_900_000_000 << 32) + i * 85_899_345  # 20 ms apart


async def until(check: Callable[[], bool], timeout: float = T) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def pulse_call_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
    monkeypatch.setenv(capture_native.KNOB, "1")  # the read callback in C
    monkeypatch.setenv(native_send.KNOB, "1")


class Tone:
    """A pulse playback callback: a continuous tone into the caller's "microphone"."""

    def __init__(self, hz: float) -> None:
        self.hz, self.n = hz, 0

    def __call__(self, out: Any, frames: int, when: Any, status: Any) -> None:
        t = np.arange(self.n, self.n + frames) / RATE
        out[:, 0] = (np.sin(2 * np.pi * self.hz * t) * 0.3 * 32767).astype(np.int16)
        self.n += frames


async def test_in_a_real_call_the_capture_thread_sends_and_the_far_end_hears_the_tone(
    env: Env, pulse_devices: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two phones through the real server; the caller's microphone is a pulse null
    sink's monitor with a 440 Hz tone played into it, its read callback in C. The
    capture thread sends; the callee's recording is the tone at its level; the SRs the
    callee gets count exactly the packets between them; aiortc's stats count C's."""
    pulse_call_env(monkeypatch)
    played, _ = devices.open_stream("output", MIC, Tone(440), samplerate=RATE, blocksize=480)
    played.start()
    try:
        alice = await env.phone(
            "alice", audio_processing=ProcessingConfig(aec=False, noise_suppression=False,
                                                       auto_gain=False),
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
        assert call.pc is not None
        sender = call.pc.getSenders()[0]
        native = ad.native_sender(sender)
        assert native is not None
        far = FarEnd(incoming.pc)
        await until(lambda: native.frames_in_c() > 100)
        await until(lambda: len(far.srs) >= 3)
        stats = await sender.getStats()
        await call.hangup()
        await incoming.wait_ended(T)
    finally:
        played.close()
    assert native.stretches >= 1 and native.frames_in_c() > 100
    out = next(s for s in stats.values() if s.type == "outbound-rtp")
    assert out.packetsSent >= native.frames_in_c()  # C's packets counted as aiortc counts
    check_sr_deltas(far)
    heard = read_wav(b_wav)[RATE // 2 :]
    assert abs(dominant_hz(heard) - 440) < 5
    assert -17 < rms_dbfs(heard) < -10  # played at 0.3 of full scale: -13.5 dBFS


# ----------------------------------------------------------------- byte for byte


def python_packets(
    frames: list[np.ndarray], seq: int, ts: int, writer: ad.RtpAudioWriter
) -> list[bytes]:
    """What the adapter's Python loop writes for ``frames`` (a fresh encoder)."""
    encoder, out = ad.SpeechOpusEncoder(), []
    for i, pcm in enumerate(frames):
        frame = make_frame(pcm, 0)
        level = ad.audio_level_dbov(frame)
        (payload,), _ = encoder.encode(frame)
        abs_time = (ntp_at(i) >> 14) & 0xFFFFFF
        out.append(writer.serialize(PT, 1, seq, ts, SSRC, payload, abs_time, level))
        seq, ts = (seq + 1) & 0xFFFF, (ts + FRAME) & 0xFFFF_FFFF
    return out


def c_send(
    encoder: ad.SpeechOpusEncoder, srtp: tuple[int, int] = (0, 0), session: Any = None,
    samples: int = FRAME,
) -> native_send.NativeSend:  # fmt: skip
    state, encode = encoder.codec.native()
    return native_send.NativeSend(state, encode, *srtp, keep=(encoder, session), samples=samples)


@pytest.mark.parametrize("ids", [(1, 2, 3), (0, 0, 3), (4, 0, 0), (0, 0, 0), (14, 13, 12)], ids=str)
def test_the_c_packets_are_the_python_paths_byte_for_byte(ids: tuple[int, int, int]) -> None:
    """The same frames (a tone, silence, full scale), across the sequence number's and
    the timestamp's wrap: C's plain RTP packets are RtpAudioWriter's with the Python
    encoder's payloads and level, for each set of negotiated extension ids."""
    mid_id, abs_id, level_id = ids
    writer = ad.RtpAudioWriter(mid_id, b"0" if mid_id else b"", abs_id, level_id)
    frames = tone_frames(40)
    seq, ts = 65_520, 0xFFFF_FFFF - 10 * FRAME
    expected = python_packets(frames, seq, ts, writer)
    send = c_send(ad.SpeechOpusEncoder())
    try:
        send.set_rtp(PT, SSRC, seq, ts, *writer.native_ids)
        got = [send.packet(f, ntp_at(i)) for i, f in enumerate(frames)]
        state = send.state()
    finally:
        send.close()
    assert got == expected
    assert (state.seq, state.timestamp) == ((seq + 40) & 0xFFFF, (ts + 40 * FRAME) & 0xFFFF_FFFF)
    assert state.frames == state.packets == 40
    assert state.octets == sum(len(RtpPacket.parse(p).payload) for p in expected)


def test_switching_encoders_mid_stream_keeps_the_python_paths_bytes() -> None:
    """Python encodes 10 frames, C the next 15 with the same libopus state, Python
    the rest: the stream is the one Python alone writes."""
    writer = ad.RtpAudioWriter(1, b"0", 2, 3)
    frames = tone_frames(40)
    expected = python_packets(frames, 100, 5000, writer)
    encoder, got = ad.SpeechOpusEncoder(), []
    seq, ts = 100, 5000
    for i, pcm in enumerate(frames):
        if i == 10:  # hand over to C
            send = c_send(encoder)
            send.set_rtp(PT, SSRC, seq, ts, *writer.native_ids)
        if 10 <= i < 25:
            got.append(send.packet(pcm, ntp_at(i)))
            if i == 24:  # and back
                state = send.state()
                send.close()
                seq, ts = state.seq, state.timestamp
                encoder.next_pts += FRAME * state.frames
            continue
        frame = make_frame(pcm, 0)
        (payload,), _ = encoder.encode(frame)
        level = ad.audio_level_dbov(frame)
        got.append(
            writer.serialize(PT, 1, seq, ts, SSRC, payload, (ntp_at(i) >> 14) & 0xFFFFFF, level)
        )
        seq, ts = (seq + 1) & 0xFFFF, (ts + FRAME) & 0xFFFF_FFFF
    assert got == expected
    assert encoder.next_pts == 40 * FRAME


def test_c_srtp_is_pylibsrtps_for_the_same_key_ssrc_and_index() -> None:
    """C protects with a second session on the same key (SSRC-specific): the bytes are
    those of aiortc's kind of session (any outbound) for the same packets, also past a
    sequence number wrap (the rollover counter set on the fresh session)."""
    profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    key = bytes(range(30))  # 128-bit master key + 112-bit salt
    aiortcs = pylibsrtp.Session(
        pylibsrtp.Policy(
            key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile
        )
    )
    writer = ad.RtpAudioWriter(1, b"0", 2, 3)
    frames = tone_frames(12)
    plain = python_packets(frames, 65_530, 0, writer)
    wire = [aiortcs.protect(p) for p in plain]  # seq 65530 .. 65535, 0 .. 5: ROC 1 after
    # C takes over at the 9th packet (seq 2, ROC 1).
    session = pylibsrtp.Session(
        pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC, ssrc_value=SSRC,
                         srtp_profile=profile)
    )  # fmt: skip
    ad.set_srtp_roc(session, SSRC, 1)
    encoder = ad.SpeechOpusEncoder()
    for f in frames[:8]:
        encoder.encode(make_frame(f, 0))
    send = c_send(encoder, ad.srtp_native(session), session)
    try:
        send.set_rtp(PT, SSRC, 2, 8 * FRAME, *writer.native_ids)
        got = [send.packet(f, ntp_at(8 + i), protect=True) for i, f in enumerate(frames[8:])]
    finally:
        send.close()
    assert got == wire[8:]


# ----------------------------------------------------------------- a live stream, switched


class FakeCard:
    """The pulse stream's stand-in: its blocks are fed to the real C capture by the test
    (``Binding.chunk``, what libpulse's read callback does per chunk)."""

    native = True
    active = True
    latency = 0.01


@pytest.fixture
def chunk_microphone(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv(capture_native.KNOB, "1")
    monkeypatch.setattr(sources, "open_stream", lambda *a, **k: (FakeCard(), None))
    monkeypatch.setattr(sources, "start_stream", lambda *a, **k: None)
    monkeypatch.setattr(sources, "close_stream", lambda *a, **k: None)
    monkeypatch.setattr(sources, "STALL_TIMEOUT", 60.0)  # no silence in between: lockstep
    source = DeviceSource("device:test", "test")
    assert source._native is not None
    binding = source._native.bind(0, 480, 0.01)
    yield source, binding
    source.stop()
    binding.unbind()


async def connected_peers(
    track: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[RTCPeerConnection, RTCPeerConnection]:
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    a, b = new_peer_connection([]), new_peer_connection([])
    if track is None:  # a renewed connection's sender, before the track moves to it
        a.addTransceiver("audio", direction="sendrecv")
    else:
        a.addTrack(track)
    await a.setLocalDescription(await a.createOffer())
    await b.setRemoteDescription(a.localDescription)
    await b.setLocalDescription(await b.createAnswer())
    await a.setRemoteDescription(b.localDescription)
    return a, b


class FarEnd:
    """What the far end gets: each RTP packet in plain (after its SRTP session) and each
    sender report, recorded where its fast path hands them on."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        receiver = pc.getReceivers()[0]
        path = ad.fast_path(receiver.transport)
        assert path is not None
        self.plain: list[bytes] = []
        self.arrived: list[float] = []  # time.time() of each
        self.srs: list[tuple[int, Any]] = []  # (packets received then, sender info)
        own_rtp, own_rtcp = path._rtp, receiver._handle_rtcp_packet

        def rtp(data: bytes) -> None:
            self.plain.append(bytes(data))
            self.arrived.append(time.time())
            own_rtp(data)

        async def rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                self.srs.append((len(self.plain), packet.sender_info))
            await own_rtcp(packet)

        path._rtp = rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = rtcp  # type: ignore[method-assign]


def check_stream(plain: list[bytes]) -> list[RtpPacket]:
    """The packets, each the next sequence number and 20 ms later."""
    packets = [RtpPacket.parse(p) for p in plain]
    for before, after in itertools.pairwise(packets):
        assert after.sequence_number == (before.sequence_number + 1) & 0xFFFF
        assert after.timestamp == (before.timestamp + FRAME) & 0xFFFF_FFFF
    return packets


def check_srs(far: FarEnd, packets: list[RtpPacket]) -> None:
    """Each SR describes the stream as sent: its counts are those of the packets up to
    the one with its RTP timestamp, which left at its NTP time (before it arrived, and
    not long before: loopback)."""
    assert far.srs
    by_ts = {p.timestamp: i for i, p in enumerate(packets)}
    for received, info in far.srs:
        n = info.packet_count
        # Exactly the packets up to the one with its RTP timestamp, which had arrived.
        assert n == by_ts[info.rtp_timestamp] + 1 <= received
        assert info.octet_count == sum(len(p.payload) for p in packets[:n])
        sent_at = (info.ntp_timestamp >> 32) + (info.ntp_timestamp & 0xFFFF_FFFF) / 2**32
        arrived = far.arrived[n - 1] + NTP_EPOCH_S
        assert arrived - 1.0 < sent_at <= arrived + 0.001


def check_sr_deltas(far: FarEnd) -> None:
    """Between two SRs (of a stream recorded from some point on): the packet count grew
    by the packets between their RTP timestamps, the octet count by their payloads."""
    packets = check_stream(far.plain)
    by_ts = {p.timestamp: i for i, p in enumerate(packets)}
    pairs = [(x, y) for x, y in itertools.pairwise(far.srs)
             if x[1].rtp_timestamp in by_ts and y[1].rtp_timestamp in by_ts]  # fmt: skip
    assert pairs
    for (_, x), (_, y) in pairs:
        i, j = by_ts[x.rtp_timestamp], by_ts[y.rtp_timestamp]
        assert y.packet_count - x.packet_count == j - i > 0
        assert y.octet_count - x.octet_count == sum(len(p.payload) for p in packets[i + 1 : j + 1])


async def test_a_stream_switched_between_python_and_c_is_the_python_paths_byte_for_byte(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two adapted peers on loopback; the microphone's frames fed one at a time through
    the real C capture. C takes the stream, hands it back when muted (the muted frames
    are Python's zeros), when the track is replaced and after a long stretch, and takes
    it again: every plain packet the far end gets is what the Python path alone writes
    for the same frames, sequence numbers and timestamps unbroken, SRs consistent."""
    monkeypatch.setenv(native_send.KNOB, "1")
    monkeypatch.setattr(ad, "NATIVE_CHECK_EVERY", 5)
    monkeypatch.setattr(ad, "NATIVE_MAX_STRETCH", 60)
    monkeypatch.setattr(ad, "NATIVE_TICK_S", 0.03)
    source, binding = chunk_microphone
    gate = GatedTrack(source)
    metered = MeteredTrack(gate)
    a, b = await connected_peers(metered, monkeypatch)
    try:
        far = FarEnd(b)
        await until(lambda: source.started)
        sender = a.getSenders()[0]
        native = ad.native_sender(sender)
        assert native is not None
        frames = iter(tone_frames(600))
        sent: list[np.ndarray] = []
        t = time.monotonic()

        async def feed(n: int, *, wait: bool = True) -> None:
            for _ in range(n):
                pcm = next(frames)
                sent.append(np.zeros(FRAME, dtype=np.int16) if gate.muted else pcm)
                binding.chunk(pcm, t + len(sent) * 0.02)
                if wait:
                    await until(lambda: len(far.plain) >= len(sent))

        async def until_c_sends() -> None:
            while native.send is None:
                await feed(1)

        await feed(60)
        await until_c_sends()
        gate.muted = True  # C stops at once: the next frame is Python's zeros
        await feed(30)
        gate.muted = False
        await feed(30)
        await until_c_sends()
        sender.replaceTrack(None)  # C stops at once; the frames wait (4: the queue holds 5)
        await feed(4, wait=False)
        sender.replaceTrack(metered)
        await until(lambda: len(far.plain) >= len(sent))
        await feed(150)
        await until(lambda: len(far.plain) == len(sent))
        ext_map = vars(sender)["_RTCRtpSender__rtp_header_extensions_map"]
        writer = ad.RtpAudioWriter.for_map(ext_map, vars(sender)["_RTCRtpSender__mid"])
        assert writer is not None
        await until(lambda: len(far.srs) >= 2)
    finally:
        await a.close()
        await b.close()

    packets = check_stream(far.plain)
    parsed = [RtpPacket.parse(p, ext_map) for p in far.plain]
    encoder = ad.SpeechOpusEncoder()
    for i, (pcm, got) in enumerate(zip(sent, parsed, strict=True)):
        frame = make_frame(pcm, 0)
        (payload,), _ = encoder.encode(frame)
        want = writer.serialize(
            got.payload_type, 1, got.sequence_number, got.timestamp, got.ssrc, payload,
            got.extensions.abs_send_time, ad.audio_level_dbov(frame),
        )  # fmt: skip
        assert far.plain[i] == want, f"packet {i}"
    assert native.native_frames > 150 and native.stretches >= 4, (native.ends, native.stretches)
    assert native.ends.get("stopped", 0) >= 2 and native.ends.get("long", 0) >= 1, native.ends
    assert source.frames_sent == len(sent) and source.dropped == 0
    check_srs(far, [RtpPacket.parse(p, ext_map) for p in far.plain])
    assert packets[0].ssrc == sender._ssrc


async def lockstep(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any, FarEnd, Callable[..., Any], RTCPeerConnection, RTCPeerConnection]:
    """Peers and a feeder for the fallback tests: ``feed(n, wait=True)``."""
    monkeypatch.setenv(native_send.KNOB, "1")
    monkeypatch.setattr(ad, "NATIVE_CHECK_EVERY", 5)
    monkeypatch.setattr(ad, "NATIVE_TICK_S", 0.03)
    source, binding = chunk_microphone
    a, b = await connected_peers(MeteredTrack(GatedTrack(source)), monkeypatch)
    far = FarEnd(b)
    await until(lambda: source.started)
    frames = itertools.cycle(tone_frames(100))
    t, fed = time.monotonic(), [0]

    async def feed(n: int, *, wait: bool = True) -> None:
        for _ in range(n):
            fed[0] += 1
            binding.chunk(next(frames), t + fed[0] * 0.02)
            if wait:
                await until(lambda: len(far.plain) >= fed[0])

    return source, a.getSenders()[0], far, feed, a, b


async def test_when_c_gives_up_python_sends_on_without_a_gap(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C's socket is wrong (here a pipe): its first send fails, it sends nothing,
    wakes the loop, and Python sends that frame and the rest; after
    NATIVE_MAX_FAILURES such stretches the sender stays Python."""
    read_end, write_end = os.pipe()
    own = native_send.NativeSend.set_peer
    monkeypatch.setattr(
        native_send.NativeSend,
        "set_peer",
        lambda self, fd, host, port: own(self, write_end, host, port),
    )
    _, sender, far, feed, a, b = await lockstep(chunk_microphone, monkeypatch)
    try:
        await feed(60)
        native = ad.native_sender(sender)
        assert native is not None
        assert native.ends.get("failed") == ad.NATIVE_MAX_FAILURES
        assert native.native_frames == 0 and not native.due()
    finally:
        await a.close()
        await b.close()
        os.close(read_end)
        os.close(write_end)
    assert len(check_stream(far.plain)) == 60


async def test_a_held_sender_is_stopped_in_c_and_sends_nothing(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The transceiver's direction stops sending (aiortc clears the sender's
    ``_enabled``): the stretch ends at its next look, then nothing is sent (aiortc's
    rule); sending again goes on with the next sequence number and timestamp."""
    _, sender, far, feed, a, b = await lockstep(chunk_microphone, monkeypatch)
    try:
        native = ad.native_sender(sender)
        assert native is not None
        while native.send is None:
            await feed(1)
        sender._enabled = False
        async with asyncio.timeout(T):
            while native.send is not None:
                await feed(1, wait=False)
                await asyncio.sleep(0.005)
        assert native.ends == {"ineligible": 1}
        assert native.check() == "the sender is disabled (direction)"
        await asyncio.sleep(0.1)
        held = len(far.plain)
        await feed(10, wait=False)
        await asyncio.sleep(0.3)
        assert len(far.plain) == held  # read and dropped, as aiortc does
        sender._enabled = True
        for _ in range(30):  # one at a time: each is sent (C's queue holds 16)
            before = len(far.plain)
            await feed(1, wait=False)
            await until(lambda before=before: len(far.plain) > before)
        assert native.stretches == 2  # C took it again
    finally:
        await a.close()
        await b.close()
    check_stream(far.plain)


async def test_a_relayed_pair_is_never_sent_on_from_c() -> None:
    """aioice gives a TURN candidate a StunProtocol too, on its TurnTransport: C only
    ever sends on asyncio's own UDP socket of a non-relayed candidate."""
    from aioice import Candidate
    from aioice.ice import CandidatePair, StunProtocol
    from aioice.turn import TurnTransport

    def pair_of(kind: str, transport: Any) -> CandidatePair:
        protocol = StunProtocol(SimpleNamespace())
        protocol.transport = transport
        protocol.local_candidate = Candidate("1", 1, "udp", 1, "127.0.0.1", 1000, kind)
        return CandidatePair(protocol, Candidate("2", 1, "udp", 1, "127.0.0.1", 2000, "host"))

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0)
    )
    try:
        inner = SimpleNamespace(relayed_address=("10.0.0.1", 3000), mapped_address=None)
        turn = TurnTransport(inner)  # type: ignore[arg-type]
        for kind, via, ok in (("host", transport, True), ("srflx", transport, True),
                              ("relay", transport, False), ("relay", turn, False),
                              ("host", turn, False)):  # fmt: skip
            found = ad.direct_pair(SimpleNamespace(_nominated={1: pair_of(kind, via)}))
            assert (found is not None) is ok, (kind, via)
            if found is not None:
                assert found[1:] == ("127.0.0.1", 2000)
        assert ad.direct_pair(SimpleNamespace(_nominated={})) is None
    finally:
        transport.close()


# ----------------------------------------------------------------- the aiortc internals it reads


async def test_the_tx_key_is_the_one_aiortcs_own_session_protects_with(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key derived again from the DTLS connection (aiortc keeps only its session)
    protects a packet to the very bytes aiortc's tx session makes of it, on both ends
    (client and server role); an SSRC-specific session for C too. On an aiortc upgrade
    that moves _ssl, _role, _srtp_profiles or pylibsrtp's _srtp this fails loudly."""
    a, b = await connected_peers(open_audio_source("sine:440"), monkeypatch)
    try:
        await until(lambda: all(ad.fast_path(pc.getSenders()[0].transport) for pc in (a, b)))
        for pc in (a, b):
            dtls = pc.getSenders()[0].transport
            await until(lambda dtls=dtls: dtls._tx_srtp is not None)
            ssrc = 0xDEAD_BEEF  # a stream no one receives: aiortc's session may protect it
            packet = ad.RtpAudioWriter(1, b"0", 0, 3).serialize(
                PT, 1, 7, 960, ssrc, b"\x78" * 40, 0, -20
            )
            key, profile = ad.tx_srtp_key(dtls)
            mine = ad.sender_srtp_session(dtls, ssrc)
            assert mine.protect(packet) == dtls._tx_srtp.protect(packet)
            pointer, protect = ad.srtp_native(mine)
            assert pointer and protect
            assert profile in (p.libsrtp_profile for p in dtls._srtp_profiles)
            assert len(key) in (30, 44, 28, 46)  # key + salt of the profiles aiortc offers
    finally:
        await a.close()
        await b.close()


def test_objects_without_the_expected_internals_are_refused() -> None:
    with pytest.raises(ad.AiortcAdapterError):
        ad.tx_srtp_key(SimpleNamespace())
    with pytest.raises(ad.AiortcAdapterError):
        ad.srtp_native(SimpleNamespace())  # type: ignore[arg-type]
    with pytest.raises(ad.AiortcAdapterError):
        ad._NativeSender(SimpleNamespace(), PT, ad.RtpAudioWriter(1, b"0", 0, 3))  # type: ignore[arg-type]


def test_with_the_knob_off_or_no_shim_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native_send.KNOB, "0")
    assert not ad.native_send_enabled() and not native_send.enabled()
    monkeypatch.delenv(native_send.KNOB, raising=False)  # the default: on
    assert ad.native_send_enabled() and native_send.enabled()
    monkeypatch.setenv(native_send.KNOB, "1")
    assert ad.native_send_enabled()
    monkeypatch.setattr(native_send, "available", lambda: False)
    assert not ad.native_send_enabled()


async def test_a_renewed_connection_takes_the_track_from_c_at_once(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a call's renewal moves its track (Call._move_tracks: the old connection's
    sender gets None, the new one's the track): the old connection's stretch in C stops
    at once, the new connection gets every frame from then on, written as the Python
    path writes them for its own fresh encoder, and C takes the stream there too."""
    monkeypatch.setenv(native_send.KNOB, "1")
    monkeypatch.setattr(ad, "NATIVE_CHECK_EVERY", 5)
    monkeypatch.setattr(ad, "NATIVE_TICK_S", 0.03)
    source, binding = chunk_microphone
    metered = MeteredTrack(GatedTrack(source))
    a1, b1 = await connected_peers(metered, monkeypatch)
    a2 = b2 = None
    try:
        far1 = FarEnd(b1)
        await until(lambda: source.started)
        old = ad.native_sender(a1.getSenders()[0])
        assert old is not None
        frames = iter(tone_frames(300))
        t, fed = time.monotonic(), [0]

        async def feed(far: FarEnd, count: int) -> list[np.ndarray]:
            sent = []
            for _ in range(count):
                pcm = next(frames)
                before = len(far.plain)
                fed[0] += 1
                binding.chunk(pcm, t + fed[0] * 0.02)
                sent.append(pcm)
                await until(lambda before=before: len(far.plain) > before)
            return sent

        while old.send is None:
            await feed(far1, 1)
        a2, b2 = await connected_peers(None, monkeypatch)
        far2 = FarEnd(b2)
        new_sender = a2.getSenders()[0]
        await until(lambda: vars(new_sender)["_RTCRtpSender__rtp_started"].is_set())
        a1.getSenders()[0].replaceTrack(None)  # what _move_tracks does, in its order
        assert old.send is None or not old.send.attached  # C stopped at once
        new_sender.replaceTrack(metered)
        heard_before = len(far1.plain)
        sent = await feed(far2, 120)
        new = ad.native_sender(new_sender)
        assert new is not None and new.frames_in_c() > 0 and new.stretches >= 1
        assert len(far1.plain) == heard_before  # nothing more on the old connection
        ext_map = vars(new_sender)["_RTCRtpSender__rtp_header_extensions_map"]
        writer = ad.RtpAudioWriter.for_map(ext_map, vars(new_sender)["_RTCRtpSender__mid"])
        assert writer is not None
    finally:
        for pc in (a1, b1, a2, b2):
            if pc is not None:
                await pc.close()
    assert old.ends.get("stopped") == 1
    check_stream(far2.plain)
    encoder = ad.SpeechOpusEncoder()
    for pcm, plain in zip(sent, far2.plain, strict=True):
        got = RtpPacket.parse(plain, ext_map)
        frame = make_frame(pcm, 0)
        (payload,), _ = encoder.encode(frame)
        assert plain == writer.serialize(
            got.payload_type, 1, got.sequence_number, got.timestamp, got.ssrc, payload,
            got.extensions.abs_send_time, ad.audio_level_dbov(frame),
        )  # fmt: skip


async def test_with_the_knob_but_without_the_shims_send_path_python_sends(
    chunk_microphone: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shim built before send_path.cpp (or none): the knob changes nothing, the
    frames go the Python way."""
    monkeypatch.setattr(native_send, "available", lambda: False)
    _, sender, far, feed, a, b = await lockstep(chunk_microphone, monkeypatch)
    try:
        await feed(30)
        assert ad.native_sender(sender) is None
    finally:
        await a.close()
        await b.close()
    assert len(check_stream(far.plain)) == 30
