"""The one-line live quality summary the CLI prints on a TTY (a pure function of a sample).

    RTT 12 ms  jitter 3 ms  loss 0.0 %  in 41 kbps  out 40 kbps  MOS 4.4 ▮▮▮▮▮  relay

The last word says how media travels: ``relay`` (through TURN) or ``direct``.

Unknown values (before the first RTCP report, say) print as ``–``, never 0.
"""

from __future__ import annotations

from hello_tui.quality.sample import QualitySample

BAR_ON = "▮"
BAR_OFF = "▯"
UNKNOWN = "–"


def _num(value: float | None, fmt: str, unit: str) -> str:
    return UNKNOWN if value is None else f"{value:{fmt}} {unit}"


def render_bars(bars: int | None, *, ascii_only: bool = False) -> str:
    """Five cells, ``bars`` of them filled (``#``/``.`` when ``ascii_only``)."""
    on, off = ("#", ".") if ascii_only else (BAR_ON, BAR_OFF)
    n = 0 if bars is None else max(0, min(5, bars))
    return on * n + off * (5 - n)


def path_word(sample: QualitySample) -> str | None:
    """``relay`` when either end of the media path is a TURN relay, ``direct``
    otherwise; None before ICE nominated a pair."""
    types = (sample.candidate_type, sample.remote_candidate_type)
    if "relay" in types:
        return "relay"
    return "direct" if any(types) else None


def render_line(sample: QualitySample, *, ascii_only: bool = False) -> str:
    """``RTT … jitter … loss … in … out … MOS … bars [relay|direct]`` for one sample."""
    parts = [
        f"RTT {_num(sample.rtt_ms, '.0f', 'ms')}",
        f"jitter {_num(sample.jitter_ms, '.0f', 'ms')}",
        f"loss {sample.fraction_lost * 100:.1f} %",
        f"in {_num(sample.bitrate_in_kbps, '.0f', 'kbps')}",
        f"out {_num(sample.bitrate_out_kbps, '.0f', 'kbps')}",
        f"MOS {UNKNOWN if sample.mos is None else format(sample.mos, '.1f')} "
        + render_bars(sample.bars, ascii_only=ascii_only),
    ]
    path = path_word(sample)
    if path is not None:
        parts.append(path)
    return "  ".join(parts)


__all__ = ["path_word", "render_bars", "render_line"]
