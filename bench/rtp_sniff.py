#!/usr/bin/env python3
"""When each RTP packet of some SSRCs left, seen on loopback by the kernel (root).

    python3 bench/rtp_sniff.py SECONDS OUT SSRC_FILE...

An ``AF_PACKET`` socket on ``lo`` with kernel receive timestamps
(``SO_TIMESTAMPNS``: on loopback, the moment the sender's ``sendto`` queued it),
in its own process, so no event loop or GIL of the measured process delays the
reading. Keeps the UDP packets that look like RTP (version 2) of the SSRCs the
files name (each written by bench/send_jitter.py, read once they exist) and
writes ``OUT``: one line per packet, "ssrc rtp_timestamp seconds". SRTP leaves the
RTP header in clear.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35


def main(seconds: float, out: str, ssrc_files: list[str]) -> int:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind(("lo", 0))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.settimeout(0.5)
    wanted: set[int] = set()
    rows: list[tuple[int, int, float]] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if len(wanted) < len(ssrc_files):
            for f in ssrc_files:
                p = Path(f)
                if p.is_file() and p.read_text().strip():
                    wanted.add(int(p.read_text().split()[0]))
        try:
            data, anc, _, addr = sock.recvmsg(2048, 64)
        except TimeoutError:
            continue
        if addr[2] == socket.PACKET_OUTGOING:  # lo shows each packet twice: keep one
            continue
        if len(data) < 14 + 20 + 8 + 12 or data[12:14] != b"\x08\x00":
            continue
        ihl = (data[14] & 0x0F) * 4
        if data[14 + 9] != 17:  # UDP
            continue
        rtp = data[14 + ihl + 8 :]
        if len(rtp) < 12 or rtp[0] >> 6 != 2 or 192 <= rtp[1] <= 223:
            continue
        ts, ssrc = struct.unpack_from("!II", rtp, 4)
        if ssrc not in wanted:
            continue
        when = 0.0
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", value[:16])
                when = sec + nsec / 1e9
        rows.append((ssrc, ts, when))
    Path(out).write_text("".join(f"{s} {t} {w:.9f}\n" for s, t, w in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(float(sys.argv[1]), sys.argv[2], sys.argv[3:]))
