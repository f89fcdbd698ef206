"""A throwaway PulseAudio daemon with a null sink, so tests get real audio devices.

The machine has no sound card. PulseAudio's ``module-null-sink`` is a virtual
card with a real clock: what is played into sink ``hello_test`` comes back on
its monitor source ``hello_test.monitor``. PortAudio talks ALSA; the ALSA
``pulse`` plugin (Debian ``libasound2-plugins``) makes ALSA devices ``pulse``
and ``default`` route to whatever server ``PULSE_SERVER`` names, so every
PortAudio stream in the test process lands on this daemon and no other.

Runs as root too (PulseAudio only warns), with all state in a temp dir:

    pulseaudio --daemonize=no --exit-idle-time=-1 --system=false -n \
        --use-pid-file=no --log-target=stderr -F DIR/default.pa

where ``default.pa`` loads ``module-native-protocol-unix`` on ``DIR/native``
(anonymous auth), the 48 kHz mono null sink, and sets it and its monitor
as defaults.

One quirk: an idle null sink renders on a timer of up to 2 s, and a new
stream waits for that timer, so a PortAudio stream stalls for up to 2 s after
its pre-fill (then overflows our buffers). A real card does not do this. A
keepalive reader (``parec --latency-msec=10 -d hello_test.monitor --raw``,
output discarded) makes the sink render in 10 ms steps, like a card; a
``pactl suspend-sink hello_test 1`` then ``0`` right after it connects
restarts the sink's timer, which a fresh sink otherwise keeps at 2 s once.

More devices, by name (the call tests' device path):

    daemon.add_null_sink("a_mic")            # + its keepalive reader and timer restart
    conf = daemon.alsa_devices({"a_mic": "a_mic.monitor", "b_spk": "b_spk"})
    os.environ["ALSA_CONFIG_PATH"] = str(conf); devices.refresh()
    # PortAudio now lists ALSA PCMs "a_mic" (capture from a_mic.monitor) and
    # "b_spk" (playback into b_spk): ``device:a_mic`` / ``device:b_spk``.

``alsa_devices`` writes an ALSA config that includes the system's
``alsa.conf`` and adds one ``type pulse`` PCM per name, pinned to a
PulseAudio sink or source; PortAudio lists top-level PCM definitions as
devices, so the names resolve like any sound card.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

SINK = "hello_test"
SYSTEM_ALSA_CONF = "/usr/share/alsa/alsa.conf"

_SCRIPT = """\
load-module module-native-protocol-unix socket={socket} auth-anonymous=1
load-module module-null-sink sink_name={sink} rate=48000 channels=1 \
sink_properties=device.description=hello-test
set-default-sink {sink}
set-default-source {sink}.monitor
"""


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the test process dies (Linux prctl)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class PulseDaemon:
    """Start with :meth:`start`, stop with :meth:`stop`; :attr:`env` reaches it."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.socket = workdir / "run" / "native"
        self.proc: subprocess.Popen[bytes] | None = None
        self.keepalive: subprocess.Popen[bytes] | None = None
        self.extra_keepalives: list[subprocess.Popen[bytes]] = []
        self.env = {"PULSE_SERVER": f"unix:{self.socket}"}

    def start(self, timeout: float = 10.0) -> None:
        exe = shutil.which("pulseaudio")
        if exe is None or shutil.which("pactl") is None:
            raise RuntimeError(
                "pulseaudio / pactl not installed (Debian: pulseaudio pulseaudio-utils "
                "libasound2-plugins); ./dev.sh test installs them"
            )
        for sub in ("run", "home", "state"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        script = self.dir / "default.pa"
        script.write_text(_SCRIPT.format(socket=self.socket, sink=SINK))
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir / "home"),
            "XDG_RUNTIME_DIR": str(self.dir / "run"),
            "PULSE_RUNTIME_PATH": str(self.dir / "run"),
            "PULSE_STATE_PATH": str(self.dir / "state"),
        }
        cmd = [
            exe,
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--system=false",
            "-n",
            "--use-pid-file=no",
            "--log-target=stderr",
            "--log-level=error",
            # PulseAudio 16.1's memfd transport has a known bug (upstream issue 824):
            # a monitor recording another client's blocks logs "Cannot send block
            # reference with non-registered memfd ID" several times a test file, and
            # once in a full suite run the daemon then aborted on an assertion in
            # memblock_replace_import, taking every later test of that worker with it
            # (with PortAudio's ALSA plugin and with our libpulse streams alike). POSIX
            # shared memory carries the same audio without that path.
            "--enable-memfd=no",
            "-F",
            str(script),
        ]
        log = open(self.dir / "pulseaudio.log", "wb")  # noqa: SIM115 - lives as long as the daemon
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=self.dir,
            preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pulseaudio exited: {self.log()}")
            if self.socket.exists() and self.pactl("info").returncode == 0:
                self._start_keepalive()
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pulseaudio did not come up in {timeout} s: {self.log()}")

    def _keepalive_reader(self, sink: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["parec", "--latency-msec=10", "-d", f"{sink}.monitor", "--raw"],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def _restart_timer(self, sink: str) -> None:
        time.sleep(0.1)  # let the reader connect, then restart the sink's timer at its latency
        self.pactl("suspend-sink", sink, "1")
        self.pactl("suspend-sink", sink, "0")

    def _start_keepalive(self) -> None:
        self.keepalive = self._keepalive_reader(SINK)
        self._restart_timer(SINK)

    def add_null_sink(
        self, name: str, rate: int = 48000, channels: int = 1,
        properties: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """Load another null sink ``name`` (monitor: ``name.monitor``), kept rendering
        in 10 ms steps like the default one; ``properties``: more sink properties,
        e.g. ``{"device.form_factor": "headset"}`` (values without spaces)."""
        props = {"device.description": name, **(properties or {})}
        result = self.pactl(
            "load-module",
            "module-null-sink",
            f"sink_name={name}",
            f"rate={rate}",
            f"channels={channels}",
            'sink_properties="' + " ".join(f"{k}={v}" for k, v in props.items()) + '"',
        )
        if result.returncode != 0:
            raise RuntimeError(f"cannot add null sink {name}: {result.stderr.strip()}")
        self.extra_keepalives.append(self._keepalive_reader(name))
        self._restart_timer(name)

    def alsa_devices(self, devices: dict[str, str]) -> Path:
        """Write an ALSA config (system config + one pulse PCM per ``{alsa name: pulse
        sink or source}``) into the daemon's dir; point ``ALSA_CONFIG_PATH`` at it."""
        lines = [f"<{SYSTEM_ALSA_CONF}>"]
        for name, target in devices.items():
            lines.append(
                f'pcm.{name} {{ type pulse; device "{target}"; '
                f'hint {{ show on; description "{name}" }} }}'
            )
        path = self.dir / "asound.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def pactl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["pactl", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=10,
        )

    def log(self) -> str:
        path = self.dir / "pulseaudio.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        for proc in (*self.extra_keepalives, self.keepalive, self.proc):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.keepalive = self.proc = None
        self.extra_keepalives = []


@contextlib.contextmanager
def pulse_devices(
    workdir: Path,
    mics: Iterable[str] = (),
    speakers: Iterable[str] = (),
    properties: dict[str, dict[str, str]] | None = None,
) -> Iterator[PulseDaemon]:
    """A private daemon whose null sinks PortAudio lists as sound cards: each of
    ``mics`` an input (capturing its sink's monitor: play into the sink to speak
    into it), each of ``speakers`` an output (record its monitor). ``properties``:
    more sink properties per name (e.g. a headset's form factor). The process's
    environment (``PULSE_SERVER``, ``ALSA_CONFIG_PATH``) and PortAudio's device
    list are put back afterwards. RuntimeError when PulseAudio cannot start."""
    from hello_tui.media import devices

    mics, speakers = list(mics), list(speakers)
    daemon = PulseDaemon(workdir)
    try:
        daemon.start()
        for name in (*mics, *speakers):
            daemon.add_null_sink(name, properties=(properties or {}).get(name))
    except RuntimeError:
        daemon.stop()
        raise
    conf = daemon.alsa_devices({**{m: f"{m}.monitor" for m in mics}, **{s: s for s in speakers}})
    wanted = {**daemon.env, "ALSA_CONFIG_PATH": str(conf)}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    devices.refresh()  # PortAudio re-reads the ALSA config and finds the daemon
    try:
        yield daemon
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if "sounddevice" in sys.modules:
            with contextlib.suppress(Exception):
                devices.refresh()  # back to the devices of before
        daemon.stop()
