"""PyAV's stand-in for audio-only processes (hello_tui/media/av_standin.py): it
provides every name aiortc takes from av (these break when aiortc's use of av
grows), its frames behave as PyAV's do for what the audio path does with them,
and whatever needs FFmpeg fails with one line naming the stand-in."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import aiortc
import pytest

from hello_tui.media import av_standin
from hello_tui.media.errors import MediaError

AIORTC = Path(aiortc.__file__).parent
HELLO = Path(av_standin.__file__).parents[1]

# What aiortc 1.16 (outside contrib, which hello-tui never imports) takes from av:
# ("module", "name") from ``from module import name``, ("av", "a.b.c") for ``av.a.b.c``.
AIORTC_USES = {
    ("av", "AudioFrame"), ("av", "AudioResampler"), ("av", "CodecContext"),
    ("av", "VideoFrame"), ("av.frame", "Frame"), ("av.packet", "Packet"),
    ("av.video.codeccontext", "VideoCodecContext"), ("av", "CodecContext.create"),
    ("av", "FFmpegError"), ("av", "Packet"), ("av", "VideoFrame"),
    ("av", "video.frame.PictureType.I"), ("av", "video.frame.PictureType.NONE"),
}  # fmt: skip
# hello_tui's av names that only its video and file: paths reach (never in a stand-in process).
VIDEO_OR_FILE_ONLY = {"VideoStream", "video", "container", "stream"}


def _uses(path: Path) -> set[tuple[str, str]]:
    """The av names one module imports or reads (``av.x.y`` chains, outermost), but for
    imports under ``if TYPE_CHECKING:`` (never run)."""
    tree = ast.parse(path.read_text())
    found: set[tuple[str, str]] = set()
    inner: set[int] = set()
    typing_only = {
        id(n) for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
        for stmt in block.body for n in ast.walk(stmt)
    }  # fmt: skip
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "av":
            found |= {(node.module or "", a.name) for a in node.names}
        elif isinstance(node, ast.Attribute) and id(node) not in inner:
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                inner.add(id(value))
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id == "av":
                found.add(("av", ".".join(reversed(chain))))
    return found


def test_aiortc_uses_only_what_the_stand_in_knows() -> None:
    used: set[tuple[str, str]] = set()
    for path in AIORTC.rglob("*.py"):
        if "contrib" not in path.parts:
            used |= _uses(path)
    assert used == AIORTC_USES  # grown or changed: extend the stand-in, then this set
    for module, name in used:
        first = name.split(".")[0]
        assert first in av_standin.PROVIDED[module] or f"{module}.{first}" in av_standin.PROVIDED


def test_hello_tuis_call_path_uses_only_what_the_stand_in_knows() -> None:
    used: set[tuple[str, str]] = set()
    for package in ("media", "call", "session", "cli", "quality"):
        for path in (HELLO / package).glob("*.py"):
            if path.name not in ("video.py", "av_standin.py"):
                used |= _uses(path)
    unknown = {
        (m, n) for m, n in used
        if n.split(".")[0] not in set(av_standin.PROVIDED.get(m, {})) | VIDEO_OR_FILE_ONLY
    }  # fmt: skip
    assert unknown == set()


def test_what_needs_ffmpeg_fails_with_one_line_naming_the_stand_in() -> None:
    for make in (
        lambda: av_standin.PROVIDED["av"]["CodecContext"].create("libopus", "w"),
        lambda: av_standin.PROVIDED["av"]["AudioResampler"](format="s16"),
        lambda: av_standin.PROVIDED["av"]["VideoFrame"].from_ndarray(None),
        lambda: av_standin.PROVIDED["av"]["open"]("x.wav"),
        lambda: av_standin.Packet(b"x"),
        lambda: av_standin.AudioFrame(format="fltp"),
    ):
        with pytest.raises(av_standin.AvStandinError) as exc:
            make()
        assert isinstance(exc.value, MediaError) and "\n" not in str(exc.value)
        assert "stand-in" in str(exc.value) and "HELLO_TUI_AV=real" in str(exc.value)


def test_not_installed_over_the_real_av_or_when_asked_not_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import av  # noqa: F401  (this process has the real one)

    assert not av_standin.install() and not av_standin.installed()
    assert not av_standin.audio_only_call(("sine:440", "null:", ""), None)
    script = "from hello_tui.media import av_standin as s; print(s.install(), s.installed())"
    env = {"HELLO_TUI_AV": "real", "PYTHONPATH": str(HELLO.parent)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout  # fmt: skip
    assert out.split() == ["False", "False"]


# What the audio path does with frames, run with whichever av the process has:
# the stand-in's results (in a subprocess) must equal PyAV's (here).
_PATH = """
import numpy as np
from hello_tui.media.aiortc_adapter import SpeechOpusEncoder, audio_level_dbov
from hello_tui.media.audio_format import Conformer, make_frame
from hello_tui.media.levels import frame_dbfs
from hello_tui.media.opus_decoder import OpusDecoder

def run():
    t = np.arange(960 * 10)
    tone = (np.sin(2 * np.pi * 440 * t / 48000) * 8000).astype(np.int16)
    frames = [make_frame(tone[i * 960 : (i + 1) * 960], i * 960) for i in range(10)]
    f = frames[3]
    out = {"pts": f.pts, "rate": f.sample_rate, "tb": str(f.time_base), "samples": f.samples,
           "format": f.format.name, "layout": f.layout.name, "channels": len(f.layout.channels),
           "shape": list(f.to_ndarray().shape), "size": f.planes[0].buffer_size,
           "dbfs": round(frame_dbfs(f), 6), "dbov": audio_level_dbov(f),
           "conformed": int(Conformer().convert(f).astype(np.int64).sum())}
    enc, dec = SpeechOpusEncoder(), OpusDecoder()
    payloads = [enc.encode(fr) for fr in frames]
    out["stamps"] = [ts for _, ts in payloads]
    heard = np.concatenate([dec.decode(p[0]) for p, _ in payloads])
    out["packets"] = [len(p[0]) for p, _ in payloads]
    out["heard_peak"] = int(np.abs(heard).max())
    for plane in f.planes:  # what GatedTrack does to mute
        plane.update(bytes(plane.buffer_size))
    out["muted"] = frame_dbfs(f)
    return out
"""


def test_frames_behave_as_pyavs_on_the_audio_path() -> None:
    scope: dict[str, object] = {}
    exec(_PATH, scope)  # the real av
    real = json.loads(json.dumps(scope["run"]()))  # type: ignore[operator]
    script = (
        "from hello_tui.media import av_standin\nassert av_standin.install()\n"
        + _PATH
        + "\nimport json, sys\nassert av_standin.installed()\n"
        "assert not [m for m in sys.modules if m.startswith('av.') and m not in "
        "av_standin.PROVIDED]\nprint(json.dumps(run()))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(HELLO.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    standin = json.loads(done.stdout)
    assert standin == real
    assert real["heard_peak"] > 1000 and real["muted"] == -127.0


def test_a_stand_in_process_runs_the_call_stack_without_ffmpeg() -> None:
    script = """
from hello_tui.media import av_standin
assert av_standin.install()
import hello_tui.call.engine, hello_tui.session.connect, hello_tui.media.sinks
import hello_tui.media.sources, hello_tui.media.ring, hello_tui.media.cues
from aiortc import RTCPeerConnection
from hello_tui.media.aiortc_adapter import adapt_peer_connection, warm_up
warm_up()
pc = adapt_peer_connection(RTCPeerConnection())
t = pc.addTransceiver("audio")
print([c.mimeType for c in t._preferred_codecs])
maps = open("/proc/self/maps").read()
print("libavcodec" in maps, "libopus" in maps)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(HELLO.parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["['audio/opus']", "False True"]


def test_only_a_call_declared_audio_only_gets_the_stand_in() -> None:
    script = """
import os
from hello_tui.media.av_standin import audio_only_call, installed
assert not audio_only_call(("device:", "device:", ""), "pattern:")  # video
assert not audio_only_call(("file:/x.wav", "null:", ""), None)  # FFmpeg decodes it
assert not audio_only_call(("sine:440", "null:", "file:/cues.wav"), None)  # the sounds' file
os.environ["HELLO_TUI_AIORTC_ADAPTER"] = "0"  # aiortc's own encoder is FFmpeg's
assert not audio_only_call(("sine:440", "null:", ""), None) and not installed()
del os.environ["HELLO_TUI_AIORTC_ADAPTER"]
assert audio_only_call(("device:", "device:", ""), None) and installed()
import av
assert av.__standin__ == "hello_tui.media.av_standin"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(HELLO.parent)},
    )  # fmt: skip
    assert done.stdout.strip() == "ok", done.stderr[-2000:]
