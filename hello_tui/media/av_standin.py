"""A stand-in for PyAV in an audio-only process: aiortc imports, no FFmpeg loaded.

``import av`` loads PyAV's 57 Cython modules and FFmpeg's libraries with
their video codecs (x264, x265, vpx, dav1d): ~16 MiB resident for the whole
call (docs/media.md, "Memory"). An audio-only call needs none of it: Opus is
encoded and decoded by the system libopus (``opus_encoder.py``,
``opus_decoder.py``) and frames are 20 ms of int16 PCM. But aiortc imports
``av`` at module level in ten modules and binds names from it (``AudioFrame``,
``Frame``, ``Packet``, ``CodecContext``, ``VideoFrame``, ...), and every
source and sink here builds or reads ``av.AudioFrame``.

:func:`install` puts this module's tree in ``sys.modules`` as ``av`` (and the
submodules aiortc imports from) before anything imports the real one. It
provides a pure-Python :class:`AudioFrame` with what aiortc's audio path and
ours use (``planes[0]`` as a writable buffer, ``format``/``layout`` names,
``samples``, ``sample_rate``, ``pts``, ``time_base``, ``to_ndarray``,
``from_ndarray``), and :class:`Frame`/:class:`Packet` for aiortc's
``isinstance`` checks. Everything that would need FFmpeg (codec contexts,
resamplers, video frames, containers) raises :class:`AvStandinError`, one
line naming the stand-in; a name it does not know is an ``AttributeError``
saying the same.

Only a process that declares itself audio-only up front installs it: the
CLI's ``call``/``join``/``answer`` without video and with no ``file:``
endpoint (:func:`audio_only_call`). The TUI and any video path import the
real av. ``HELLO_TUI_AV=real`` keeps the real av everywhere (A/B: the
figures in docs/media.md). Which names aiortc uses is pinned by
``tests/media/test_av_standin.py``: it scans aiortc's source and fails when
aiortc (or ``hello_tui``'s audio path) uses a name beyond :data:`PROVIDED`.

Stdlib only at import (numpy is imported by ``to_ndarray``/``from_ndarray``).
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Iterable
from typing import Any

from hello_tui.media.errors import MediaError

__all__ = [
    "PROVIDED",
    "AudioFormat",
    "AudioFrame",
    "AudioLayout",
    "AvStandinError",
    "Frame",
    "Packet",
    "audio_only_call",
    "install",
    "installed",
]

_WHY = (
    "{what} needs FFmpeg, which an audio-only call does not load (hello-tui's av "
    "stand-in, media/av_standin.py; HELLO_TUI_AV=real loads it)"
)


class AvStandinError(MediaError):
    """Something asked the stand-in for what only the real PyAV (FFmpeg) does."""

    def __init__(self, what: str) -> None:
        super().__init__(_WHY.format(what=what))


class FFmpegError(Exception):
    """``av.FFmpegError``: aiortc's receiver catches it; the stand-in never raises it."""


class AudioFormat:
    """``av.AudioFormat``: only packed signed 16-bit."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if name != "s16":
            raise AvStandinError(f"audio format {name!r}")
        self.name = name

    @property
    def bytes(self) -> int:
        return 2

    @property
    def is_planar(self) -> bool:
        return False


class AudioLayout:
    """``av.AudioLayout``: mono or stereo."""

    __slots__ = ("channels", "name")

    def __init__(self, name: str) -> None:
        count = {"mono": 1, "stereo": 2}.get(name)
        if count is None:
            raise AvStandinError(f"audio layout {name!r}")
        self.name = name
        self.channels: tuple[str, ...] = ("FC",) if count == 1 else ("FL", "FR")


_S16 = AudioFormat("s16")
_LAYOUTS = {"mono": AudioLayout("mono"), "stereo": AudioLayout("stereo")}


class AudioPlane(bytearray):
    """A frame's one packed plane: a writable buffer (``memoryview(plane)``)."""

    @property
    def buffer_size(self) -> int:
        return len(self)

    def update(self, data: Any) -> None:
        """Copy ``data`` (any buffer of exactly this plane's size) into the plane."""
        view = memoryview(data).cast("B")
        if len(view) != len(self):
            raise ValueError(f"got {len(view)} bytes for a plane of {len(self)}")
        self[:] = view


class Frame:
    """``av.frame.Frame``: what aiortc's sender tests encodable data against."""

    __slots__ = ()


class AudioFrame(Frame):
    """``av.AudioFrame`` for packed s16 (mono or stereo): one plane, in Python."""

    __slots__ = ("format", "layout", "planes", "pts", "sample_rate", "samples", "time_base")

    def __init__(
        self, format: Any = "s16", layout: Any = "stereo", samples: int = 0, align: int = 1
    ) -> None:
        self.format = format if isinstance(format, AudioFormat) else AudioFormat(str(format))
        if isinstance(layout, AudioLayout):
            self.layout = layout
        else:
            self.layout = _LAYOUTS.get(str(layout)) or AudioLayout(str(layout))
        self.samples = samples
        self.planes = [AudioPlane(samples * 2 * len(self.layout.channels))]
        self.pts: int | None = None
        self.time_base: Any = None
        self.sample_rate = 0

    @property
    def rate(self) -> int:
        return self.sample_rate

    def to_ndarray(self) -> Any:
        """The samples as int16, shape (1, samples × channels): PyAV's for packed s16."""
        import numpy as np

        return np.frombuffer(self.planes[0], dtype=np.int16).reshape(1, -1).copy()

    @classmethod
    def from_ndarray(cls, array: Any, format: str = "s16", layout: str = "mono") -> AudioFrame:
        import numpy as np

        pcm = np.ascontiguousarray(array, dtype=np.int16).reshape(-1)
        frame = cls(
            format=format, layout=layout, samples=len(pcm) // len(_LAYOUTS[layout].channels)
        )
        frame.planes[0].update(pcm)
        return frame

    def __repr__(self) -> str:
        return f"<av_standin.AudioFrame pts={self.pts}, {self.samples} samples, {self.layout.name}>"


class Packet:
    """``av.packet.Packet``: a pre-encoded packet (only the real av makes them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AvStandinError("an encoded packet (av.Packet)")

    def __class_getitem__(cls, item: Any) -> Any:  # ``Packet[Stream]`` in annotations
        return cls


class _Refusing(type):
    """The metaclass of what needs FFmpeg: any class attribute (``VideoFrame.from_ndarray``,
    ``CodecContext.create``) raises :class:`AvStandinError`, and so does making one."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AvStandinError(f"av.{cls.__name__}.{name}")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise AvStandinError(f"av.{cls.__name__}")


class CodecContext(metaclass=_Refusing):
    """``av.CodecContext``: encoding and decoding are FFmpeg's."""


class AudioResampler(metaclass=_Refusing):
    """``av.AudioResampler``: libswresample."""


class VideoFrame(metaclass=_Refusing):
    """``av.VideoFrame``: video."""


class VideoCodecContext(metaclass=_Refusing):
    """``av.video.codeccontext.VideoCodecContext``: video."""


def open(*args: Any, **kwargs: Any) -> Any:  # av.open
    raise AvStandinError("reading or writing a media file (av.open)")


class _StandinModule(types.ModuleType):
    """A module of the stand-in: an unknown name is an AttributeError naming it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(_WHY.format(what=f"{self.__name__}.{name}"))


# What the stand-in provides, by module: every name aiortc 1.16 (outside contrib) and
# hello_tui's call path take from av at import or use on the audio path. The test
# compares this against what they actually use.
PROVIDED: dict[str, dict[str, Any]] = {
    "av": {
        "AudioFormat": AudioFormat,
        "AudioFrame": AudioFrame,
        "AudioLayout": AudioLayout,
        "AudioResampler": AudioResampler,
        "CodecContext": CodecContext,
        "FFmpegError": FFmpegError,
        "Packet": Packet,
        "VideoFrame": VideoFrame,
        "open": open,
    },
    "av.frame": {"Frame": Frame},
    "av.packet": {"Packet": Packet},
    "av.audio": {},
    "av.audio.frame": {"AudioFrame": AudioFrame},
    "av.video": {},
    "av.video.frame": {"VideoFrame": VideoFrame},
    "av.video.codeccontext": {"VideoCodecContext": VideoCodecContext},
}

STANDIN = "hello_tui.media.av_standin"  # av.__standin__: how a module tells the two apart


def installed() -> bool:
    """Whether ``av`` in this process is the stand-in."""
    return getattr(sys.modules.get("av"), "__standin__", None) == STANDIN


def install() -> bool:
    """Put the stand-in in ``sys.modules`` as ``av``; True if it is there now.

    Refused (False) when the real av is already imported, or ``HELLO_TUI_AV=real``."""
    if installed():
        return True
    if "av" in sys.modules or os.environ.get("HELLO_TUI_AV", "").strip().lower() == "real":
        return False
    modules: dict[str, _StandinModule] = {}
    for name, names in PROVIDED.items():
        module = _StandinModule(name, f"hello-tui's audio-only stand-in for {name}")
        module.__dict__.update(names, __standin__=STANDIN, __path__=[], __file__=__file__)
        modules[name] = module
    for name, module in modules.items():  # submodules as attributes: ``av.video.frame``
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(modules[parent], child, module)
    sys.modules.update(modules)
    return True


def audio_only_call(endpoints: Iterable[str], video: str | None) -> bool:
    """Install the stand-in for a CLI call that declared itself audio-only: no video,
    no ``file:`` among its audio ``endpoints`` (input, output, the sounds' output:
    FFmpeg decodes and writes files), aiortc adapted (its own Opus encoder is
    FFmpeg's). True if installed."""
    if video is not None or any(e.startswith("file:") for e in endpoints):
        return False
    adapter = os.environ.get("HELLO_TUI_AIORTC_ADAPTER", "1").strip().lower()
    if adapter in ("0", "off", "no", "false"):
        return False
    return install()
