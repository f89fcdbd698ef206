"""Short checks of the audio path for ``hello-tui doctor`` and ``hello-tui devices``.

:func:`measure_input` records about a second from an input device and
reports its RMS level, so a user can tell "no device", "muted" and "working"
apart before a call. The stream is opened quietly like every PortAudio
stream here (``devices.open_stream``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from hello_tui.media.devices import AudioDevice, open_stream
from hello_tui.media.errors import AudioUnavailable
from hello_tui.media.levels import rms_dbfs
from hello_tui.media.quiet import quiet_stderr

RATE = 48_000
BLOCK = 960  # 20 ms
# Below this the input is taken as silent: a live microphone in a quiet room
# is around -60 dBFS; an idle null source or a muted input is digital silence.
SILENT_DBFS = -90.0


@dataclass(frozen=True, slots=True)
class InputLevel:
    device: AudioDevice
    dbfs: float
    seconds: float

    @property
    def silent(self) -> bool:
        return self.dbfs <= SILENT_DBFS


def measure_input(name: str = "", seconds: float = 1.0) -> InputLevel:
    """Record ``seconds`` from ``device:NAME`` (default input when empty) and return
    its RMS level. Raises AudioUnavailable (no PortAudio, no device, cannot open,
    no samples arrived) or DeviceError (NAME matches nothing)."""
    wanted = int(seconds * RATE)
    blocks: list[np.ndarray] = []
    got = 0
    done = threading.Event()

    def callback(indata: Any, _frames: int, _time: Any, _status: Any) -> None:
        nonlocal got
        if got < wanted:
            blocks.append(np.frombuffer(bytes(indata), dtype=np.int16).copy())
            got += len(blocks[-1])
        if got >= wanted:
            done.set()

    stream, device = open_stream("input", name, callback, samplerate=RATE, blocksize=BLOCK)
    try:
        with quiet_stderr():
            stream.start()
        # A real card delivers in ``seconds``; allow for a slow sound server.
        done.wait(seconds + 4.0)
    finally:
        with quiet_stderr():
            stream.stop()
            stream.close()
    if not blocks:
        raise AudioUnavailable(f"{device.name!r} delivered no audio in {seconds + 4.0:g} s")
    samples = np.concatenate(blocks)[:wanted]
    return InputLevel(device=device, dbfs=rms_dbfs(samples), seconds=len(samples) / RATE)
