"""libopus through ctypes (hello_tui/media/opus_encoder.py) encodes as FFmpeg's
libopus wrapper did with the same options: the CTLs read back, the packets are
FFmpeg's byte for byte on PyAV's own libopus (else, on the system's: the
decoded signal matches the input as closely as FFmpeg's does), and FEC puts
LBRR data in the packets (and only then)."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest

from hello_tui.media import opus_encoder as oe
from hello_tui.media.opus_decoder import OpusDecoder, OpusError, bundled_libopus, has_lbrr

RATE, FRAME = 48_000, 960


def _speechlike(seconds: float = 1.2) -> np.ndarray:
    """Voiced harmonics under a syllable-rate envelope, plus a little noise."""
    t = np.arange(int(RATE * seconds)) / RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)
    noise = np.random.default_rng(7).normal(0, 0.02, len(t))
    return (6000 * (voiced * envelope + noise)).astype(np.int16)


def _snr_db(sent: np.ndarray, heard: np.ndarray) -> float:
    """SNR of ``heard`` against ``sent``, at the codec delay (found on a short stretch)."""
    a = sent[RATE // 2 : RATE].astype(np.float64)
    h = heard[RATE // 2 : RATE + 700].astype(np.float64)
    delay = int(np.argmax(np.correlate(h, a, mode="valid")))
    a = sent[: len(sent) - 700].astype(np.float64)
    b = heard[delay : delay + len(a)].astype(np.float64)
    return float(10 * np.log10(np.dot(a, a) / max(float(np.dot(a - b, a - b)), 1.0)))


def _decode(packets: list[bytes]) -> np.ndarray:
    decoder = OpusDecoder()
    return np.concatenate([decoder.decode(p) for p in packets])


def _ffmpeg_packets(pcm: np.ndarray, fec: bool) -> list[bytes]:
    """What the adapter's encoder did before: PyAV's libopus with the same options."""
    codec = av.CodecContext.create("libopus", "w")
    codec.bit_rate, codec.format, codec.layout, codec.sample_rate = 32_000, "s16", "mono", RATE
    codec.options = {"application": "voip", "fec": "1" if fec else "0", "packet_loss": "10",
                     "compression_level": "10"}  # fmt: skip
    packets = []
    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        frame = av.AudioFrame.from_ndarray(pcm[i : i + FRAME].reshape(1, -1), layout="mono")
        frame.sample_rate, frame.pts = RATE, i
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets


def test_the_settings_are_ffmpegs_for_the_same_options() -> None:
    enc = oe.OpusEncoder(bitrate=24_000, fec=True, packet_loss_pct=15, complexity=7)
    got = {req: enc.get(req + 1) for req in (oe.SET_BITRATE, oe.SET_COMPLEXITY, oe.SET_VBR,
           oe.SET_VBR_CONSTRAINT, oe.SET_PACKET_LOSS_PERC, oe.SET_INBAND_FEC, oe.SET_DTX,
           oe.SET_PHASE_INVERSION_DISABLED)}  # fmt: skip
    assert got == {oe.SET_BITRATE: 24_000, oe.SET_COMPLEXITY: 7, oe.SET_VBR: 1,
                   oe.SET_VBR_CONSTRAINT: 0, oe.SET_PACKET_LOSS_PERC: 15, oe.SET_INBAND_FEC: 1,
                   oe.SET_DTX: 0, oe.SET_PHASE_INVERSION_DISABLED: 0}  # fmt: skip
    assert enc.get(oe.GET_LOOKAHEAD) > 0
    assert oe.OpusEncoder(fec=False).get(oe.SET_INBAND_FEC + 1) == 0


@pytest.mark.parametrize("fec", [True, False])
def test_packets_decode_to_the_input_as_ffmpegs_do_with_lbrr_only_with_fec(fec: bool) -> None:
    pcm = _speechlike()
    enc = oe.OpusEncoder(fec=fec)
    ours = [enc.encode(pcm[i : i + FRAME]) for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    theirs = _ffmpeg_packets(pcm, fec)
    if bundled_libopus() is not None and os.environ.get("HELLO_TUI_LIBOPUS") != "system":
        assert ours == theirs  # the same libopus, set up the same: FFmpeg's packets, byte for byte
    snr, reference = _snr_db(pcm, _decode(ours)), _snr_db(pcm, _decode(theirs))
    assert snr > 3 and snr > reference - 1.0, (snr, reference)  # waveform SNR: Opus is perceptual
    kbit = [sum(map(len, p)) * 8 / (len(p) * 0.02) / 1000 for p in (ours, theirs)]
    assert 0.8 < kbit[0] / kbit[1] < 1.25, kbit  # the same bitrate target
    lbrr = [sum(map(has_lbrr, p[5:])) / len(p[5:]) for p in (ours, theirs)]
    if fec:
        assert lbrr[0] > 0.5 and abs(lbrr[0] - lbrr[1]) < 0.1, lbrr
    else:
        assert lbrr == [0.0, 0.0]


def test_a_closed_encoder_says_so() -> None:
    enc = oe.OpusEncoder()
    enc.close()
    with pytest.raises(OpusError, match="closed"):
        enc.encode(np.zeros(FRAME, dtype=np.int16))
