"""No sound card, no PortAudio, noisy ALSA: one-line fallbacks and a clean stderr.

Each case runs in a fresh interpreter, because PortAudio is initialised once
per process and what is being checked is the process's raw fd 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.pulse import PulseDaemon

NO_PORTAUDIO = """
import importlib.abc, importlib.util, sys

class NoPortAudio(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    # What `import sounddevice` does when libportaudio2 is not installed.
    def find_spec(self, name, path, target=None):
        return importlib.util.spec_from_loader(name, self) if name == "sounddevice" else None
    def create_module(self, spec):
        raise OSError("PortAudio library not found")
    def exec_module(self, module):
        pass

sys.meta_path.insert(0, NoPortAudio())
"""

OPEN_BOTH = """
import asyncio
from hello_tui.media.sources import open_audio_source
from hello_tui.media.sinks import open_audio_sink

async def main():
    source = open_audio_source("device:")
    sink = open_audio_sink("device:")
    frame = await source.recv()
    await sink.start(open_audio_source("sine:440"))
    await asyncio.sleep(0.1)
    print(type(source).__name__, type(sink).__name__, frame.samples)
    print(source.notice)
    print(sink.notice)
    source.stop()
    await sink.stop()

asyncio.run(main())
"""


def run_py(
    code: str, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        # PortAudio's failures and chatter: the pulse backend has neither ALSA nor PortAudio.
        env={**os.environ, "HELLO_TUI_AUDIO_BACKEND": "portaudio", **(env or {})},
        **kw,  # type: ignore[arg-type]
    )


def test_no_portaudio_falls_back_to_null_with_one_line_each() -> None:
    out = run_py(NO_PORTAUDIO + OPEN_BOTH)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.splitlines() == [
        "NullSource NullSink 960",
        "no audio input device (PortAudio library not found); using silence (null:)",
        "no audio output device (PortAudio library not found); discarding received audio (null:)",
    ]


def test_no_portaudio_without_fallback_raises_a_typed_error() -> None:
    code = NO_PORTAUDIO + textwrap.dedent("""
        from hello_tui.media.errors import AudioUnavailable
        from hello_tui.media.sources import open_audio_source
        try:
            open_audio_source("device:", fallback=False)
        except AudioUnavailable as exc:
            print("raised:", exc)
    """)
    out = run_py(code)
    assert out.stdout.strip() == "raised: PortAudio library not found"
    assert out.stderr == ""


def test_no_devices_falls_back(tmp_path: Path) -> None:
    # An ALSA world with no usable PCM at all (whatever cards this machine has).
    conf = tmp_path / "asound.conf"
    conf.write_text("pcm.!default { type hw card 9 }\nctl.!default { type hw card 9 }\n")
    out = run_py(OPEN_BOTH, env={"ALSA_CONFIG_PATH": str(conf)})
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0] == "NullSource NullSink 960"
    assert lines[1] == "no audio input device (PortAudio found no devices); using silence (null:)"
    assert lines[2].startswith("no audio output device (PortAudio found no devices)")


def test_missing_alsa_config_file_falls_back_instead_of_aborting(tmp_path: Path) -> None:
    # PortAudio 19.6 hits an assertion and aborts the process in this case.
    out = run_py(OPEN_BOTH, env={"ALSA_CONFIG_PATH": str(tmp_path / "missing.conf")})
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "ALSA_CONFIG_PATH names a missing file" in out.stdout.splitlines()[1]


NOISY_ALSA = """
</usr/share/alsa/alsa.conf>
pcm.broken { type plug slave.pcm "hw:7" }
pcm.broken2 { type dmix ipc_key 4242 slave { pcm "hw:7" } }
"""

RAW_OPEN = """
import ctypes
pcm = ctypes.c_void_p()
ctypes.CDLL("libasound.so.2").snd_pcm_open(ctypes.byref(pcm), b"broken2", 0, 0)
"""


def test_alsa_chatter_never_reaches_fd2(pulse: PulseDaemon, tmp_path: Path) -> None:
    conf = tmp_path / "noisy.conf"
    conf.write_text(NOISY_ALSA)
    env = {"ALSA_CONFIG_PATH": str(conf)}
    control = run_py(RAW_OPEN, env=env)
    assert "ALSA lib" in control.stderr  # this configuration really is noisy

    code = RAW_OPEN.replace(
        "import ctypes",
        "import ctypes\nfrom hello_tui.media import quiet\nquiet.silence_alsa_errors()",
    )
    assert run_py(code, env=env).stderr == ""

    listing = "from hello_tui.media.devices import list_devices; list_devices()\n"
    out = run_py(listing + OPEN_BOTH, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert out.stdout.splitlines() == ["DeviceSource DeviceSink 960", "None", "None"]


KILLED_SERVER = """
import asyncio, sys
from hello_tui.media import quiet
if sys.argv[1] == "divert":
    quiet.divert_stderr()
from hello_tui.media.sources import open_audio_source
from hello_tui.media.sinks import open_audio_sink

async def main():
    sink = open_audio_sink("device:", fallback=False)
    mic = open_audio_source("device:", fallback=False)
    await sink.start(open_audio_source("sine:440"))
    await mic.recv()
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    frames = [await mic.recv() for _ in range(20)]  # the server is gone: silence, not a hang
    sys.stderr.write("python-visible\\n")
    print("stalls", mic.stalls, len(frames), flush=True)
    mic.stop()
    await sink.stop()

asyncio.run(main())
"""


def _run_until_server_dies(
    tmp_path: Path, mode: str, backend: str = "portaudio"
) -> subprocess.CompletedProcess[str]:
    daemon = PulseDaemon(tmp_path / f"{mode}-{backend}")
    daemon.start()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_SERVER, mode],
            env={**os.environ, **daemon.env, "HELLO_TUI_AUDIO_BACKEND": backend},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
    finally:
        daemon.stop()  # the sound server disappears mid-call
    out, err = proc.communicate("go\n", timeout=30)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_portaudio_runtime_chatter_is_diverted(tmp_path: Path) -> None:
    control = _run_until_server_dies(tmp_path, "plain")
    assert "pa_linux_alsa.c" in control.stderr  # PortAudio prints straight to fd 2 ...
    diverted = _run_until_server_dies(tmp_path, "divert")
    assert diverted.returncode == 0
    assert diverted.stderr == "python-visible\n"  # ... unless diverted; Python still gets through
    assert diverted.stdout.splitlines()[-1] == "stalls 1 20"
    pulse = _run_until_server_dies(tmp_path, "plain", "pulse")  # libpulse: no chatter at all
    assert pulse.returncode == 0
    assert pulse.stderr == "python-visible\n"
    _, stalls, frames = pulse.stdout.splitlines()[-1].split()
    assert int(stalls) >= 1 and frames == "20"  # silence, not a hang
