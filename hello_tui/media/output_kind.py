"""Is the speaker a headset? Echo cancellation is off for one unless asked for.

A headset or headphones leak (almost) nothing into the microphone, and
WebRTC's AEC3 with no echo to converge on keeps its initial echo-path
assumption and ducks the local talker whenever the far end speaks (up to
24 dB, docs/media.md). So the processing stage asks what the output is.

PortAudio's device names say little (``default``, ``pulse``, or an ALSA card
name), so the sound server is asked: PulseAudio (and PipeWire's pulse server)
describe each sink with ``device.form_factor`` (``headset``, ``headphone``,
``speaker``, ``internal``...) and the type and name of its active port (a
laptop's card with headphones plugged in: ``analog-output-headphones``,
type ``Headphones``). ``pactl -f json`` (PulseAudio 16+, pipewire-pulse)
gives both (asked only when a server's socket is there: pactl must not
autospawn a daemon); the PortAudio device is matched to a sink by name: ``default`` /
``pulse`` / ``pipewire`` (or empty) is the server's default sink; an ALSA
card ``… (hw:C,D)`` is the sink with ``alsa.card`` C and ``alsa.device`` D;
any other name is a sink of that name or description (an ALSA ``type
pulse`` PCM named after its sink, as the tests define them). Without a
sound server, or no match, only the device's own name is looked at
(``headset``, ``headphone``... in it); otherwise the kind is unknown and
echo cancellation stays on (the safe side: an echo is worse than a duck).

Blocking (a subprocess, at most ``TIMEOUT`` s): call it off the event loop.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

__all__ = ["OutputKind", "output_kind"]

TIMEOUT = 2.0  # seconds for each pactl call
MAX_OUTPUT = 4 << 20  # bytes of pactl output we parse (a local server's: far less)
HEADSET_FORM_FACTORS = frozenset({"headset", "headphone"})
HEADSET_PORT_TYPES = frozenset({"headphones", "headset"})
HEADSET_WORDS = ("headset", "headphone", "earphone", "earbud", "airpods")
DEFAULT_PCMS = frozenset({"", "default", "pulse", "pipewire", "sysdefault"})
_HW = re.compile(r"\(hw:(\d+),(\d+)\)\s*$")


@dataclass(frozen=True, slots=True)
class OutputKind:
    headset: bool | None  # None: not known
    why: str  # one line, e.g. 'PulseAudio sink "b_spk": device.form_factor=headset'


def _server_present() -> bool:
    """A PulseAudio-protocol server is there to ask (so pactl never autospawns one)."""
    if os.environ.get("PULSE_SERVER"):
        return True
    runtime = os.environ.get("PULSE_RUNTIME_PATH")
    if not runtime:
        base = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
        runtime = os.path.join(base, "pulse")
    return os.path.exists(os.path.join(runtime, "native"))


def _pactl_json(*args: str) -> Any:
    exe = shutil.which("pactl")
    if exe is None or not _server_present():
        return None
    try:
        done = subprocess.run(
            [exe, "-f", "json", *args], capture_output=True, timeout=TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0 or len(done.stdout) > MAX_OUTPUT:
        return None
    try:
        return json.loads(done.stdout)
    except ValueError:  # an old pactl without -f json prints text
        return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _props(sink: dict[str, Any]) -> dict[str, Any]:
    props = sink.get("properties")
    return props if isinstance(props, dict) else {}


def _sink_for(device: str, sinks: list[dict[str, Any]], default: str) -> dict[str, Any] | None:
    if device.strip().lower() in DEFAULT_PCMS:
        return next((s for s in sinks if _text(s.get("name")) == default), None)
    if hw := _HW.search(device):
        card, dev = hw.groups()
        for sink in sinks:
            p = _props(sink)
            if _text(p.get("alsa.card")) == card and _text(p.get("alsa.device")) == dev:
                return sink
    for key in ("name", "description"):
        for sink in sinks:
            if _text(sink.get(key)) == device:
                return sink
    return None


def _sink_kind(sink: dict[str, Any]) -> OutputKind:
    name = _text(sink.get("name"))[:100]
    form = _text(_props(sink).get("device.form_factor")).lower()
    if form:
        return OutputKind(
            form in HEADSET_FORM_FACTORS,
            f'PulseAudio sink "{name}": device.form_factor={form[:40]}',
        )
    active = _text(sink.get("active_port"))
    for port in sink.get("ports") or []:
        if not isinstance(port, dict) or _text(port.get("name")) != active:
            continue
        kind = _text(port.get("type")).lower()
        if kind in HEADSET_PORT_TYPES or any(w in active.lower() for w in HEADSET_WORDS):
            return OutputKind(True, f'PulseAudio sink "{name}": active port {active[:60]}')
        return OutputKind(False, f'PulseAudio sink "{name}": active port {active[:60]}')
    return OutputKind(None, f'PulseAudio sink "{name}" does not say what it is')


def output_kind(device: str) -> OutputKind:
    """What the PortAudio output device ``device`` (its name) plays into."""
    sinks = _pactl_json("list", "sinks")
    if isinstance(sinks, list):
        info = _pactl_json("info")
        default = _text(info.get("default_sink_name")) if isinstance(info, dict) else ""
        sink = _sink_for(device, [s for s in sinks if isinstance(s, dict)], default)
        if sink is not None:
            kind = _sink_kind(sink)
            if kind.headset is not None:
                return kind
    lowered = device.lower()
    if any(word in lowered for word in HEADSET_WORDS):
        return OutputKind(True, f'the device\'s name "{device[:60]}"')
    return OutputKind(None, "the output's kind is not known")
