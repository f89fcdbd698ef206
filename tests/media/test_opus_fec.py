"""Opus in-band FEC on receive: real packets from our encoder, known packets dropped.

The path under test is the call's own: :class:`SpeechJitterBuffer` (which turns
a lost packet followed by a received one into an FEC frame) and the inline
decoder queue (libopus through ctypes). The reference is the same stream
decoded with no loss; a recovered frame must be sound, and closer to that
reference than what packet-loss concealment makes of the same loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from aiortc.codecs import get_capabilities
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from hello_tui.media import aiortc_adapter as ad
from hello_tui.media.audio_format import make_frame
from hello_tui.media.opus_decoder import OpusDecoder, OpusError, has_lbrr
from tests.media.test_aiortc_adapter import FRAME, FakeClock, feed, packet
from tests.speechlike import voiced

RATE = 48_000
SECONDS = 3
# Isolated losses (each followed by a received packet), away from the start.
DROPPED = frozenset(range(15, SECONDS * 50 - 5, 7))
OPUS = next(c for c in get_capabilities("audio").codecs if c.mimeType.lower() == "audio/opus")


@pytest.fixture(scope="module")
def payloads() -> list[bytes]:
    encoder = ad.SpeechOpusEncoder()  # the call's settings: FEC on, 10 % loss expected
    pcm = voiced(SECONDS)
    out: list[bytes] = []
    for i in range(len(pcm) // FRAME):
        out += encoder.encode(make_frame(pcm[i * FRAME : (i + 1) * FRAME], i * FRAME))[0]
    return out


class Receiver:
    def __init__(self) -> None:
        self._track = RemoteStreamTrack(kind="audio")


def heard(payloads: list[bytes], dropped: frozenset[int], tuning: ad.AudioTuning) -> Any:
    """Per 20 ms frame what the listener gets through the call's receive path,
    with the jitter buffer's stats."""
    buf = ad.SpeechJitterBuffer(tuning, clock=FakeClock())
    receiver = Receiver()
    queue = ad._InlineDecoderQueue(receiver)  # type: ignore[arg-type]
    for seq, data in enumerate(payloads):
        if seq in dropped:
            continue
        for frame in feed(buf, packet(seq, ts=seq * FRAME, data=data)):
            queue.put((OPUS, frame))
    out = receiver._track._queue
    frames = [out.get_nowait() for _ in range(out.qsize())]
    pcm = {f.pts // FRAME: f.to_ndarray().reshape(-1).astype(np.float64) for f in frames}
    return pcm, buf.stats


def error_energy(got: dict[int, np.ndarray], ref: dict[int, np.ndarray], seqs: Any) -> float:
    return float(sum(np.sum((got[s] - ref[s]) ** 2) for s in seqs))


def test_encoder_packets_carry_fec(payloads: list[bytes]) -> None:
    with_fec = sum(has_lbrr(p) for p in payloads[1:])
    assert with_fec >= 0.6 * (len(payloads) - 1)  # all but unvoiced starts and the first
    assert not has_lbrr(bytes([16 << 3]) + b"\x00" * 20)  # CELT-only: never


def test_lost_packets_are_recovered_from_fec_closer_than_concealment(
    payloads: list[bytes],
) -> None:
    ref, _ = heard(payloads, frozenset(), ad.AudioTuning())
    fec, fec_stats = heard(payloads, DROPPED, ad.AudioTuning())
    plc, plc_stats = heard(payloads, DROPPED, ad.AudioTuning(decode_fec=False))
    assert sorted(ref) == sorted(fec) == sorted(plc) == list(range(len(payloads)))
    recoverable = [s for s in sorted(DROPPED) if has_lbrr(payloads[s + 1])]
    assert len(recoverable) >= len(DROPPED) // 2
    assert fec_stats.recovered == len(recoverable) and plc_stats.recovered == 0
    assert fec_stats.concealed == plc_stats.concealed == len(DROPPED)
    for s in recoverable:  # each recovered frame is sound, about as loud as the original
        rms, ref_rms = np.sqrt(np.mean(fec[s] ** 2)), np.sqrt(np.mean(ref[s] ** 2))
        assert rms > 0.3 * ref_rms > 0
    fec_err = error_energy(fec, ref, recoverable)
    plc_err = error_energy(plc, ref, recoverable)
    signal = float(sum(np.sum(ref[s] ** 2) for s in recoverable))
    # FEC's error is well below concealment's (measured ~7 dB SNR against ~0 dB).
    assert fec_err < 0.5 * plc_err
    assert fec_err < 0.5 * signal
    # The frames after each loss decode as usual either way (state carried over).
    after = [s + 1 for s in recoverable]
    assert error_energy(fec, ref, after) <= error_energy(plc, ref, after) * 1.5 + 1.0


def test_decoder_conceals_and_survives_garbage(payloads: list[bytes]) -> None:
    decoder = OpusDecoder(RATE, 1)
    assert decoder.decode(payloads[0]).shape == (FRAME,)
    assert decoder.conceal(FRAME).shape == (FRAME,)
    assert decoder.recover(payloads[2], FRAME).shape == (FRAME,)
    with pytest.raises(OpusError):
        decoder.decode(b"\xff\xff\xff")  # code 3 with a bad frame count: refused, not a crash
    assert decoder.decode(payloads[3]).shape == (FRAME,)  # and it keeps decoding


def test_lbrr_flag_read_from_every_packet_framing(payloads: list[bytes]) -> None:
    """RFC 6716 codes 1, 2 and 3 wrap the same first frame: the flag reads the same."""
    for data in payloads[5:25]:
        toc, frame = data[0] & 0xFC, data[1:]
        if len(frame) >= 252:
            continue
        wrapped = [
            bytes([toc | 1]) + frame + frame,
            bytes([toc | 2, len(frame)]) + frame + frame,
            bytes([toc | 3, 1]) + frame,  # CBR, one frame
            bytes([toc | 3, 0x80 | 0x40 | 2, 3, len(frame)]) + frame + frame + b"\0\0\0",
        ]
        assert {has_lbrr(w) for w in wrapped} == {has_lbrr(data)}


def test_libopus_loads_by_soname_without_a_subprocess(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder is made on a call's first received packet, on the event loop:
    find_library (``ldconfig -p`` in a subprocess, 10-80 ms) is only the fallback."""
    import ctypes.util

    from hello_tui.media import opus_decoder

    def no_subprocess(name: str) -> str:
        raise AssertionError(f"find_library({name!r}) on the call path")

    monkeypatch.setattr(ctypes.util, "find_library", no_subprocess)
    opus_decoder._lib.cache_clear()
    try:
        assert OpusDecoder(48000, 1).decode(b"\xf8\xff\xfe").size  # a valid Opus frame
    finally:
        opus_decoder._lib.cache_clear()
