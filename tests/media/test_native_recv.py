"""The audio receive path in C (media/recv_path.cpp, media/native_recv.py, the adapter's
``_NativeReceiver``): its jitter buffer and decoder give the Python path's PCM and
counters for the same packets; the receiver statistics are aiortc's; the state moves
between the two without a frame lost or played twice; in a real call the C thread reads
the socket and the far end's tone is played.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pylibsrtp
import pytest
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import RtpPacket
from hypothesis import given, settings
from hypothesis import strategies as st

from hello_tui.call import events as ev
from hello_tui.call.peer import new_peer_connection
from hello_tui.media import aiortc_adapter as ad
from hello_tui.media import devices, native_recv
from hello_tui.media.audio_processing import ProcessingConfig
from hello_tui.media.levels import rms_dbfs
from hello_tui.media.opus_decoder import OpusDecoder, OpusError
from hello_tui.media.opus_encoder import OpusEncoder
from tests.call import conftest as call_fixtures
from tests.call.conftest import MIC, RATE, SPEAKER, Env, T, dominant_hz
from tests.pulse import PulseDaemon

start_env = call_fixtures.start_env
env = call_fixtures.env
pulse_devices = call_fixtures.pulse_devices

pytestmark = pytest.mark.skipif(
    not native_recv.available(), reason="the AEC3 shim (with recv_path.cpp) is not built"
)

FRAME = 960


def opus_packets(n: int, *, fec: bool = True, seed: int = 3) -> list[bytes]:
    """``n`` 20 ms Opus packets of a voice-like signal (with LBRR when ``fec``)."""
    rng = np.random.default_rng(seed)
    enc = OpusEncoder(RATE, 1, bitrate=32_000, fec=fec, packet_loss_pct=10 if fec else 0)
    t = np.arange(FRAME * n) / RATE
    sig = (np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) * 6000
           + rng.normal(0, 400, len(t)))  # fmt: skip
    pcm = sig.astype(np.int16)
    return [enc.encode(pcm[i * FRAME : (i + 1) * FRAME]) for i in range(n)]


class PythonPath:
    """SpeechJitterBuffer and the inline decoder queue's decoding, without aiortc's
    receiver: the frames as _InlineDecoderQueue._deliver decodes them."""

    def __init__(self, tuning: ad.AudioTuning, clock: list[float]) -> None:
        self.jb = ad.SpeechJitterBuffer(tuning, clock=lambda: clock[0])
        self.decoder = OpusDecoder(RATE, 1)
        self.pcm: list[np.ndarray] = []

    def add(self, seq: int, ts: int, payload: bytes) -> None:
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=ts, payload=payload)
        packet._data = payload  # type: ignore[attr-defined]
        _, frame = self.jb.add(packet)
        if frame is None:
            return
        parts = frame.parts if isinstance(frame, ad.JitterBundle) else [frame]
        for part in parts:
            try:
                if isinstance(part, ad.FecFrame):
                    pcm = self.decoder.recover(part.data, part.samples)
                elif isinstance(part, ad.ConcealFrame):
                    pcm = self.decoder.conceal(part.samples)
                else:
                    pcm = self.decoder.decode(part.data)
            except OpusError:  # as the queue: the frame dropped, the decoder kept
                continue
            if pcm.size:
                self.pcm.append(pcm)

    def take(self) -> np.ndarray:
        out = np.concatenate(self.pcm) if self.pcm else np.zeros(0, dtype=np.int16)
        self.pcm = []
        return out


def tuning_of(t: ad.AudioTuning) -> tuple[float, ...]:
    return (t.min_depth_ms, t.max_depth_ms, t.capacity, t.max_conceal_ms, float(t.decode_fec))


def c_path(tuning: ad.AudioTuning) -> tuple[native_recv.NativeRecv, OpusDecoder]:
    decoder = OpusDecoder(RATE, 1)
    state, decode = decoder.native()
    return native_recv.NativeRecv(state, decode, tuning_of(tuning), keep=(decoder,)), decoder


def stats_of(fields: list[float]) -> tuple[int, ...]:
    return tuple(int(v) for v in fields[13:20])


def run_both(
    arrivals: list[tuple[int, int, bytes, float]], tuning: ad.AudioTuning | None = None
) -> None:
    """Each (seq, timestamp, payload, arrival time) to both paths: the same PCM after
    every packet, the same counters, target and jitter at the end."""
    t = tuning or ad.AudioTuning(decode_fec=True)
    clock = [0.0]
    py = PythonPath(t, clock)
    c, _ = c_path(t)
    for seq, ts, payload, at in arrivals:
        clock[0] = at
        py.add(seq & 0xFFFF, ts & 0xFFFF_FFFF, payload)
        c.test_add(seq & 0xFFFF, ts, payload, at)
        np.testing.assert_array_equal(c.test_take(), py.take(), err_msg=f"at seq {seq}")
    fields, delays, held = c.jitter()
    s = py.jb.stats
    assert stats_of(fields) == (s.released, s.concealed, s.recovered, s.gaps, s.late,
                                s.duplicates, s.resets)  # fmt: skip
    assert fields[11] == py.jb.target_ms
    assert round(fields[12], 2) == s.jitter_ms
    assert delays == list(py.jb._delays)
    assert sorted(held) == sorted((seq, p.timestamp, p._data) for seq, p in py.jb._held.items())


Arrivals = list[tuple[int, int, bytes, float]]


def steady(packets: list[bytes], order: list[int], *, seq0: int = 1000, ts0: int = 5000,
           jitter: list[float] | None = None, step: int = FRAME) -> Arrivals:  # fmt: skip
    """Packet i (by index into ``packets``) sent at 20 ms * i, arriving in ``order``."""
    out = []
    for k, i in enumerate(order):
        at = 100.0 + k * 0.02 + (jitter[k] if jitter else 0.0)
        out.append((seq0 + i, ts0 + i * step, packets[i], at))
    return out


PACKETS = opus_packets(60)


def test_in_order_packets_decode_to_the_python_paths_pcm() -> None:
    run_both(steady(PACKETS, list(range(60))))


def test_a_reordered_packet_waits_and_plays_in_order() -> None:
    order = list(range(60))
    order[10], order[11] = order[11], order[10]
    order[30], order[32] = order[32], order[30]
    run_both(steady(PACKETS, order))


@pytest.mark.parametrize("fec", [True, False])
@pytest.mark.parametrize("lost", [[20], [20, 21, 22], list(range(20, 30))])
def test_losses_are_concealed_or_recovered_as_python_does(fec: bool, lost: list[int]) -> None:
    packets = opus_packets(60, fec=fec)
    order = [i for i in range(60) if i not in lost]
    run_both(steady(packets, order), ad.AudioTuning(decode_fec=True))


def test_duplicates_and_late_packets_are_counted_as_python_counts_them() -> None:
    order = list(range(40))
    order.insert(15, 12)  # a duplicate, behind the release point: late
    order.insert(25, 24)  # a duplicate just released: late too
    arrivals = steady(PACKETS, order)
    arrivals.insert(30, arrivals[30])  # the same packet twice in a row
    run_both(arrivals)


def test_sequence_numbers_and_timestamps_wrap() -> None:
    run_both(steady(PACKETS, list(range(60)), seq0=0xFFF0, ts0=0xFFFF_F000))


def test_a_restarted_stream_resets_both() -> None:
    first = steady(PACKETS[:20], list(range(20)))
    second = [(seq + 30_000, ts + 10_000_000, p, at + 1.0) for seq, ts, p, at in first]
    behind = [(seq - 500, ts, p, at + 2.0) for seq, ts, p, at in second[:5]]
    run_both(first + second + behind)


def test_longer_packets_change_the_frame_length_learnt() -> None:
    # 40 ms steps (timestamps), with a loss: the concealment is in 40 ms frames.
    order = [i for i in range(40) if i != 17]
    run_both(steady(PACKETS, order, step=2 * FRAME))


def test_late_arrivals_raise_the_target_identically() -> None:
    rng = np.random.default_rng(7)
    jitter = list(rng.exponential(0.03, 60))
    run_both(steady(PACKETS, list(range(60)), jitter=jitter))


def test_garbage_payloads_decode_or_fail_as_python_does() -> None:
    junk = [b"", b"\xff", bytes(range(256)) * 5, b"\x78" + b"\x00" * 3, PACKETS[5]]
    run_both([(1 + i, 5000 + i * FRAME, junk[i % len(junk)], 1.0 + i * 0.02) for i in range(15)])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 49),  # which packet
            st.floats(0, 0.2, allow_nan=False),  # extra delay
        ),
        min_size=1,
        max_size=70,
    ),
    st.integers(0, 0xFFFF),
    st.booleans(),
)
def test_random_sequences_match_python(
    picks: list[tuple[int, float]], seq0: int, fec: bool
) -> None:
    arrivals = []
    for k, (i, extra) in enumerate(picks):
        arrivals.append((seq0 + i, 7000 + i * FRAME, PACKETS[i], 50.0 + k * 0.02 + extra))
    run_both(arrivals, ad.AudioTuning(decode_fec=fec))


def test_the_state_moves_between_python_and_c_without_a_frame_lost_or_twice() -> None:
    """Python's buffer for a while, C's, Python's again (each taking the other's state,
    held packets included): the PCM of one path that never switched."""
    t = ad.AudioTuning()
    clock = [0.0]
    whole = PythonPath(t, clock)
    order = [i for i in range(60) if i not in (18, 40)]
    order.insert(order.index(21), 18)  # arrives late but in time: held across a switch
    arrivals = steady(PACKETS, order)
    switched = PythonPath(t, clock)
    c, _ = c_path(t)
    pcm = []
    for k, (seq, ts, payload, at) in enumerate(arrivals):
        clock[0] = at
        whole.add(seq, ts, payload)
        if k == 19:  # to C: Python's state, its held packets and its decoder's history
            pcm.append(switched.take())
            c.close()
            c = native_recv.NativeRecv(*switched.decoder.native(), tuning_of(t),
                                       keep=(switched.decoder,))  # fmt: skip
            assert c.set_jitter(*switched.jb.export_state())
        if k == 45:  # back to Python
            switched.jb.import_state(*c.jitter())
            pcm.append(c.test_take())
        if 19 <= k < 45:
            c.test_add(seq, ts, payload, at)
        else:
            switched.add(seq, ts, payload)
    pcm.append(switched.take())
    np.testing.assert_array_equal(np.concatenate(pcm), whole.take())
    assert switched.jb.stats == whole.jb.stats
    assert whole.jb.stats.concealed > 0 and whole.jb.stats.gaps > 0


def rtp(seq: int, ts: int, payload: bytes, *, ssrc: int = 1, pt: int = 111,
        csrc: int = 0, ext: bytes = b"", pad: int = 0) -> bytes:  # fmt: skip
    first = 0x80 | csrc | (0x10 if ext else 0) | (0x20 if pad else 0)
    head = struct.pack("!BBHLL", first, pt, seq & 0xFFFF, ts & 0xFFFF_FFFF, ssrc)
    head += b"\x00\x00\x00\x01" * csrc
    if ext:
        head += struct.pack("!HH", 0xBEDE, len(ext) // 4) + ext
    tail = (b"\x00" * (pad - 1) + bytes([pad])) if pad else b""
    return head + payload + tail


def python_stats_fields(s: StreamStatistics) -> list[float]:
    return [float(s.base_seq is not None), float(s.base_seq or 0), float(s.max_seq is not None),
            float(s.max_seq or 0), float(s.cycles), float(s.packets_received),
            float(s._jitter_q4), float(s._last_arrival is not None), float(s._last_arrival or 0),
            float(s._last_timestamp is not None), float(s._last_timestamp or 0),
            float(s._clockrate)]  # fmt: skip


def test_the_receiver_statistics_are_aiortcs(monkeypatch: pytest.MonkeyPatch) -> None:
    """StreamStatistics.add for the same packets at the same wall times (reordered,
    wrapped, a loss): the same fields, so the same receiver reports."""
    import aiortc.rtcrtpreceiver as receiver_module

    t = ad.AudioTuning()
    c, _ = c_path(t)
    py = StreamStatistics(RATE)
    now = [1_700_000_000.0]
    monkeypatch.setattr(receiver_module.time, "time", lambda: now[0])
    rng = np.random.default_rng(5)
    seqs = [0xFFF0 + i for i in range(40) if i != 9]
    seqs[3], seqs[4] = seqs[4], seqs[3]
    for k, seq in enumerate(seqs):
        now[0] = 1_700_000_000.0 + k * 0.02 + float(rng.uniform(0, 0.01))
        ts = 1000 + (seq - 0xFFF0) * FRAME
        packet = RtpPacket(payload_type=111, sequence_number=seq & 0xFFFF, timestamp=ts)
        py.add(packet)
        c.test_packet(rtp(seq, ts, PACKETS[k % 60]), now[0], 10.0 + k * 0.02)
    assert c.stats() == python_stats_fields(py)
    assert py.cycles == 1 << 16 and py.jitter > 0


def test_hostile_rtp_is_dropped_and_counted() -> None:
    t = ad.AudioTuning()
    c, _ = c_path(t)
    good = rtp(1, 1000, PACKETS[0], ext=b"\x10\xff\x00\x00", csrc=2, pad=4)
    c.test_packet(good, 1.0, 1.0)
    assert len(c.test_take()) == FRAME  # CSRCs, an extension, padding: parsed
    for bad in (
        b"\x80" * 5,  # short
        b"\x40" + good[1:],  # version 1
        b"\x8f" + good[1:12],  # 15 CSRCs announced, none there
        b"\x90" + good[1:12] + b"\xbe\xde\xff\xff",  # an extension longer than the packet
        b"\xa0" + good[1:12] + b"\x00\xff",  # padding longer than the packet
        rtp(3, 1000, b"\x00" * 1600),  # a payload over 1500 bytes
    ):
        c.test_packet(bad, 1.0, 1.0)
    counters = c.counters()
    assert counters.malformed == 6
    assert counters.rtp_packets == 1


# ----------------------------------------------------------------- in a real call


class Recorder:
    """A pulse record callback: what the speaker's null sink plays (its monitor)."""

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []

    def __call__(self, data: Any, frames: int, when: Any, status: Any) -> None:
        self.blocks.append(np.array(data[:, 0], dtype=np.int16))

    def samples(self) -> np.ndarray:
        return np.concatenate(self.blocks) if self.blocks else np.zeros(0, dtype=np.int16)


async def until(check: Callable[[], bool], timeout: float = T) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


def pulse_env(monkeypatch: pytest.MonkeyPatch, recv: str = "1") -> None:
    monkeypatch.setenv(devices.BACKEND_ENV, "pulse")
    monkeypatch.setenv(native_recv.KNOB, recv)


async def test_in_a_real_call_c_reads_the_socket_and_the_speaker_plays_the_tone(
    env: Env, pulse_devices: PulseDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two phones through the real server; bob plays on a pulse null sink (its blocks in
    C). Bob's receive path moves to C: the tone arrives at the sink, aiortc's stats and
    the receiver reports alice gets are C's counters, no RTP goes through Python's path
    while C reads; the sink leaving C hands the stream back (and its return to C again)
    without a frame concealed or played twice; a hold hands it back too."""
    pulse_env(monkeypatch)
    recorder = Recorder()
    monitor, _ = devices.open_stream("input", f"{SPEAKER}.monitor", recorder,
                                     samplerate=RATE, blocksize=480)  # fmt: skip
    monitor.start()
    try:
        alice = await env.phone("alice")
        bob = await env.phone("bob")
        call = alice.dial("bob", audio_in="sine:440", audio_out="null:")
        incoming = await bob.next_incoming(T)
        await incoming.accept(
            replace(incoming.options, audio_in="sine:880", audio_out=f"device:{SPEAKER}")
        )
        await call.wait_for(ev.MediaFlowing, T)
        await incoming.wait_for(ev.MediaFlowing, T)
        assert incoming.pc is not None and call.pc is not None
        receiver = incoming.pc.getReceivers()[0]
        path = ad.fast_path(receiver.transport)
        assert path is not None
        await until(lambda: ad.native_receiver(receiver) is not None)
        native = ad.native_receiver(receiver)
        assert native is not None
        await until(lambda: native.recv is not None)
        rtp_before = path.rtp_in
        reports: list[Any] = []
        sender = call.pc.getSenders()[0]
        own = sender._handle_rtcp_packet

        async def rtcp(packet: Any) -> None:
            reports.extend(r for r in getattr(packet, "reports", []) if r.ssrc == sender._ssrc)
            await own(packet)

        sender._handle_rtcp_packet = rtcp  # type: ignore[method-assign]
        heard_frames = incoming.media.remote.frames
        await until(lambda: native.last is not None and native.last.rtp_packets > 150)
        # What C played counts as received (the call's media watch ends a call without).
        assert incoming.media.remote.frames >= heard_frames + 100
        await until(lambda: len(reports) >= 2)
        assert path.rtp_in == rtp_before  # nothing on Python's RTP path meanwhile
        c = native.last
        stats = await receiver.getStats()
        inbound = next(s for s in stats.values() if s.type == "inbound-rtp")
        stream = receiver._RTCRtpReceiver__remote_streams[inbound.ssrc]
        assert inbound.packetsReceived >= c.rtp_packets
        assert inbound.packetsLost == 0 and reports[-1].packets_lost == 0
        assert 0 <= reports[-1].jitter < RATE // 10  # (in timestamp units: under 100 ms)
        assert reports[-1].highest_sequence <= stream.max_seq + stream.cycles
        assert c.auth_failures == 0 and c.malformed == 0 and c.to_python > 0  # (STUN)
        # Hostile datagrams to the socket C reads: dropped and counted, the call goes on.
        ssrc, pt = inbound.ssrc, native.check()[3]  # type: ignore[index]
        forged = rtp(stream.max_seq + 5, 0, b"\x00" * 80, ssrc=ssrc, pt=pt) + b"\x00" * 10
        hostile = [forged, forged[:12], b"\x80", b"\x00" * 3, bytes(range(200)), b"\x90" * 3000]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            for datagram in hostile * 5:
                attacker.sendto(datagram, native._pair[0].getsockname())
        packets = native.last.rtp_packets
        await until(
            lambda: native.last.auth_failures >= 10 and native.last.rtp_packets > packets + 25
        )
        assert native.recv is not None and native.last.ring_drops >= 5  # (over 2048 bytes)
        jb = receiver._RTCRtpReceiver__jitter_buffer
        before = (jb.stats.concealed, jb.stats.late, jb.stats.duplicates, jb.stats.gaps)
        # The sink stops taking C's frames (as after a switch to a PortAudio device): the
        # stream back to Python, then to C again, without a frame concealed or twice.
        sink = native._sink
        stretches = native.stretches
        monkeypatch.setattr(sink, "native_playout", lambda: None)
        await until(lambda: native.recv is None)
        rtp_back = path.rtp_in
        await until(lambda: path.rtp_in > rtp_back + 10)  # Python's path plays on
        monkeypatch.undo()
        pulse_env(monkeypatch)
        await until(lambda: native.stretches > stretches and native.recv is not None)
        await until(lambda: native.last is not None and native.last.rtp_packets > 20)
        after = (jb.stats.concealed, jb.stats.late, jb.stats.duplicates, jb.stats.gaps)
        assert after == before  # no gap, no packet late or twice, at either hand-over
        assert native.ends.get("ineligible", 0) >= 1
        # Hold (the receiver disabled: aiortc drops what comes): back to Python at once.
        receiver._enabled = False
        await until(lambda: native.recv is None)
        receiver._enabled = True
        await until(lambda: native.recv is not None)
        await call.hangup()
        await incoming.wait_ended(T)
        await until(lambda: native.recv is None)  # the call's end: the thread stopped
        assert native.ends.get("ended", 0) + native.ends.get("ineligible", 0) >= 2
    finally:
        monitor.close()
    heard = recorder.samples()[RATE:]
    assert len(heard) > RATE
    assert abs(dominant_hz(heard) - 440) < 10
    assert -40 < rms_dbfs(heard) < -3


# ----------------------------------------------------------------- what is pinned


async def test_the_aiortc_and_asyncio_internals_read_are_where_they_were() -> None:
    """What _NativeReceiver reads and writes on aiortc 1.16 and Python 3.11's asyncio."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("audio").receiver
    names = vars(receiver)
    for name in (ad._REMOTE_STREAMS, ad._RX_CODECS, ad._ACTIVE_SSRC, "_enabled", "_track"):
        assert name in names, name
    stream = StreamStatistics(RATE)
    for name in ad._STATS_FIELDS:
        assert hasattr(stream, name), name
    fields = ad._stats_fields(stream)
    ad._apply_stats(stream, fields)
    assert ad._stats_fields(stream) == fields
    await pc.close()


@pytest.mark.parametrize("own", [True, False], ids=["pause_reading", "python-3.11.2"])
async def test_a_datagram_transport_pauses_and_resumes_without_losing_a_datagram(
    own: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop stops reading the pair's socket while C reads it, and reads again after,
    losing nothing the kernel held. Python 3.11.2 (Debian 12's, pipx's there) has no
    ``pause_reading`` on datagram transports: the inherited one raises, and the newcomer
    check found the receive path never started there (a traceback in the log)."""
    import asyncio.selector_events as selector_events

    if not own:  # what 3.11.2 has: the base class's, which raises NotImplementedError
        for name in ("pause_reading", "resume_reading"):
            monkeypatch.setattr(
                selector_events._SelectorTransport,
                name,
                getattr(asyncio.ReadTransport, name),
                raising=False,
            )
            monkeypatch.setattr(
                selector_events._SelectorDatagramTransport,
                name,
                getattr(asyncio.ReadTransport, name),
                raising=False,
            )
    loop = asyncio.get_running_loop()
    got: asyncio.Queue[bytes] = asyncio.Queue()

    class Got(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            got.put_nowait(data)

    transport, _ = await loop.create_datagram_endpoint(Got, local_addr=("127.0.0.1", 0))
    assert ad._pauses_itself(transport) is own
    port = transport.get_extra_info("sockname")[1]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ad.pause_datagram_reading(transport)
        ad.pause_datagram_reading(transport)  # twice: still once
        for i in range(3):
            sender.sendto(b"held %d" % i, ("127.0.0.1", port))
        await asyncio.sleep(0.2)  # (the loop turns; a reading transport would take them)
        assert got.empty()
        ad.resume_datagram_reading(transport)
        ad.resume_datagram_reading(transport)  # twice: still once
        held = [await asyncio.wait_for(got.get(), 5) for _ in range(3)]
        assert held == [b"held 0", b"held 1", b"held 2"]
        sender.sendto(b"after", ("127.0.0.1", port))
        assert await asyncio.wait_for(got.get(), 5) == b"after"
    finally:
        sender.close()
        transport.close()
    ad.resume_datagram_reading(transport)  # closed: nothing


def test_objects_without_the_expected_internals_are_refused() -> None:
    with pytest.raises(ad.AiortcAdapterError):
        ad._NativeReceiver(SimpleNamespace(), SimpleNamespace())  # type: ignore[arg-type]
    with pytest.raises(ad.AiortcAdapterError):
        ad.rx_srtp_session(SimpleNamespace(), 1)


def test_with_the_knob_off_or_no_shim_python_receives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(native_recv.KNOB, "0")
    assert not ad.native_recv_enabled() and not native_recv.enabled()
    monkeypatch.delenv(native_recv.KNOB, raising=False)  # the default: on
    assert ad.native_recv_enabled() and native_recv.enabled()
    monkeypatch.setattr(native_recv, "available", lambda: False)
    assert not ad.native_recv_enabled()


def test_the_rx_key_is_the_one_aiortcs_own_session_unprotects_with() -> None:
    """A packet protected with the far side's tx key (its own session) is unprotected by
    a session on our rx key derived again: the key is the same (both roles)."""

    async def main() -> None:
        a, b = new_peer_connection([]), new_peer_connection([])
        a.addTransceiver("audio", direction="sendrecv")
        await a.setLocalDescription(await a.createOffer())
        await b.setRemoteDescription(a.localDescription)
        await b.setLocalDescription(await b.createAnswer())
        await a.setRemoteDescription(b.localDescription)
        try:
            async with asyncio.timeout(T):
                while a.connectionState != "connected" or b.connectionState != "connected":
                    await asyncio.sleep(0.02)
            for tx, rx in ((a, b), (b, a)):
                plain = rtp(7, 1234, b"\x01" * 40, ssrc=0xABCD)
                protected = tx.getSenders()[0].transport._tx_srtp.protect(plain)
                session = ad.rx_srtp_session(rx.getReceivers()[0].transport, 0xABCD)
                assert session.unprotect(protected) == plain
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


def test_an_inbound_session_goes_on_from_the_streams_rollover_counter() -> None:
    """After 65,536 packets (~22 min) the sender's ROC is 1: C's fresh inbound session
    must start there (``set_srtp_roc`` from the receiver's ``cycles``), else every
    packet fails authentication."""
    key = bytes(range(30))

    def session() -> pylibsrtp.Session:
        profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
        policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC,
                                  ssrc_value=0xABCD, srtp_profile=profile)  # fmt: skip
        policy.window_size = 1024
        return pylibsrtp.Session(policy)

    tx = session()
    ad.set_srtp_roc(tx, 0xABCD, 1)
    plain = rtp(5, 1000, b"\x01" * 40, ssrc=0xABCD)
    protected = tx.protect(plain)
    with pytest.raises(pylibsrtp.Error):
        session().unprotect(protected)
    rx = session()
    ad.set_srtp_roc(rx, 0xABCD, 1)
    assert rx.unprotect(protected) == plain


# ----------------------------------------------------------------- the cases at the edges


class CallInC:
    """Alice calls bob through the real server; bob plays on a pulse null sink whose
    monitor is recorded (its blocks in C), so bob's receive path may move to C."""

    def __init__(self, env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
        self.env, self.monkeypatch = env, monkeypatch
        self.recorder = Recorder()
        self.monitor: Any = None

    async def start(self, audio_in: str = "sine:440", **alice: Any) -> None:
        self.monitor, _ = devices.open_stream("input", f"{SPEAKER}.monitor", self.recorder,
                                              samplerate=RATE, blocksize=480)  # fmt: skip
        self.monitor.start()
        a = await self.env.phone("alice", **alice)
        b = await self.env.phone("bob")
        self.call = a.dial("bob", audio_in=audio_in, audio_out="null:")
        self.incoming = await b.next_incoming(T)
        await self.incoming.accept(
            replace(self.incoming.options, audio_in="sine:880", audio_out=f"device:{SPEAKER}")
        )
        await self.call.wait_for(ev.MediaFlowing, T)
        await self.incoming.wait_for(ev.MediaFlowing, T)
        assert self.incoming.pc is not None and self.call.pc is not None
        self.receiver = self.incoming.pc.getReceivers()[0]
        path = ad.fast_path(self.receiver.transport)
        assert path is not None
        self.path = path
        await until(lambda: ad.native_receiver(self.receiver) is not None)
        native = ad.native_receiver(self.receiver)
        assert native is not None
        self.native = native
        self.jb = self.receiver._RTCRtpReceiver__jitter_buffer

    async def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()

    async def hangup(self) -> None:
        await self.call.hangup()
        await self.incoming.wait_ended(T)
        await until(lambda: self.native.recv is None)

    async def python_plays_on(self, packets: int = 50) -> None:
        """Python's path takes ``packets`` more of the stream (the call lives on)."""
        rtp = self.path.rtp_in
        await until(lambda: self.path.rtp_in > rtp + packets)

    def heard_since(self, mark: int) -> np.ndarray:
        return self.recorder.samples()[mark:]

    def assert_tone(self, heard: np.ndarray, hz: float = 440) -> None:
        assert len(heard) > RATE // 2
        assert abs(dominant_hz(heard) - hz) < 10
        assert -40 < rms_dbfs(heard) < -3


@pytest.fixture
async def in_c(env: Env, pulse_devices: PulseDaemon, monkeypatch: pytest.MonkeyPatch) -> Any:
    pulse_env(monkeypatch)
    c = CallInC(env, monkeypatch)
    try:
        yield c
    finally:
        await c.close()


async def test_after_the_socket_fails_c_thrice_python_keeps_it(
    in_c: CallInC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C's socket fails (here a pipe whose writer is gone: poll says hang-up, recvfrom
    ENOTSOCK, as a socket error other than ICMP's): each stretch ends "failed", the
    packets the kernel held meanwhile are Python's; after NATIVE_MAX_FAILURES stretches
    C starts no more and the tone plays on."""
    read_end, write_end = os.pipe()
    os.close(write_end)
    own = native_recv.NativeRecv.start
    monkeypatch.setattr(native_recv.NativeRecv, "start",
                        lambda self, fd, *a, **k: own(self, read_end, *a, **k))  # fmt: skip
    try:
        await in_c.start()
        native = in_c.native
        await until(lambda: native.ends.get("failed", 0) >= ad.NATIVE_MAX_FAILURES)
        assert native.last is not None and native.last.failed and native.last.read_errors >= 1
        mark = len(in_c.recorder.samples())
        await in_c.python_plays_on(100)  # ~20 ticks: C would have started again by now
        assert native.recv is None
        assert native.stretches == ad.NATIVE_MAX_FAILURES
        assert native.ends == {"failed": ad.NATIVE_MAX_FAILURES}
        await until(lambda: len(in_c.recorder.samples()) > mark + RATE)
        in_c.assert_tone(in_c.heard_since(mark))
        await in_c.hangup()
    finally:
        os.close(read_end)


async def test_a_tick_of_packets_none_authenticated_hands_the_stream_back(
    in_c: CallInC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C's inbound session has the wrong key (as after the far side's keys changed):
    the stream's packets come, none authenticates; at the tick after, the stream is
    Python's ("srtp"), whose session plays it; the call goes on. A session that fails
    NATIVE_MAX_FAILURES stretches leaves the stream to Python (each such stretch drops
    a tick's packets)."""

    def wrong_key(dtls: Any, ssrc: int) -> pylibsrtp.Session:
        key, profile = ad.tx_srtp_key(dtls, rx=True)
        policy = pylibsrtp.Policy(key=bytes(b ^ 0x5A for b in key), ssrc_value=ssrc,
                                  ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC,
                                  srtp_profile=profile)  # fmt: skip
        policy.window_size = 1024
        return pylibsrtp.Session(policy)

    monkeypatch.setattr(ad, "rx_srtp_session", wrong_key)
    await in_c.start()
    native = in_c.native
    await until(lambda: native.ends.get("srtp", 0) >= 1)
    c = native.last
    assert c is not None and c.rtp_packets == 0 and c.auth_failures >= ad.SRTP_FAILURES_PER_TICK
    await until(lambda: native.ends.get("srtp", 0) >= ad.NATIVE_MAX_FAILURES)
    mark = len(in_c.recorder.samples())
    await in_c.python_plays_on(100)
    assert native.recv is None and native.stretches == ad.NATIVE_MAX_FAILURES
    assert in_c.incoming.pc is not None and in_c.incoming.pc.connectionState == "connected"
    await until(lambda: len(in_c.recorder.samples()) > mark + RATE)
    in_c.assert_tone(in_c.heard_since(mark))
    await in_c.hangup()


async def test_a_new_ssrc_while_c_reads_meets_cs_buffer_state(
    in_c: CallInC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The far side's stream changes SSRC (and sequence numbers, as a new sender's)
    while C reads: C hands its first packet back through the ring, and the stream is
    Python's ("ssrc") before Python's jitter buffer takes it: that buffer never takes a
    packet while C holds its state (else the next tick's import replaced the new
    stream's first packets). The old stream's tail is dropped (the buffer resets at
    the jump), the new one plays on, without a concealment, and once the old stream is
    quiet C reads the new one."""
    await in_c.start()
    native, jb = in_c.native, in_c.jb
    await until(lambda: native.last is not None and native.last.rtp_packets > 50)
    taken_while_c: list[int] = []
    own_add = jb.add

    def add(packet: RtpPacket) -> Any:
        if native.recv is not None:
            taken_while_c.append(packet.sequence_number)
        return own_add(packet)

    monkeypatch.setattr(jb, "add", add)
    assert in_c.call.pc is not None
    dtls = in_c.call.pc.getSenders()[0].transport
    own_send = dtls._send_rtp
    sent_new = [0]

    async def send_rtp(data: bytes) -> None:  # a new stream: SSRC and sequence numbers
        seq = (struct.unpack_from("!H", data, 2)[0] + 0x8000) & 0xFFFF
        sent_new[0] += 1
        await own_send(data[:2] + struct.pack("!H", seq) + data[4:8] + b"\x0b\xad\xf0\x0d"
                       + data[12:])  # fmt: skip

    s = jb.stats
    before = (s.concealed, s.gaps, s.late, s.duplicates, s.resets)
    mark = len(in_c.recorder.samples())
    monkeypatch.setattr(dtls, "_send_rtp", send_rtp)
    await until(lambda: native.recv is None)
    await until(lambda: sent_new[0] > 10)
    assert taken_while_c == []
    assert native.ends.get("ssrc", 0) == 1, native.ends
    assert 0x0BADF00D in in_c.receiver._RTCRtpReceiver__remote_streams
    # Once the old stream is a second quiet, C takes the new one over.
    await until(lambda: native.recv is not None and native._ssrc == 0x0BADF00D)
    await until(lambda: native.last is not None and native.last.rtp_packets > 50)
    s = jb.stats
    after = (s.concealed, s.gaps, s.late, s.duplicates, s.resets)
    assert after == (*before[:4], before[4] + 1), s  # the jump: the old stream's tail dropped
    await until(lambda: len(in_c.recorder.samples()) > mark + RATE + RATE // 2)
    in_c.assert_tone(in_c.heard_since(mark + RATE // 2))
    await in_c.hangup()


async def test_10_ms_packets_into_c_learnt_480_and_followed_through_20_and_back(
    in_c: CallInC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alice's ``ptime_ms`` 10 (her microphone a pulse monitor with a tone, her send
    path in C): bob's receive path in C learns 480 samples a packet and conceals
    nothing; alice's mute hands her send path to Python (20 ms packets), her unmute back
    to C (10 ms): bob's C jitter buffer follows, 960 then 480, without a concealment or
    a gap."""
    from tests.media import test_native_send as ns

    ns.pulse_call_env(monkeypatch)
    played, _ = devices.open_stream("output", MIC, ns.Tone(440), samplerate=RATE, blocksize=480)
    played.start()
    try:
        await in_c.start(
            f"device:{MIC}.monitor", ptime_ms=10,
            audio_processing=ProcessingConfig(aec=False, noise_suppression=False, auto_gain=False),
        )  # fmt: skip
        native, jb = in_c.native, in_c.jb

        def learnt() -> int | None:  # the C jitter buffer's samples a packet, C reading
            recv = native.recv
            return int(recv.jitter()[0][6]) if recv is not None else None

        def in_c_so_far() -> int:
            last = native.last if native.recv is not None else None
            return native.packets_in_c + (last.rtp_packets if last is not None else 0)

        await until(lambda: in_c_so_far() > 200 and native.recv is not None)
        assert learnt() == 480
        assert jb.stats.concealed == 0 and jb.stats.gaps == 0, jb.stats
        for muted, samples in ((True, 960), (False, 480)):
            in_c.call.mute(muted)
            await until(lambda samples=samples: learnt() == samples)
            packets = in_c_so_far()
            await until(lambda p=packets: in_c_so_far() > p + 50 and native.recv is not None)
            assert learnt() == samples
        assert in_c_so_far() > 300
        assert jb.stats.concealed == 0 and jb.stats.gaps == 0, jb.stats
        await in_c.hangup()
    finally:
        played.close()


async def test_a_new_pair_nominated_while_c_reads_is_taken_over_without_a_gap(
    in_c: CallInC, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second candidate pair nominated mid-call (bob gets a second host socket; alice
    sends to it, then bob's nominated pair is the new one, as after ICE's nomination):
    the first packet through the new socket hands the stream back ("socket") before
    Python's jitter buffer takes it, Python reads the new pair (C leaves the old one
    alone meanwhile), and C takes the new socket over; no packet is lost or played
    twice (no gap, nothing late or duplicate), and the tone plays on."""
    from aioice.candidate import Candidate
    from aioice.ice import CandidatePair, StunProtocol

    await in_c.start()
    native, jb = in_c.native, in_c.jb
    await until(lambda: native.last is not None and native.last.rtp_packets > 50)
    assert in_c.call.pc is not None
    alice_path = ad.fast_path(in_c.call.pc.getReceivers()[0].transport)
    assert alice_path is not None
    bob_ice, alice_ice = in_c.path._connection, alice_path._connection
    old = bob_ice._nominated[1]
    assert native._pair[0] is old.protocol.transport.get_extra_info("socket")
    _, protocol = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: StunProtocol(bob_ice), local_addr=("127.0.0.1", 0)
    )
    host, port = protocol.transport.get_extra_info("sockname")[:2]
    protocol.local_candidate = Candidate(foundation="2", component=1, transport="udp",
                                         priority=1, host=host, port=port, type="host")  # fmt: skip
    bob_ice._protocols.append(protocol)  # (closed with the connection)
    taken_while_c: list[int] = []
    own_add = jb.add

    def add(packet: RtpPacket) -> Any:
        if native.recv is not None:
            taken_while_c.append(packet.sequence_number)
        return own_add(packet)

    monkeypatch.setattr(jb, "add", add)
    s = jb.stats
    before = (s.concealed, s.gaps, s.late, s.duplicates, s.resets)
    ends = dict(native.ends)
    mark = len(in_c.recorder.samples())
    to_bob = CandidatePair(alice_ice._nominated[1].protocol, protocol.local_candidate)
    rtp = in_c.path.rtp_in
    alice_ice._nominated[1] = to_bob  # alice sends to bob's new socket: Python reads it
    await until(lambda: in_c.path.rtp_in > rtp + 5)
    assert taken_while_c == []
    assert native.ends.get("socket", 0) == ends.get("socket", 0) + 1, native.ends
    # Bob's nomination lags: C does not read the old socket again meanwhile (each such
    # stretch would end at its first packet).
    elsewhere = "the far side sends to another socket than the nominated pair's"
    await until(lambda: native.refused.get(elsewhere, 0) >= 3)
    assert native.recv is None and native.ends.get("socket", 0) == ends.get("socket", 0) + 1
    bob_ice._nominated[1] = CandidatePair(protocol, old.remote_candidate)
    new_socket = protocol.transport.get_extra_info("socket")
    await until(lambda: native.recv is not None and native._pair[0] is new_socket)
    await until(lambda: native.last is not None and native.last.rtp_packets > 100)
    assert taken_while_c == []
    assert native.ends.get("socket", 0) == ends.get("socket", 0) + 1, native.ends
    s = jb.stats
    assert (s.concealed, s.gaps, s.late, s.duplicates, s.resets) == before, s
    await until(lambda: len(in_c.recorder.samples()) > mark + RATE)
    in_c.assert_tone(in_c.heard_since(mark))
    await in_c.hangup()
