"""The capture-side audio processing stage: echo cancellation, noise suppression, gain.

WebRTC's audio processing module (AEC3, NS, AGC2 and the high-pass filter)
through the ``pywebrtc-audio`` binding (why that one: docs/media.md). It is
the only module that imports the binding, behind a tiny interface so it can
be swapped:

* :meth:`CaptureProcessor.feed_far` — what the playout just sent to the
  speaker, called from the output device's callback, so the reference arrives
  at the playout's own timing and the canceller sees the true delay;
* :meth:`CaptureProcessor.process` — a captured block in, the processed block
  out (called from the input device's callback);
* :meth:`CaptureProcessor.stats` — counters, speech probability, gain.

The binding processes 10 ms pairs (near, far) in one call, so the far end
is kept in a ring (``FAR_RING`` samples) and each near 10 ms is paired with
the far samples that the speaker played at the moment it was captured, by
the devices' own clocks: the output callback gives each block's DAC time
(PortAudio's ``outputBufferDacTime``), the input callback each block's ADC
time. Both map a stream's sample count to time (a running median over the
last callbacks, so one late callback does not move it); their difference is
the pairing lag, held constant while it stays within ``REALIGN_S`` of the
measured one (a contiguous reference, which the canceller needs: ALSA's
pulse plugin reports capture times that wander ~10 ms with nothing wrong)
and jumped when it does not, or as soon as fresh times are in after a
callback reports an overflow (lost captured samples: the echo moved against
the reference). After a speaker underrun (the card played silence we never
gave it) the silence goes into the reference instead, as long as the block's
DAC time says how long it was (1 ms to 0.5 s late): the far stream then stays
a timeline of what the speaker played, the pairing lag does not move, and
AEC3 keeps the echo delay it found (a jump made it search again); a gap
filled too long is trimmed when a flagged block soon after says so.
The reference is taken ``LEAD_S`` ahead, so the delay the
canceller must find is the acoustic path plus that lead, never negative when
the devices' reported latencies are a little off. Pairing by arrival order
instead (a queue) made the delay the canceller sees jump by 10-400 ms
whenever one callback was late, and AEC3 then never converged (docs/media.md).
Without times (tests feeding synthetic scenes) near sample *k* pairs with
far sample *k*.

Only ``device:`` capture is processed (files, tones and silence stay
bit-exact), and echo cancellation only when the output is a device too.
Without the binding, :func:`open_processor` returns a one-line notice and no
processor: the call goes on unprocessed.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hello_tui.media import aec3_tuned
from hello_tui.media.audio_format import SAMPLE_RATE, Samples

if TYPE_CHECKING:
    from hello_tui.media.capture_native import NativeProcessor

__all__ = [
    "BLOCK",
    "DEFAULT",
    "OFF",
    "CaptureProcessor",
    "ProcessingConfig",
    "ProcessingStats",
    "ProcessingUnavailable",
    "attach_processing",
    "follow_output",
    "headset_notice",
    "open_processor",
]

log = logging.getLogger(__name__)

BLOCK = SAMPLE_RATE // 100  # the module's unit: 10 ms
FAR_RING = 1 << 17  # far samples kept for pairing (2.7 s): more than any stall we recover from
CLOCK_WINDOW = 5  # callbacks in each stream's running median of its clock offset
RESYNC_AFTER = 3  # callbacks of both streams after an xrun before the pairing follows it
REALIGN_S = 0.020  # the pairing lag moves only when the measured one is this far from it
LEAD_S = 0.010  # the reference is taken this far ahead of the capture time (see above)
MAX_GAP = SAMPLE_RATE // 2  # a speaker underrun's silence filled into the reference, at most
REFINE = SAMPLE_RATE * 3 // 10  # a filled gap can be shortened while this little came after


class ProcessingUnavailable(RuntimeError):
    """The processing binding cannot be loaded (not installed, or its library fails)."""


@dataclass(frozen=True, slots=True)
class ProcessingConfig:
    """Which stages run on ``device:`` capture (``[audio]`` aec / noise_suppression / auto_gain).

    The high-pass filter always runs with any other stage (AEC3 needs it)."""

    aec: bool = True
    noise_suppression: bool = True
    auto_gain: bool = True
    ns_level: int = 1  # 0-3: at most 6, 12, 18, 21 dB of noise removed (bench/aec.py --sweep)
    # The gain control's adaptive gain stops here (the binding's default is 50 dB):
    # past ~15 dB its limiter flattens the talker's envelope and it lifts the residual
    # echo too; double talk with a -20 dB microphone went 0.877 -> 0.768 (docs/media.md).
    agc_max_gain_db: float = 12.0
    # Echo cancellation on a headset output too ([audio] aec = "on"); by default a
    # headset gets none (nothing to cancel, and AEC3 would duck the local talker).
    aec_on_headset: bool = False
    # AEC3 with our suppressor tuning (media/aec3_tuned.py) when the shim is built (dev.sh
    # or the wheel build) for the installed pywebrtc-audio; else, or False, the default.
    tuned_aec: bool = True

    @property
    def any(self) -> bool:
        return self.aec or self.noise_suppression or self.auto_gain

    @classmethod
    def from_switches(
        cls,
        aec: bool | str,
        noise_suppression: bool,
        auto_gain: bool,
        echo_tuning: str = "tuned",
    ) -> ProcessingConfig:
        """From ``[audio]``: ``aec`` is ``"auto"`` (or ``true``: on unless the output
        is a headset), ``"on"`` (on a headset too) or ``"off"`` (or ``false``);
        ``echo_tuning`` ``"tuned"`` (ours, when the shim is built) or ``"default"``."""
        mode = ("auto" if aec else "off") if isinstance(aec, bool) else aec
        return cls(
            aec=mode != "off", noise_suppression=noise_suppression, auto_gain=auto_gain,
            aec_on_headset=mode == "on", tuned_aec=echo_tuning != "default",
        )  # fmt: skip


DEFAULT = ProcessingConfig()
OFF = ProcessingConfig(aec=False, noise_suppression=False, auto_gain=False)


@dataclass(frozen=True, slots=True)
class ProcessingStats:
    frames: int  # near-end 10 ms frames processed
    far_frames: int  # far-end 10 ms frames received from the playout
    far_missing: int  # near frames paired with (partly) no reference: nothing played then
    realignments: int  # jumps of the pairing lag (underruns, stalls)
    pairing_ms: float  # the pairing lag: far stream position minus near position, in ms
    speech_probability: float  # of the last frame, 0..1
    gain_db: float  # applied by the gain control (0 when off)
    cpu_seconds: float  # thread CPU time spent in the binding
    echo_cancellation: bool
    gaps_filled: int = 0  # speaker underruns whose silence went into the reference
    tuned: bool = False  # AEC3 runs with our tuning (the shim), not the binding's default
    gaps_trimmed: int = 0  # filled underrun gaps found too long afterwards and shortened


def _load_binding() -> Any:
    try:
        import pywebrtc_audio
    except ImportError as exc:
        raise ProcessingUnavailable(f"pywebrtc-audio is not installed ({exc})") from None
    except OSError as exc:  # the extension's shared library failed to load
        raise ProcessingUnavailable(f"pywebrtc-audio cannot load ({exc})") from None
    return pywebrtc_audio


class CaptureProcessor:
    """One call's processing stage: thread-safe between ``feed_far`` (the output
    callback's thread) and ``process`` (the input callback's thread)."""

    def __init__(self, config: ProcessingConfig, *, echo_cancellation: bool) -> None:
        self.config = config
        self.echo_cancellation = echo_cancellation and config.aec
        self._ap = self._module(self.echo_cancellation)
        self._ring = np.zeros(FAR_RING, dtype=np.int16)
        self._far_count = 0  # far samples received so far (the ring's write position)
        self._near_count = 0  # near samples received so far
        self._far_clock: collections.deque[float] = collections.deque(maxlen=CLOCK_WINDOW)
        self._near_clock: collections.deque[float] = collections.deque(maxlen=CLOCK_WINDOW)
        self._lag: int | None = None  # far index paired with near index k is k + lag
        self._resync = False  # an xrun: realign as soon as both clocks have fresh times
        self._near_partial = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()
        self._silence = np.zeros(BLOCK, dtype=np.int16)
        self.frames = self.far_frames = self.far_missing = self.realignments = 0
        self.gaps_filled = 0  # speaker underruns whose silence went into the reference
        self.gaps_trimmed = 0  # filled gaps found too long afterwards and shortened
        self._fill: tuple[int, int] | None = None  # the last filled gap: (end, length)
        # Trim a filled gap a later flagged block says was too long: only where the
        # speaker corrects its gaps so (the pulse backend); PortAudio's DAC times wander
        # by more than such a correction, and it re-pairs as before.
        self.trim_fills = False
        self.cpu_seconds = 0.0
        self.speech_probability = 0.0
        self.gain_db = 0.0
        # Diagnostics (bench/aec.py): called with each (near, far) 10 ms pair the binding gets.
        self.tap: Callable[[Samples, Samples], None] | None = None

    def _module(self, echo_cancellation: bool) -> Any:
        binding = _load_binding()
        self.tuned = False
        if echo_cancellation and self.config.tuned_aec:
            try:
                module = aec3_tuned.TunedProcessor(
                    echo_cancellation=True,
                    noise_suppression=self.config.noise_suppression,
                    auto_gain_control=self.config.auto_gain,
                    ns_level=self.config.ns_level,
                    agc_max_gain_db=self.config.agc_max_gain_db,
                )
            except aec3_tuned.ShimUnavailable as exc:
                log.info("AEC3 tuning shim unused (%s): the binding's default tuning", exc)
            else:
                self.tuned = True
                return module
        try:
            return binding.AudioProcessor(
                sample_rate=SAMPLE_RATE,
                num_channels=1,
                echo_cancellation=echo_cancellation,
                noise_suppression=self.config.noise_suppression,
                high_pass_filter=True,
                auto_gain_control=self.config.auto_gain,
                ns_level=self.config.ns_level,
                agc_max_gain_db=self.config.agc_max_gain_db,
            )
        except Exception as exc:  # a binding that loads but refuses the settings
            raise ProcessingUnavailable(f"audio processing cannot start ({exc})") from None

    def set_echo_cancellation(self, on: bool) -> None:
        """Turn echo cancellation on or off mid-call (the speaker moved to or from a
        headset): a fresh module (the binding fixes it at creation; NS and AGC
        restart too) and a fresh pairing, found from the clocks as at the start."""
        if on == self.echo_cancellation:
            return
        module = self._module(on)
        with self._lock:
            self._far_clock.clear()
            self._near_clock.clear()
            self._lag = None
            self._fill = None
            self._resync = True  # follow the first fresh times
            self._ap = module
            self.echo_cancellation = on

    def feed_far(
        self, samples: Samples, play_time: float | None = None, underflow: bool = False
    ) -> None:
        """What the speaker plays (any length; copied); ``play_time``: when its first
        sample reaches the speaker, on the capture's clock (PortAudio stream time);
        ``underflow``: the card ran dry before this block (PortAudio's status flag)."""
        if not self.echo_cancellation:
            return
        with self._lock:
            if underflow:
                gap = self._played_gap(play_time)
                if gap:  # the card played silence we never gave it: so does the reference
                    self._write(np.zeros(gap, dtype=np.int16))
                    self.gaps_filled += 1
                    self._fill = (self._far_count, gap)
                elif excess := self._overfilled(play_time):
                    self._trim(excess)
                else:  # no trustworthy gap: re-pair from fresh times
                    self._far_clock.clear()
                    self._resync = True
            if play_time is not None:
                self._far_clock.append(play_time - self._far_count / SAMPLE_RATE)
            self._write(samples)

    def _played_gap(self, play_time: float | None) -> int:
        """Samples of silence the card played before a block due at ``play_time``
        (0 when the times cannot say: none yet, earlier than due, or too far)."""
        if play_time is None or not self._far_clock:
            return 0
        due = statistics.median_low(self._far_clock) + self._far_count / SAMPLE_RATE
        gap = round((play_time - due) * SAMPLE_RATE)
        return gap if BLOCK // 10 <= gap <= MAX_GAP else 0

    def _overfilled(self, play_time: float | None) -> int:
        """Samples of the last filled gap that the speaker never played: a block due
        earlier than the timeline says, flagged, within ``REFINE`` of that gap (the
        pulse backend's speaker knows a gap's length only from the server's next
        report, after it guessed it); 0 otherwise."""
        if not self.trim_fills or play_time is None or not self._far_clock or not self._fill:
            return 0
        end, length = self._fill
        if self._far_count - end > REFINE:
            return 0
        due = statistics.median_low(self._far_clock) + self._far_count / SAMPLE_RATE
        early = round((due - play_time) * SAMPLE_RATE)
        return early if BLOCK // 10 <= early <= length else 0

    def _trim(self, excess: int) -> None:
        """Take ``excess`` samples of the last filled silence back out of the ring: what
        was written after it moves that much earlier, so the far stream stays what the
        speaker played and the pairing does not move."""
        assert self._fill is not None
        end, length = self._fill
        moved = np.arange(end, self._far_count)
        self._ring[(moved - excess) % FAR_RING] = self._ring[moved % FAR_RING]
        self._far_count -= excess
        self.far_frames = self._far_count // BLOCK
        self._fill = (end - excess, length - excess)
        self._far_clock.clear()  # their offsets counted the samples taken out
        self.gaps_trimmed += 1

    def _write(self, samples: Samples) -> None:
        samples = samples[-FAR_RING:]
        n = len(samples)
        at = self._far_count % FAR_RING
        first = min(n, FAR_RING - at)
        self._ring[at : at + first] = samples[:first]
        self._ring[: n - first] = samples[first:]
        self._far_count += n
        self.far_frames = self._far_count // BLOCK

    def _align(self) -> int:
        """The pairing lag in samples, moved only when the clocks say it is off by more
        than ``REALIGN_S`` (0 without times)."""
        with self._lock:
            far = statistics.median_low(self._far_clock) if self._far_clock else None
            fresh = min(len(self._far_clock), len(self._near_clock)) >= RESYNC_AFTER
            resync = self._resync and fresh
            self._resync = self._resync and not fresh
        near = statistics.median_low(self._near_clock) if self._near_clock else None
        measured = 0 if far is None or near is None else round((near - far + LEAD_S) * SAMPLE_RATE)
        if self._lag is None:
            self._lag = measured
        elif abs(measured - self._lag) > (BLOCK // 10 if resync else REALIGN_S * SAMPLE_RATE):
            log.debug("pairing moved %+.1f ms (%s)", (measured - self._lag) * 1000 / SAMPLE_RATE,
                      "after an xrun" if resync else "clocks drifted apart")  # fmt: skip
            self._lag = measured
            self.realignments += 1
        return self._lag

    def _far_at(self, index: int) -> Samples:
        """Far samples ``index .. index + BLOCK`` (zeros where the ring has none)."""
        with self._lock:
            lo = max(index, self._far_count - FAR_RING, 0)
            hi = min(index + BLOCK, self._far_count)
            if lo == index and hi == index + BLOCK:
                at = index % FAR_RING
                if at + BLOCK <= FAR_RING:
                    return self._ring[at : at + BLOCK].copy()
            out = np.zeros(BLOCK, dtype=np.int16)
            if hi > lo:  # rare: the ring's wrap, or the edge of what was played
                out[lo - index : hi - index] = self._ring[np.arange(lo, hi) % FAR_RING]
        self.far_missing += 1 if hi - lo < BLOCK else 0
        return out

    def process(
        self, near: Samples, capture_time: float | None = None, overflow: bool = False
    ) -> Samples:
        """Process captured samples (any length; ``capture_time``: when the first one
        was captured, PortAudio stream time; ``overflow``: samples were lost before
        these); returns the processed ones, in whole 10 ms frames (a remainder waits
        for the next call)."""
        if overflow:
            with self._lock:
                self._near_clock.clear()
                self._resync = True
        if capture_time is not None:
            self._near_clock.append(capture_time - self._near_count / SAMPLE_RATE)
        first = self._near_count - len(self._near_partial)  # near index of pending[0]
        self._near_count += len(near)
        pending = np.concatenate((self._near_partial, near)) if len(self._near_partial) else near
        n = len(pending) // BLOCK
        rest = len(pending) - n * BLOCK  # (no copy when none is left: the usual case)
        self._near_partial = pending[n * BLOCK :].copy() if rest else self._silence[:0]
        if n == 0:
            return self._silence[:0]
        with self._lock:  # the pair set_echo_cancellation swaps
            module, cancel = self._ap, self.echo_cancellation
        lag = self._align() if cancel else 0
        tap = self.tap
        t0 = time.thread_time()
        outs = []
        for i in range(n):
            chunk = pending[i * BLOCK : (i + 1) * BLOCK]
            far = self._far_at(first + i * BLOCK + lag) if cancel else None
            outs.append(module.process(chunk, far))
            if tap is not None:
                tap(chunk, self._silence if far is None else far)
        out = outs[0] if n == 1 else np.concatenate(outs)  # (one block: a device's usual)
        self.cpu_seconds += time.thread_time() - t0
        self.frames += n
        self.speech_probability = float(module.speech_probability)
        if self.config.auto_gain:
            self.gain_db = float(module.gain_db)
        return out

    def stats(self) -> ProcessingStats:
        return ProcessingStats(
            frames=self.frames,
            far_frames=self.far_frames,
            far_missing=self.far_missing,
            realignments=self.realignments,
            pairing_ms=(self._lag or 0) * 1000 / SAMPLE_RATE,
            speech_probability=self.speech_probability,
            gain_db=self.gain_db,
            cpu_seconds=self.cpu_seconds,
            echo_cancellation=self.echo_cancellation,
            gaps_filled=self.gaps_filled,
            tuned=self.tuned,
            gaps_trimmed=self.gaps_trimmed,
        )


def open_processor(
    config: ProcessingConfig, *, echo_cancellation: bool
) -> tuple[CaptureProcessor | NativeProcessor | None, str | None]:
    """A processor for ``config`` (None when every stage is off), or (None, a
    one-line notice) when the binding cannot be used — never an exception."""
    if not config.any:
        return None, None
    from hello_tui.media import capture_native

    try:
        if capture_native.available():  # the same stage in C (media/capture_native.py)
            with contextlib.suppress(aec3_tuned.ShimUnavailable):  # (then: in Python)
                native = capture_native.NativeProcessor(config, echo_cancellation=echo_cancellation)
                return native, None
        return CaptureProcessor(config, echo_cancellation=echo_cancellation), None
    except ProcessingUnavailable as exc:
        return None, f"no echo cancellation or noise suppression: {exc}"


def headset_notice(config: ProcessingConfig, device: str) -> str | None:
    """When ``device`` (a PortAudio output's name) is a headset and ``config`` does
    not ask for echo cancellation there: the one line saying it is off (blocking:
    asks the sound server, :mod:`hello_tui.media.output_kind`). Else None."""
    if not config.aec or config.aec_on_headset:
        return None
    from hello_tui.media.output_kind import output_kind

    kind = output_kind(device)
    if not kind.headset:
        return None
    return (
        f'echo cancellation off: the output is a headset ({kind.why}); [audio] aec = "on" keeps it'
    )


def follow_output(source: object, sink: object) -> str | None:
    """After the speaker moved to another device mid-call: echo cancellation goes
    off on a headset and back on off it (``config.aec`` only); returns the one
    line saying so when it changed. Blocking (asks the sound server)."""
    from hello_tui.media.sinks import DeviceSink
    from hello_tui.media.sources import DeviceSource

    processor = source.processor if isinstance(source, DeviceSource) else None
    if processor is None or not isinstance(sink, DeviceSink) or not processor.config.aec:
        return None
    notice = headset_notice(processor.config, sink.device.name)
    want = notice is None
    if want == processor.echo_cancellation:
        return None
    try:
        processor.set_echo_cancellation(want)
    except ProcessingUnavailable as exc:
        return f"echo cancellation unchanged: {exc}"
    processor.trim_fills = _corrects_gaps(sink)
    sink.far_end = processor.feed_far if want else None
    return notice or f'echo cancellation on: the output "{sink.device.name[:60]}" is not a headset'


def _corrects_gaps(sink: Any) -> bool:
    """The speaker's stream corrects a gap's length after it (the pulse backend's
    says so: ``PulseStream.corrects_gaps``): trimming is for it only."""
    return bool(getattr(getattr(sink, "stream", None), "corrects_gaps", False))


def attach_processing(
    source: object, sink: object, config: ProcessingConfig, *, ask_headset: bool = True
) -> str | None:
    """Put a processing stage on ``source`` if it is a device (``device:`` capture),
    with echo cancellation fed by ``sink`` if that is a device too and not a
    headset (unless ``config.aec_on_headset``); returns a one-line notice when the
    binding cannot be used or echo cancellation is off for a headset. Other
    sources are left untouched (bit-exact). Blocking (may ask the sound server).
    ``ask_headset=False``: echo cancellation on for now, the sound server not asked
    (a call's setup asks later, off its path: :func:`follow_output`)."""
    from hello_tui.media.sinks import DeviceSink
    from hello_tui.media.sources import DeviceSource

    if not isinstance(source, DeviceSource) or source.processor is not None:
        return None
    speaker = sink if isinstance(sink, DeviceSink) else None
    headset = (
        headset_notice(config, speaker.device.name) if speaker is not None and ask_headset else None
    )
    if headset is not None:
        speaker = None
    processor, notice = open_processor(config, echo_cancellation=speaker is not None)
    if processor is None:
        return notice
    source.processor = processor
    if speaker is not None and processor.echo_cancellation:
        processor.trim_fills = _corrects_gaps(speaker)
        speaker.far_end = processor.feed_far
    return headset
