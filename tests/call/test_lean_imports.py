"""An audio-only CLI call through a remote server loads only what it uses.

Issue 17's memory bar (peak RSS per side ≤ 80 MiB, docs/media.md "Memory"):
every module a command imports but never runs is resident for the whole call.
The caller is a real ``hello-tui call`` process under ``-X importtime``
(every import it made, whenever it made it), the callee a phone in this
process, through the test server (not the embedded one, which legitimately
loads the server).
"""

from __future__ import annotations

import asyncio
import os
import sys

from hello_tui.call import events as ev
from tests.call.conftest import Env, T

# What an audio-only call through a remote server must not load, and why it once did.
NOT_IMPORTED = (
    "textual",  # the TUI
    "rich",
    "hello_tui.tui",
    "cv2",  # cameras
    "pyte",  # terminal sharing's screen: loaded by the first share
    "wcwidth",
    "hello_tui.share.terminal",
    "hello_tui.server",  # the embedded server (LOOPBACK lived in session.embedded)
    "hello_tui.echo",
    "prometheus_client",
    "qrcode",
    "segno",
    "dns",  # dnspython, for aioice's mDNS resolver: deferred (media/aioice_mdns.py)
    "aiohttp",  # the signaling WebSocket is websockets' now (9.4 MiB, 105 modules)
    "yarl",
    "multidict",
    "av",  # PyAV and FFmpeg (~16 MiB): a stand-in instead (media/av_standin.py)
    # ~1 MiB with zipfile, email, csv: websockets' version module (a stand-in now:
    # signaling/websockets_version.py) and the AEC3 shim's version check (the
    # binding's .dist-info name now)
    "importlib.metadata",
)


HEAP_MAX = 64 << 20  # glibc's per-thread arena heap: 64 MiB aligned, reserved as one


def thread_arenas(maps: list[str]) -> list[str]:
    """The per-thread malloc arenas' heaps in a /proc/PID/maps: an anonymous mapping
    at a 64 MiB boundary whose pages up to the next boundary are anonymous too (the
    used part rw-p, the rest of the reservation ---p)."""
    anon = []
    for line in maps:
        fields = line.split()
        if len(fields) == 5:  # no path: anonymous
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            anon.append((lo, hi, fields[1]))
    heaps = []
    for i, (lo, hi, perm) in enumerate(anon):
        if lo % HEAP_MAX or not perm.startswith("rw"):
            continue
        end = hi
        for nlo, nhi, _ in anon[i + 1 :]:
            if nlo != end or end >= lo + HEAP_MAX:
                break
            end = nhi
        if end == lo + HEAP_MAX:
            heaps.append(f"{lo:x}-{end:x}")
    return heaps


async def _hello(*args: str, started: list[int] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-X", "importtime", "-m", "hello_tui", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "HELLO_TUI_ICE_HOSTS": "127.0.0.1"},
    )  # fmt: skip
    if started is not None:
        started.append(proc.pid)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_an_audio_call_through_a_server_imports_only_the_call(env: Env) -> None:
    code, _, err = await _hello("account", "register", "alice", "--server", env.url)
    assert code == 0, err[-2000:]
    bob = await env.phone("bob")
    pid: list[int] = []
    caller = asyncio.ensure_future(
        _hello("call", "bob", "--server", env.url, "--audio-in", "sine:440",
               "--audio-out", "null:", "--duration", "2", "--json", started=pid)
    )  # fmt: skip
    incoming = await bob.next_incoming(T)
    await incoming.accept()
    await incoming.wait_for(ev.MediaFlowing, T)
    with open(f"/proc/{pid[0]}/maps") as maps:  # the caller, mid-call (2 s after connecting)
        lines = maps.read().splitlines()
    libraries = {line.split()[-1] for line in lines if ".so" in line}
    # one malloc arena (util/malloc_arenas.py): no per-thread heap of its threads
    assert thread_arenas(lines) == [], "a call's threads got malloc arenas of their own"
    assert any("libopus" in path for path in libraries)  # it sees the call's codec
    ffmpeg = sorted(path for path in libraries if "libavcodec" in path or "libavformat" in path)
    assert ffmpeg == [], f"an audio-only call loaded FFmpeg: {ffmpeg}"
    code, out, err = await asyncio.wait_for(caller, 60)
    assert code == 0, err[-2000:]
    assert '"kind": "media-flowing"' in out  # a real call took place
    imported = {line.split("|")[-1].strip() for line in err.splitlines() if "import time:" in line}
    assert {"aiortc", "numpy", "hello_tui.call.engine"} <= imported  # it sees the call
    assert "hello_tui.media.av_standin" in imported
    loaded = sorted(
        name for name in imported for heavy in NOT_IMPORTED
        if name == heavy or name.startswith(heavy + ".")
    )  # fmt: skip
    assert loaded == [], f"an audio-only call imported {loaded}"
