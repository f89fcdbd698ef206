"""The live quality panel: fed only by ``QualitySample`` (no computation of its own).

Each metric shows its last value and a sparkline of the last 60 samples (one
a second); levels are meters; MOS has its bars (``quality.render``).

Sparklines are drawn against an absolute scale per metric (:data:`SCALES`),
not their own min..max: steady values draw flat (RTT 1 → 2 ms is two low
bars, not a cliff); the top grows only when a value passes it.

How media travels (``relay`` through TURN, or ``direct``: ``path_word``, the
CLI line's last word) is the bottom border's title.

On the call screen the panel takes what is left (``height: 1fr``, styles.tcss):
the check code and the notices keep their lines. With fewer rows than the
full panel needs it is *compact*: the CLI's one quality line, wrapped, then the
two meters as far as they fit.
"""

from __future__ import annotations

from collections import deque

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.scalar import Unit
from textual.widgets import Label

from hello_tui.quality.render import path_word, render_bars, render_line
from hello_tui.quality.sample import QualitySample

WINDOW = 60  # samples kept: one a second, the last minute
UNKNOWN = "–"
WAITING = "waiting for the first sample…"

# (id, label, getter, format)
METRICS: tuple[tuple[str, str, str], ...] = (
    ("rtt", "RTT", "ms"),
    ("jitter", "Jitter", "ms"),
    ("loss", "Loss", "%"),
    ("in", "In", "kbps"),
    ("out", "Out", "kbps"),
    ("mos", "MOS", ""),
)


SPARK = "▁▂▃▄▅▆▇█"
# metric → (bottom, smallest top) of its sparkline: a value at the bottom draws ▁,
# at the top █; the top is max(smallest top, the largest value shown).
SCALES: dict[str, tuple[float, float]] = {
    "rtt": (0.0, 100.0),  # ms: under 100 ms is good for a call
    "jitter": (0.0, 30.0),  # ms
    "loss": (0.0, 5.0),  # %: 5 % is already poor audio
    "in": (0.0, 64.0),  # kbps: an Opus voice stream's order of magnitude
    "out": (0.0, 64.0),
    "mos": (1.0, 4.5),  # the E-model's whole range
}


def sparkline(values: list[float], key: str) -> str:
    """One cell per value on the metric's absolute scale (see :data:`SCALES`)."""
    bottom, top = SCALES[key]
    top = max([top, *values])
    span = top - bottom
    cells = []
    for value in values:
        fill = 0.0 if span <= 0 else (min(max(value, bottom), top) - bottom) / span
        cells.append(SPARK[min(len(SPARK) - 1, int(fill * (len(SPARK) - 1) + 0.5))])
    return "".join(cells)


def metric_values(s: QualitySample) -> dict[str, float | None]:
    return {
        "rtt": s.rtt_ms,
        "jitter": s.jitter_ms,
        "loss": s.fraction_lost * 100,
        "in": s.bitrate_in_kbps,
        "out": s.bitrate_out_kbps,
        "mos": s.mos,
    }


def meter(level: float | None, width: int = 16) -> str:
    """A level 0..1 as a bar of ``width`` cells (RMS, shown on a dB-ish scale)."""
    if level is None:
        return "·" * width
    import math

    db = 20 * math.log10(max(level, 1e-5))  # -100..0
    fill = max(0.0, min(1.0, (db + 60) / 60))
    n = round(fill * width)
    return "█" * n + "·" * (width - n)


class QualityPanel(Vertical):
    """RTT, jitter, loss, bitrates, MOS (+ bars) with sparklines; levels as meters."""

    DEFAULT_CSS = """
    QualityPanel { height: auto; border: round $primary; padding: 0 1; }
    QualityPanel .row { height: 1; }
    QualityPanel .name { width: 7; color: $text-muted; }
    QualityPanel .value { width: 16; }
    QualityPanel .spark { height: 1; width: 1fr; }
    QualityPanel { overflow: hidden hidden; }
    QualityPanel #quality-line { display: none; width: 1fr; height: auto; }
    QualityPanel.-compact .metric { display: none; }
    QualityPanel.-compact #quality-line { display: block; }
    """

    ROWS = len(METRICS) + 2  # the metrics and the two meters: the full panel's height

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.history: dict[str, deque[float]] = {m[0]: deque(maxlen=WINDOW) for m in METRICS}
        self.samples = 0
        self.last: QualitySample | None = None

    def compose(self) -> ComposeResult:
        self.border_title = "Quality"
        self.border_subtitle = WAITING
        yield Label(WAITING, id="quality-line")
        for key, name, _unit in METRICS:
            with Horizontal(classes="row metric"):
                yield Label(name, classes="name")
                yield Label(UNKNOWN, id=f"q-{key}", classes="value")
                yield Label("", id=f"spark-{key}", classes="spark")
        with Horizontal(classes="row"):
            yield Label("Mic", classes="name")
            yield Label(meter(None), id="q-level-out")
        with Horizontal(classes="row"):
            yield Label("Speak.", classes="name")
            yield Label(meter(None), id="q-level-in")

    def add_sample(self, sample: QualitySample) -> None:
        self.samples += 1
        self.last = sample
        path = path_word(sample)
        self.border_subtitle = f"path: {path}" if path else ""
        self.query_one("#quality-line", Label).update(render_line(sample))
        values = metric_values(sample)
        for key, _name, unit in METRICS:
            value = values[key]
            if value is not None:
                self.history[key].append(float(value))
            self.query_one(f"#q-{key}", Label).update(self._format(key, value, unit, sample))
            # One cell a second, not stretched, on the metric's own absolute scale.
            self.query_one(f"#spark-{key}", Label).update(sparkline(list(self.history[key]), key))
        self.query_one("#q-level-out", Label).update(meter(sample.audio_level_out))
        self.query_one("#q-level-in", Label).update(meter(sample.audio_level_in))

    def on_resize(self) -> None:
        """Compact when given fewer rows than the full panel: only where the panel's
        height is what is left (a fraction); an ``auto`` height is always full."""
        height = self.styles.height
        fits = height is None or height.unit != Unit.FRACTION or self.size.height >= self.ROWS
        self.set_class(not fits, "-compact")

    @staticmethod
    def _format(key: str, value: float | None, unit: str, sample: QualitySample) -> str:
        if value is None:
            return UNKNOWN
        if key == "mos":
            return f"{value:.1f} {render_bars(sample.bars)}"
        if key == "loss":
            return f"{value:.1f} %"
        return f"{value:.0f} {unit}"
