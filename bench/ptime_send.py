"""The send path in C at 10 ms against 20 ms packets, in process (no call, no harness).

For each packet duration: the same speech-like signal (tests/speechlike.py, voiced with
syllable bursts) through the real C send path (media/send_path.cpp's sp_frame: level,
libopus with the adapter's settings, RTP with the mid and audio-level extensions aiortc
negotiates for audio, SRTP AES-CM-128/HMAC-SHA1-80, sendto on a loopback UDP socket),
one call per packet as the capture thread makes it. It prints, per second of audio: the
thread CPU the send path took (its own clock: encode + SRTP + sendto), packets, the Opus
payload, the SRTP bytes handed to the socket and the IPv4 wire rate (+ 28 bytes of
UDP/IP a packet), and the quality the far end decodes (segmental SNR against what was
sent, median per 20 ms, tests/speechlike.segmental_snr: a waveform measure, low for a
perceptual codec; only the two columns' difference means anything).

    .venv/bin/python bench/ptime_send.py [--seconds 30] [--rounds 3]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import socket
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pylibsrtp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hello_tui.media import aiortc_adapter as ad
from hello_tui.media import native_send
from hello_tui.media.opus_decoder import OpusDecoder
from tests.speechlike import segmental_snr, voiced

SSRC = 0x1234_5678
UDP_IP = 28  # IPv4 + UDP headers a packet


def run(samples: int, signal: np.ndarray) -> dict[str, float]:
    """One pass of ``signal`` through sp_frame at ``samples`` a packet."""
    profile = pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80
    key = os.urandom(30)
    policy = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_SPECIFIC,
                              ssrc_value=SSRC, srtp_profile=profile)  # fmt: skip
    session = pylibsrtp.Session(policy)
    rx_session = pylibsrtp.Session(
        pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_INBOUND,
                         srtp_profile=profile)
    )  # fmt: skip
    encoder = ad.SpeechOpusEncoder()
    state, encode = encoder.codec.native()
    send = native_send.NativeSend(state, encode, *ad.srtp_native(session),
                                  keep=(encoder, session), samples=samples)  # fmt: skip
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    rx.setblocking(False)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert send.set_peer(tx.fileno(), "127.0.0.1", rx.getsockname()[1])
        send.set_rtp(111, SSRC, 1000, 0, *ad.RtpAudioWriter(1, b"0", 0, 2).native_ids)
        proto = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        frame, handle = ctypes.cast(native_send.library().sp_frame, proto), send.handle
        n = len(signal) // samples
        pcm = np.ascontiguousarray(signal[: n * samples], dtype=np.int16)
        base = pcm.ctypes.data
        decoder, heard, payload = OpusDecoder(), [], 0
        for i in range(n):
            frame(handle, base + i * samples * 2)
            while True:  # drain as the far end would (its cost is not counted)
                try:
                    data = rx.recv(2048)
                except BlockingIOError:
                    break
                plain = rx_session.unprotect(data)
                body = plain[16 + 4 * int.from_bytes(plain[14:16], "big") :]
                payload += len(body)
                heard.append(decoder.decode(body))
        st = send.state()
    finally:
        send.close()
        rx.close()
        tx.close()
    seconds = n * samples / 48_000
    received = np.concatenate(heard).astype(np.float64)
    quality = segmental_snr(received, pcm)
    return {
        "cpu_us_per_s": st.cpu_seconds * 1e6 / seconds,
        "us_per_packet": st.cpu_seconds * 1e6 / max(1, st.frames),
        "packets_per_s": st.wire_packets / seconds,
        "opus_kbps": payload * 8 / seconds / 1000,
        "srtp_kbps": st.wire_bytes * 8 / seconds / 1000,
        "wire_kbps": (st.wire_bytes + UDP_IP * st.wire_packets) * 8 / seconds / 1000,
        "overhead_bytes": (st.wire_bytes - payload) / max(1, st.wire_packets) + UDP_IP,
        "snr_db": quality["snr_db"],
        "lost": st.frames - len(heard),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    signal = voiced(args.seconds)
    results: dict[int, list[dict[str, float]]] = {10: [], 20: []}
    for _ in range(args.rounds):  # alternated, so a change in load touches both
        for ms in (20, 10):
            results[ms].append(run(48 * ms, signal))
    load = os.getloadavg()[0]
    print(f"{args.rounds} rounds x {args.seconds:.0f} s of speech-like audio, load {load:.2f}")
    keys = list(results[20][0])
    print(f"{'':>16} {'20 ms':>10} {'10 ms':>10}")
    for key in keys:
        row = [statistics.median(r[key] for r in results[ms]) for ms in (20, 10)]
        print(f"{key:>16} {row[0]:>10.2f} {row[1]:>10.2f}")
    print(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


if __name__ == "__main__":
    main()
