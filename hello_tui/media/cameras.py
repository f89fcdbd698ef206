"""Which cameras exist, without opening them (for ``doctor`` and ``devices``).

On Linux every V4L2 device shows up in sysfs as ``video4linux/videoN`` with
a ``name`` file, and OpenCV's ``camera:N`` opens ``/dev/videoN``. Listing
sysfs needs neither OpenCV nor access to the device (it may be in use by
another program). Metadata nodes (a second ``videoN`` per webcam on recent
kernels, ``index`` ≠ 0) are left out: they cannot deliver pictures.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

SYSFS = Path("/sys/class/video4linux")
VIDEO_EXTRA = "pipx install 'hello-tui[video]' (or: pip install opencv-python-headless)"


@dataclass(frozen=True, slots=True)
class Camera:
    index: int
    name: str

    @property
    def endpoint(self) -> str:
        return f"camera:{self.index}"


def list_cameras(sysfs: Path = SYSFS) -> list[Camera]:
    """Capture devices in ``sysfs`` (``video4linux``), by index."""
    cameras = []
    try:
        entries = list(sysfs.iterdir())
    except OSError:
        return []
    for entry in entries:
        m = re.fullmatch(r"video(\d+)", entry.name)
        if m is None:
            continue
        if _read(entry / "index") not in ("", "0"):
            continue
        cameras.append(Camera(int(m.group(1)), _read(entry / "name") or entry.name))
    return sorted(cameras, key=lambda c: c.index)


def opencv_installed() -> bool:
    """Whether ``cv2`` can be imported (checked without importing it: that is slow)."""
    return importlib.util.find_spec("cv2") is not None


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()[:200]
    except OSError:
        return ""
