"""Audio level of a block of samples, for the quality panel and sink stats.

``dbfs``: RMS relative to full scale (a full-scale square wave is 0 dBFS,
floored at -127 like RFC 6464). ``level``: the same on WebRTC's ``audioLevel``
scale, linear 0..1 where 1.0 is 0 dBov and 0.5 is about -6 dB.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # annotations only: the real av, or its stand-in (av_standin.py)
    import av

FLOOR_DBFS = -127.0
_FULL_SCALE = 32768.0


def rms_dbfs(samples: npt.NDArray[np.int16]) -> float:
    """RMS level of int16 ``samples`` in dBFS (``FLOOR_DBFS`` for silence or no samples)."""
    if len(samples) == 0:
        return FLOOR_DBFS
    x = samples.astype(np.float64)
    rms = math.sqrt(float(np.dot(x, x)) / len(x))
    if rms <= 0:
        return FLOOR_DBFS
    return max(FLOOR_DBFS, 20 * math.log10(rms / _FULL_SCALE))


def dbfs_to_level(dbfs: float) -> float:
    """Map dBFS to WebRTC's linear 0..1 ``audioLevel``."""
    if dbfs <= FLOOR_DBFS:
        return 0.0
    return min(1.0, 10 ** (dbfs / 20))


def audio_level(samples: npt.NDArray[np.int16]) -> float:
    """WebRTC ``audioLevel`` (0..1, linear) of int16 ``samples``."""
    return dbfs_to_level(rms_dbfs(samples))


def frame_dbfs(frame: av.AudioFrame) -> float:
    """RMS dBFS of an s16 frame (all channels together)."""
    return rms_dbfs(frame.to_ndarray().reshape(-1).astype(np.int16, copy=False))
