"""AEC3 with a tuned suppressor: the optional shim (``aec3_shim.cpp``) through ctypes.

pywebrtc-audio builds AEC3 with the default ``EchoCanceller3Config`` and
exposes none of it. Its extension exports the WebRTC C++ symbols, so
``aec3_shim.cpp`` (compiled by ``aec3_build.py``, from ``dev.sh`` or the wheel
build, against the headers of the same pinned sdist; its WebRTC symbols resolve
against the installed extension when loaded) repeats the binding's
``AudioProcessor`` chain with a config of ours. The shim depends on the
extension's struct layouts: it is used only with the exact version it was
built for (:data:`PINNED`), else the binding's default runs (docs/media.md).

:class:`TunedProcessor` has the binding's ``AudioProcessor`` surface that
:class:`~hello_tui.media.audio_processing.CaptureProcessor` uses
(``process(near, far)``, ``speech_probability``, ``gain_db``).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from hello_tui.media.aec3_build import PINNED  # the version whose headers it is built with
from hello_tui.media.audio_format import SAMPLE_RATE, Samples

__all__ = [
    "PINNED",
    "SHIM",
    "TUNING",
    "ShimUnavailable",
    "TunedProcessor",
    "create_handle",
    "load_shim",
]

# Where dev.sh and the wheel build put it (gitignored); HELLO_TUI_AEC3_SHIM overrides.
SHIM = Path(__file__).with_name("_aec3_shim.so")
BLOCK = SAMPLE_RATE // 100

_NEAREND = "suppressor.nearend_tuning."
_NORMAL = "suppressor.normal_tuning."
# The tuning (bench/aec.py --tune; figures in docs/benchmarks.md "Audio processing"):
# the suppressor more transparent while the near end dominates (its nearend masks),
# a little more in the normal state, and a 30-block (120 ms) linear filter instead
# of 13, so the reverberant tail is removed linearly rather than by suppression.
TUNING: Mapping[str, float] = {
    _NEAREND + "mask_lf.enr_transparent": 4.0,  # default 1.09
    _NEAREND + "mask_lf.enr_suppress": 5.0,  # 1.1
    _NEAREND + "mask_hf.enr_transparent": 1.0,  # 0.1
    _NEAREND + "mask_hf.enr_suppress": 1.2,  # 0.3
    _NORMAL + "mask_lf.enr_transparent": 0.6,  # 0.3
    _NORMAL + "mask_lf.enr_suppress": 0.8,  # 0.4
    _NORMAL + "mask_hf.enr_transparent": 0.15,  # 0.07
    _NORMAL + "mask_hf.enr_suppress": 0.2,  # 0.1
    "filter.main.length_blocks": 30,  # 13
    "filter.shadow.length_blocks": 30,  # 13
    "filter.main_initial.length_blocks": 30,  # 12
    "filter.shadow_initial.length_blocks": 30,  # 12
}


class ShimUnavailable(RuntimeError):
    """The shim is not built, or does not match the installed pywebrtc-audio."""


_lib: ctypes.CDLL | None = None


def _binding_version() -> str | None:
    """pywebrtc-audio's installed version, from its ``.dist-info`` directory's name
    next to the package: ``importlib.metadata`` costs a call ~1 MiB of RSS (it drags
    zipfile, email, csv...; docs/media.md, "One malloc arena (session 10)"), and
    nothing else on the call path imports it any more. It answers where the
    directory is not alone or not there (an unusual install)."""
    spec = importlib.util.find_spec("pywebrtc_audio")
    if spec is None or spec.origin is None:
        return None
    found = list(Path(spec.origin).parent.parent.glob("pywebrtc_audio-*.dist-info"))
    if len(found) == 1:
        return found[0].name[len("pywebrtc_audio-") : -len(".dist-info")]
    from importlib import metadata

    try:
        return metadata.version("pywebrtc-audio")
    except metadata.PackageNotFoundError:
        return None


def load_shim() -> ctypes.CDLL:
    """The shim's library, loaded once; :class:`ShimUnavailable` with one line why not."""
    global _lib
    if _lib is not None:
        return _lib
    path = Path(os.environ.get("HELLO_TUI_AEC3_SHIM") or SHIM)
    if not path.is_file():
        raise ShimUnavailable(f"not built ({path.name}: no g++ or no network at the build)")
    version = _binding_version()
    if version is None:
        raise ShimUnavailable("pywebrtc-audio is not installed")
    if version != PINNED:  # other struct layouts: calling in would corrupt memory
        raise ShimUnavailable(f"built for pywebrtc-audio {PINNED}, {version} is installed")
    try:
        from pywebrtc_audio import _webrtc_audio as extension

        # The shim is linked without the extension (aec3_build.py): its WebRTC symbols
        # resolve against the extension's, once the already-imported extension is made
        # global (RTLD_NOLOAD: the same copy, never a second one).
        ctypes.CDLL(extension.__file__, mode=os.RTLD_GLOBAL | os.RTLD_NOLOAD)
        lib = ctypes.CDLL(str(path))
    except (ImportError, OSError) as exc:
        raise ShimUnavailable(f"cannot load ({exc})") from None
    lib.aec3_shim_abi.restype = ctypes.c_char_p
    if lib.aec3_shim_abi().decode() != f"pywebrtc-audio {PINNED}":
        raise ShimUnavailable(f"{path.name} was built for {lib.aec3_shim_abi().decode()}")
    vp, i16 = ctypes.c_void_p, ctypes.POINTER(ctypes.c_int16)
    lib.aec3_config_new.restype = vp
    lib.aec3_config_free.argtypes = [vp]
    lib.aec3_config_set.argtypes = [vp, ctypes.c_char_p, ctypes.c_double]
    lib.aec3_config_get.argtypes = [vp, ctypes.c_char_p]
    lib.aec3_config_get.restype = ctypes.c_double
    lib.aec3_config_valid.argtypes = [vp]
    lib.aec3_create.argtypes = [vp, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                ctypes.c_int, ctypes.c_float]  # fmt: skip
    lib.aec3_create.restype = vp
    lib.aec3_process.argtypes = [vp, i16, i16, i16, ctypes.c_int]
    lib.aec3_speech_probability.argtypes = [vp]
    lib.aec3_speech_probability.restype = ctypes.c_float
    lib.aec3_gain_db.argtypes = [vp]
    lib.aec3_gain_db.restype = ctypes.c_float
    lib.aec3_destroy.argtypes = [vp]
    _lib = lib
    return lib


_held: ctypes.PyDLL | None = None


def _held_shim() -> ctypes.PyDLL:
    """The shim's getters through a handle that keeps the GIL (``PyDLL``): they read a
    field. Through ``CDLL`` each call gives the GIL away and waits to take it back
    (up to the switch interval while the event loop runs Python), twice a block in
    the capture callback."""
    global _held
    if _held is None:
        held = ctypes.PyDLL(str(Path(os.environ.get("HELLO_TUI_AEC3_SHIM") or SHIM)))
        for name in ("aec3_speech_probability", "aec3_gain_db"):
            getattr(held, name).argtypes = [ctypes.c_void_p]
            getattr(held, name).restype = ctypes.c_float
        _held = held
    return _held


def config_defaults(names: list[str]) -> dict[str, float]:
    """The default config's value of each field (the ABI test compares them with
    the header's defaults: a layout change reads garbage there)."""
    lib = load_shim()
    cfg = lib.aec3_config_new()
    try:
        return {n: lib.aec3_config_get(cfg, n.encode()) for n in names}
    finally:
        lib.aec3_config_free(cfg)


def _ptr(a: np.ndarray) -> ctypes._Pointer[ctypes.c_int16]:
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))


def create_handle(
    *,
    echo_cancellation: bool,
    noise_suppression: bool,
    auto_gain_control: bool,
    ns_level: int = 1,
    agc_max_gain_db: float = 50.0,
    tuning: Mapping[str, float] | None = None,  # None: TUNING
) -> int:
    """A processor of the shim (``aec3_create``): the caller destroys it (or hands it to
    the capture path, media/capture_native.py, which does)."""
    lib = load_shim()
    tuning = TUNING if tuning is None else tuning
    cfg = lib.aec3_config_new()
    try:
        for name, value in tuning.items():
            if lib.aec3_config_set(cfg, name.encode(), float(value)) != 0:
                raise ShimUnavailable(f"unknown AEC3 config field {name!r}")
        handle = lib.aec3_create(cfg, SAMPLE_RATE, int(echo_cancellation),
                                 int(noise_suppression), int(auto_gain_control), ns_level,
                                 agc_max_gain_db)  # fmt: skip
    finally:
        lib.aec3_config_free(cfg)
    if not handle:
        raise ShimUnavailable("the shim refused the settings")
    return int(handle)


class TunedProcessor:
    """HPF, AEC3 with ``tuning`` applied to its config, NS, AGC2: 48 kHz mono int16."""

    def __init__(
        self,
        *,
        echo_cancellation: bool,
        noise_suppression: bool,
        auto_gain_control: bool,
        ns_level: int = 1,
        agc_max_gain_db: float = 50.0,
        tuning: Mapping[str, float] | None = None,  # None: TUNING
    ) -> None:
        lib = load_shim()
        handle = create_handle(echo_cancellation=echo_cancellation,
                               noise_suppression=noise_suppression,
                               auto_gain_control=auto_gain_control, ns_level=ns_level,
                               agc_max_gain_db=agc_max_gain_db, tuning=tuning)  # fmt: skip
        self._lib = lib
        self._handle: int | None = handle
        self._held = _held_shim()
        self._aec = echo_cancellation
        self._agc = auto_gain_control
        # The last call's size and its pointers: a capture block is always the same size,
        # and building three ctypes pointers per block cost more than the copies.
        self._frames = 0
        self._bufs: list[Samples] = []  # near, far, out
        self._ptrs: list[ctypes._Pointer[ctypes.c_int16]] = []

    def __del__(self) -> None:
        handle, self._handle = getattr(self, "_handle", None), None
        if handle:
            self._lib.aec3_destroy(handle)

    def process(self, near: Samples, far: Samples | None = None) -> Samples:
        """Whole 10 ms frames of ``near`` (and ``far``, same length, with AEC)."""
        frames = len(near) // BLOCK
        if frames * BLOCK != len(near):
            raise ValueError("near must be whole 10 ms frames")
        if self._aec and (far is None or len(far) != len(near)):
            raise ValueError("far must match near with echo cancellation")
        if frames != self._frames or not self._bufs:
            self._bufs = [np.zeros(frames * BLOCK, dtype=np.int16) for _ in range(3)]
            self._ptrs = [_ptr(b) for b in self._bufs]
            self._frames = frames
        near_buf, far_buf, out = self._bufs
        near_ptr, far_ptr, out_ptr = self._ptrs
        near_buf[:] = near
        if far is not None and self._aec:
            far_buf[:] = far
        self._lib.aec3_process(self._handle, near_ptr, far_ptr if self._aec else None, out_ptr,
                               frames)  # fmt: skip
        return out.copy()

    @property
    def speech_probability(self) -> float:
        return float(self._held.aec3_speech_probability(self._handle))

    @property
    def gain_db(self) -> float:
        return float(self._held.aec3_gain_db(self._handle))
