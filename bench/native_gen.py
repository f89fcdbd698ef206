"""Drive bench/loadgen.c (``server_load.py --generator native``) from Python.

Python opens and logs in every connection as before; for a run it pauses
reading them, hands their descriptors and a spec to the C generator (the
exchange's messages as templates made with the protocol's own encoder, with
holes for the call id, the ref and the two SDPs), waits for it, and reads
back every finished exchange's marks and the counts. The checks are the
Python generators' (type, call id, ref, caller, reason, both SDPs), made
stricter: each received frame must equal the server's encoding of the
expected message byte for byte; only the peer's public key may be any string.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from hello_tui.signaling import protocol as p

SOURCE = Path(__file__).resolve().parent / "loadgen.c"

# Holes in a template (loadgen.c's piece kinds).
LIT, CALLID, REF, OFFER, ANSWER, ANY = range(6)
_CID, _OFFER, _ANSWER, _ANY, _REF = "@@CID@@", "@@OFFER@@", "@@ANSWER@@", "@@ANY@@", 987654321
_HOLES = {
    _CID.encode(): CALLID,
    _OFFER.encode(): OFFER,
    _ANSWER.encode(): ANSWER,
    _ANY.encode(): ANY,
    str(_REF).encode(): REF,
}
_SPLIT = re.compile(b"(" + b"|".join(re.escape(h) for h in _HOLES) + b")")


def binary() -> Path:
    """loadgen.c built once per source version (cc -O2), in the temp dir."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"hello-tui-loadgen-{digest}"
    if not out.exists():
        cc = shutil.which("cc") or shutil.which("gcc")
        compiler = [cc] if cc else []
        if not compiler and (gxx := shutil.which("g++")):  # dev.sh installs g++
            compiler = [gxx, "-x", "c"]
        if not compiler:
            raise RuntimeError("--generator native needs a C compiler (cc, gcc or g++)")
        tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # parallel builds: each its own
        subprocess.run([*compiler, "-O2", "-o", str(tmp), str(SOURCE)], check=True)
        tmp.replace(out)
    return out


def template(message: p.Message) -> list[tuple[int, bytes]]:
    """``message``'s encoding split at its holes (the sentinel values)."""
    pieces: list[tuple[int, bytes]] = []
    for part in _SPLIT.split(p.encode(message)):
        if part in _HOLES:
            pieces.append((_HOLES[part], b""))
        elif part:
            pieces.append((LIT, part))
    return pieces


def pair_templates(caller: str, callee: str) -> list[list[tuple[int, bytes]]]:
    """The 14 messages of one pair's exchange, in loadgen.c's order."""
    return [
        template(p.Call(to=callee, offer=_OFFER, ref=_REF)),
        template(p.Connected(call_id=_CID)),
        template(p.Hangup(call_id=_CID, ref=_REF)),
        template(p.Ringing(call_id=_CID)),
        template(p.Accept(call_id=_CID, ref=_REF)),
        template(p.Answer(call_id=_CID, sdp=_ANSWER)),
        # expected at the caller
        template(p.CallCreated(call_id=_CID, ref=_REF)),
        template(p.Ringing(call_id=_CID)),
        template(p.Accepted(call_id=_CID, callee_key=_ANY)),
        template(p.Answer(call_id=_CID, sdp=_ANSWER)),
        template(p.CallEnded(call_id=_CID, reason="hangup", ref=_REF)),
        # expected at the callee
        template(p.Incoming(call_id=_CID, caller=caller, caller_key=_ANY)),
        template(p.Offer(call_id=_CID, sdp=_OFFER, ref=_REF)),
        template(p.CallEnded(call_id=_CID, reason="hangup")),
    ]


def _blob(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def _json_body(text: str) -> bytes:
    return msgspec.json.encode(text)[1:-1]  # the string as it sits inside a frame


@dataclass
class PairSpec:
    caller_fd: int
    callee_fd: int
    caller: str
    callee: str
    caller_ref: int
    callee_ref: int


def spec(pairs: list[PairSpec], sdps: list[tuple[str, str]], rate: float, timeout: float) -> bytes:
    out = [struct.pack("<IIdd", len(pairs), len(sdps), rate, timeout)]
    for offer, answer in sdps:
        out += [_blob(_json_body(offer)), _blob(_json_body(answer))]
    for pr in pairs:
        out.append(struct.pack("<iiII", pr.caller_fd, pr.callee_fd, pr.caller_ref, pr.callee_ref))
        for pieces in pair_templates(pr.caller, pr.callee):
            out.append(struct.pack("<I", len(pieces)))
            out += [struct.pack("<B", kind) + _blob(data) for kind, data in pieces]
    return b"".join(out)


@dataclass
class Result:
    taken: int
    done: int
    failed: int
    lost: int
    misrouted: int
    verified: int
    t0: float
    t_end: float
    cpu: float  # user + system seconds
    kernel: float
    waited: float  # runnable, waiting for a CPU
    marks: list[list[float]] = field(default_factory=list)
    broken: list[int] = field(default_factory=list)  # indices of the pairs that broke
    errors: list[str] = field(default_factory=list)


async def run(
    pairs: list[PairSpec],
    sdps: list[tuple[str, str]],
    rate: float,
    timeout: float,
    starting: Callable[[], None] = lambda: None,
) -> Result:
    """One run of len(sdps) exchanges; the descriptors must not be read meanwhile.
    ``starting`` is called once the spec is written, right before the generator
    starts (where the run's CPU meter starts: the spec is made before the clock)."""
    exe = binary()
    with tempfile.TemporaryDirectory(prefix="ht-loadgen-") as tmp:
        spec_path, marks_path = Path(tmp) / "spec", Path(tmp) / "marks"
        spec_path.write_bytes(spec(pairs, sdps, rate, timeout))
        starting()
        fds = [fd for pr in pairs for fd in (pr.caller_fd, pr.callee_fd)]
        proc = await asyncio.create_subprocess_exec(
            str(exe), str(spec_path), str(marks_path),
            stdout=asyncio.subprocess.PIPE, pass_fds=fds,
        )  # fmt: skip
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"loadgen exited {proc.returncode}")
        raw = marks_path.read_bytes()
    lines = out.decode(errors="replace").splitlines()
    head = lines[0].split()
    taken, done, failed, lost, misrouted, verified = (int(v) for v in head[:6])
    t0, t_end, utime, stime, waited = (float(v) for v in head[6:11])
    result = Result(
        taken, done, failed, lost, misrouted, verified, t0, t_end, utime + stime, stime, waited
    )
    values = struct.unpack(f"<{len(raw) // 8}d", raw)
    result.marks = [list(values[i : i + 7]) for i in range(0, len(values), 7)]
    result.broken = [int(i) for i in lines[1].split()[1:]]
    result.errors = lines[2:]
    return result
