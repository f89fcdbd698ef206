"""Sound devices: listing, ``device:NAME`` lookup, fallback; PulseAudio or PortAudio.

Two backends carry ``device:`` streams (``[audio] backend``, or the
``HELLO_TUI_AUDIO_BACKEND`` environment variable, which wins): ``pulse``
talks to a PulseAudio/PipeWire-pulse server through libpulse
(:mod:`hello_tui.media.pulse_streams`), ``portaudio`` goes through
sounddevice, ALSA and whatever ALSA reaches; ``auto`` (the default: see
docs/media.md, "The pulse backend") takes pulse when a server answers and
libpulse loads, else PortAudio. On pulse a device is a sink or
source: ``device:NAME`` matches its name or its description, and as an input
a sink's name means its monitor (what it plays).

sounddevice is imported lazily (importing it initialises PortAudio, which
probes ALSA/JACK and is slow and noisy), inside :func:`quiet_stderr`. Three
situations mean "no audio device" rather than a crash, and end in a
:class:`FallbackNotice` the front end shows in one line: the PortAudio
library is missing (sounddevice raises OSError on import), PortAudio lists
no device of the wanted kind, or the device fails to open. A ``device:NAME``
that matches nothing while devices exist is a user error instead
(:class:`DeviceError`, listing what exists).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal, Protocol, TypeVar

from hello_tui.media.errors import AudioUnavailable, DeviceError
from hello_tui.media.quiet import quiet_stderr

log = logging.getLogger(__name__)

Kind = Literal["input", "output"]
Backend = Literal["auto", "pulse", "portaudio"]
BACKENDS: tuple[Backend, ...] = ("auto", "pulse", "portaudio")
BACKEND_ENV = "HELLO_TUI_AUDIO_BACKEND"

_sd: ModuleType | None = None
# PortAudio's API is not thread-safe: streams are opened/closed from worker threads when a
# device is switched mid-call (docs/media.md, "Devices that change"), one call at a time.
_pa_lock = threading.RLock()
_streams: weakref.WeakSet[Any] = weakref.WeakSet()  # made by open_on: refresh_if_idle waits
DEVICE_BUSY = -9985  # paDeviceUnavailable: someone (maybe we) holds it, it has not gone
_backend_setting: Backend = "auto"  # [audio] backend (set_backend); docs/media.md
PULSE_HOSTAPI = "PulseAudio"  # AudioDevice.hostapi of the pulse backend's devices
# PortAudio's (ALSA's) names of the sound server's default device: on pulse they mean
# the default too (unless a device has that name), so configs written for PortAudio work.
PULSE_DEFAULTS = frozenset({"default", "pulse", "pipewire", "sysdefault"})


@dataclass(frozen=True, slots=True)
class AudioDevice:
    """One PortAudio device as the user sees it."""

    index: int
    name: str
    hostapi: str
    inputs: int
    outputs: int
    default_input: bool = False
    default_output: bool = False
    description: str = ""  # the pulse backend: the sink's/source's description

    def is_default(self, kind: Kind) -> bool:
        return self.default_input if kind == "input" else self.default_output


@dataclass(frozen=True, slots=True)
class FallbackNotice:
    """Why a requested device endpoint was replaced, and by what. ``str()`` is the one line."""

    role: Literal["audio-source", "audio-sink"]
    requested: str
    used: str
    reason: str

    def __str__(self) -> str:
        if self.role == "audio-source":
            return f"no audio input device ({self.reason}); using silence ({self.used})"
        return f"no audio output device ({self.reason}); discarding received audio ({self.used})"


class HasNotice(Protocol):
    notice: FallbackNotice | None


_T = TypeVar("_T", bound=HasNotice)


def device_or_null(
    role: Literal["audio-source", "audio-sink"],
    spec: str,
    open_device: Callable[[], _T],
    null: Callable[[str], _T],
    *,
    fallback: bool,
) -> _T:
    """``open_device()``; if the device is unusable (:class:`AudioUnavailable`) and
    ``fallback``, ``null("null:")`` instead, its ``notice`` saying why. The one
    fallback rule of sources and sinks."""
    try:
        return open_device()
    except AudioUnavailable as exc:
        if not fallback:
            raise
        replacement = null("null:")
        replacement.notice = FallbackNotice(role, spec, "null:", exc.reason)
        return replacement


def set_backend(backend: str) -> None:
    """Use ``backend`` ("auto", "pulse", "portaudio"; ``[audio] backend``) from now on."""
    global _backend_setting
    if backend not in BACKENDS:
        raise ValueError(f"unknown audio backend {backend!r} (one of {', '.join(BACKENDS)})")
    _backend_setting = backend


def backend() -> Literal["pulse", "portaudio"]:
    """The backend ``device:`` endpoints use now: the environment variable, else the
    setting; ``auto`` is pulse when a PulseAudio server answers (connecting to it)."""
    wanted = os.environ.get(BACKEND_ENV, "").strip().lower() or _backend_setting
    if wanted == "portaudio":
        return "portaudio"
    if wanted == "pulse":
        return "pulse"
    from hello_tui.media import pulse_streams

    return "pulse" if pulse_streams.available() else "portaudio"


def _pulse() -> ModuleType:
    from hello_tui.media import pulse_streams

    return pulse_streams


def _check_alsa_config() -> None:
    # PortAudio 19.6 aborts the whole process (assertion in BuildDeviceList) when
    # ALSA_CONFIG_PATH names a missing file; refuse before it gets the chance.
    for path in filter(None, os.environ.get("ALSA_CONFIG_PATH", "").split(":")):
        if not os.path.exists(path):
            raise AudioUnavailable(f"ALSA_CONFIG_PATH names a missing file: {path}")


def portaudio() -> ModuleType:
    """The sounddevice module, imported quietly on first use; raise AudioUnavailable."""
    global _sd
    if _sd is None:
        _check_alsa_config()
        try:
            with quiet_stderr():
                import sounddevice
        except OSError as exc:  # libportaudio2 missing: "PortAudio library not found"
            raise AudioUnavailable(str(exc) or "PortAudio library not found") from None
        _sd = sounddevice
    return _sd


def refresh() -> None:
    """Re-initialise PortAudio so devices plugged in (or servers started) since are seen.

    This closes every open stream: see :func:`refresh_if_idle`. The pulse backend
    lists afresh each time; it only reconnects (to a changed ``PULSE_SERVER``)."""
    if "hello_tui.media.pulse_streams" in sys.modules:
        _pulse().reset()
    if backend() == "pulse" and _sd is None:
        return
    sd = portaudio()
    with _pa_lock, quiet_stderr():
        sd._terminate()
        sd._initialize()


def streams_open() -> int:
    """How many streams made by :func:`open_on` are open now (a call, a tone, a meter)."""
    with _pa_lock:
        return sum(1 for stream in list(_streams) if not stream.closed)


def portaudio_streams_open() -> list[Any]:
    """The PortAudio streams made by :func:`open_on` that are open now: what a
    re-initialisation would silence (a pulse stream does not go through PortAudio)."""
    with _pa_lock:
        return [s for s in list(_streams) if not s.closed and not _is_pulse(s)]


def refresh_if_idle() -> bool:
    """:func:`refresh` only while no PortAudio stream of ours is open (PortAudio can
    re-list devices only by re-initialising, which would silence a call); whether it
    did."""
    with _pa_lock:
        if backend() == "pulse":
            return True  # listing never disturbs a pulse stream: nothing to wait for
        if open_now := portaudio_streams_open():
            log.info("device re-list deferred: %d PortAudio stream(s) open", len(open_now))
            return False
        refresh()
        return True


def list_devices(kind: Kind | None = None) -> list[AudioDevice]:
    """Devices the backend reports, optionally only those with inputs/outputs."""
    if backend() == "pulse":
        return _pulse_devices(kind)
    sd = portaudio()
    with quiet_stderr():
        raw: Any = sd.query_devices()
        hostapis: Any = sd.query_hostapis()
        default_in, default_out = sd.default.device
    if default_in is None or default_in < 0:
        default_in = _hostapi_default(hostapis, "default_input_device")
    if default_out is None or default_out < 0:
        default_out = _hostapi_default(hostapis, "default_output_device")
    out = [
        AudioDevice(
            index=int(d["index"]),
            name=str(d["name"]),
            hostapi=str(hostapis[d["hostapi"]]["name"]),
            inputs=int(d["max_input_channels"]),
            outputs=int(d["max_output_channels"]),
            default_input=d["index"] == default_in,
            default_output=d["index"] == default_out,
        )
        for d in raw
    ]
    if kind == "input":
        return [d for d in out if d.inputs > 0]
    if kind == "output":
        return [d for d in out if d.outputs > 0]
    return out


def _pulse_devices(kind: Kind | None) -> list[AudioDevice]:
    out: list[AudioDevice] = []
    for k in ("input", "output") if kind is None else (kind,):
        for d in _pulse().list_pulse_devices(k):
            out.append(
                AudioDevice(
                    index=d.index, name=d.name, hostapi=PULSE_HOSTAPI,
                    inputs=int(k == "input"), outputs=int(k == "output"),
                    default_input=d.default and k == "input",
                    default_output=d.default and k == "output", description=d.description,
                )
            )  # fmt: skip
    return out


def _hostapi_default(hostapis: Any, key: str) -> int:
    for api in hostapis:
        if api.get(key, -1) >= 0:
            return int(api[key])
    return -1


def resolve_device(name: str, kind: Kind) -> AudioDevice:
    """The device ``device:NAME`` means: default when empty, else exact then substring match.

    Raises AudioUnavailable when PortAudio has no device of this kind at all,
    DeviceError when NAME matches none (or several) of the devices that exist.
    """
    devices = list_devices(kind)
    if not devices:
        raise AudioUnavailable(f"{_label()} found no devices")
    wanted = name.casefold()
    if not name or (
        wanted in PULSE_DEFAULTS
        and devices[0].hostapi == PULSE_HOSTAPI
        and not any(d.name.casefold() == wanted for d in devices)
    ):
        return _default(devices, kind)
    exact = [d for d in devices if wanted in (d.name.casefold(), d.description.casefold())]
    if not exact and kind == "input":  # pulse: a sink's name as an input is its monitor
        exact = [d for d in devices if d.hostapi == PULSE_HOSTAPI and d.name == f"{name}.monitor"]
    if exact:
        return exact[0]
    partial = [
        d for d in devices if wanted in d.name.casefold() or wanted in d.description.casefold()
    ]
    if len(partial) == 1:
        return partial[0]
    if partial:
        names = ", ".join(repr(d.name) for d in partial)
        raise DeviceError(f"device:{name} is ambiguous: it matches {names}")
    names = ", ".join(repr(d.name) for d in devices)
    raise DeviceError(f"no audio {kind} device matches {name!r} (available: {names})")


def _default(devices: list[AudioDevice], kind: Kind) -> AudioDevice:
    """The default device; on pulse, the one ``PULSE_SINK``/``PULSE_SOURCE`` names
    first (as every libpulse client honours them), unless no such device exists."""
    if devices[0].hostapi == PULSE_HOSTAPI:
        wanted = os.environ.get("PULSE_SOURCE" if kind == "input" else "PULSE_SINK", "")
        named = [d for d in devices if wanted and d.name == wanted]
        if named:
            return named[0]
    return next((d for d in devices if d.is_default(kind)), devices[0])


def _label() -> str:
    return "PulseAudio" if backend() == "pulse" else "PortAudio"


def open_stream(
    kind: Kind,
    name: str,
    callback: Callable[..., None],
    *,
    samplerate: int,
    blocksize: int,
    latency: str | float = "low",
) -> tuple[Any, AudioDevice]:
    """Create (not start) a mono int16 Input/OutputStream on ``device:NAME``, quietly.

    A PortAudio failure to open becomes AudioUnavailable naming the device.
    """
    device = resolve_device(name, kind)
    stream = open_on(
        kind, device, callback, samplerate=samplerate, blocksize=blocksize, latency=latency
    )
    return stream, device


def open_on(
    kind: Kind,
    device: AudioDevice,
    callback: Callable[..., None],
    *,
    samplerate: int,
    blocksize: int,
    latency: str | float = "low",
) -> Any:
    """Create (not start) a stream on ``device`` as :func:`open_stream` does."""
    if device.hostapi == PULSE_HOSTAPI:
        stream = _pulse().PulseStream(
            kind, device.name, callback, blocksize=blocksize, latency=latency
        )
        _streams.add(stream)
        return stream
    sd = portaudio()
    cls = sd.InputStream if kind == "input" else sd.OutputStream
    try:
        with _pa_lock, quiet_stderr():
            stream = cls(
                device=device.index,
                samplerate=samplerate,
                channels=1,
                dtype="int16",
                blocksize=blocksize,
                latency=latency,
                callback=callback,
            )
    except (sd.PortAudioError, ValueError) as exc:
        raise AudioUnavailable(f"cannot open {device.name!r}: {exc}") from None
    _streams.add(stream)
    return stream


def _is_pulse(stream: Any) -> bool:
    pulse = sys.modules.get("hello_tui.media.pulse_streams")
    return pulse is not None and isinstance(stream, pulse.PulseStream)


def start_stream(stream: Any) -> None:
    """Start a stream (quietly); a PortAudio failure becomes AudioUnavailable."""
    if _is_pulse(stream):
        stream.start()  # raises AudioUnavailable itself
        return
    sd = portaudio()
    try:
        with _pa_lock, quiet_stderr():
            stream.start()
    except sd.PortAudioError as exc:
        raise AudioUnavailable(f"cannot start the stream: {exc}") from None


def close_stream(stream: Any, *, started: bool = True) -> None:
    """Abort (when started) and close a stream, quietly, never raising."""
    if _is_pulse(stream):
        stream.close()
        return
    sd = portaudio()
    with _pa_lock, quiet_stderr():
        try:
            if started:
                stream.abort()
            stream.close()
        except sd.PortAudioError:
            pass  # the device is gone: nothing left to release


def still_there(kind: Kind, device: AudioDevice, samplerate: int) -> bool:
    """Whether ``device`` can still be opened (a stream created and closed, never started).

    PortAudio lists devices once (re-listing would close every open stream), so a
    device that went away is found by opening it: a sound server's device that was
    removed fails with an I/O error. Busy (held by someone, maybe us) counts as there.
    """
    if device.hostapi == PULSE_HOSTAPI:  # the server lists afresh: ask it by name
        return bool(_pulse().device_present(kind, device.name))
    sd = portaudio()
    cls = sd.InputStream if kind == "input" else sd.OutputStream
    try:
        with _pa_lock, quiet_stderr():
            cls(device=device.index, samplerate=samplerate, channels=1, dtype="int16").close()
    except sd.PortAudioError as exc:
        code = exc.args[1] if len(exc.args) > 1 else None
        return code == DEVICE_BUSY
    except ValueError:
        return False
    return True
